"""The reward model as pure functions: progress, completion and contrastive from one forward pass.

Every question sees the same prefix, [image A, image B, "Task: <instruction>"] (prompts.py): image A is the context
frame (at RL time the frame of the previous reward query), image B the current frame. So one call

  1. encodes the frames with the image tower (or takes encodings the caller kept, e.g. last query's frame),
  2. runs the prefix through the LLM once, filling a KV cache,
  3. runs every question, plus the teacher-forced shared tokens of its answers, side by side against that cache
     (`paligemma.Model.query`), and reads each answer distribution (answers.py).

Scoring three signals therefore adds only a few dozen question tokens to scoring one. Instructions are tokenised
once per episode (`Scorer.encode_instructions`), never on the hot path. Everything is jittable and vmappable; no
text is decoded. `Scorer.explain` generates the free-text answers for inspection.

Outputs: progress = expected bin value in [0, 1]; completion = P(yes); contrastive = P(B) - P(A) in [-1, 1]
(+1: the current frame is closer to done than the context frame).
"""
import json
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from data_pipelines import prompts
from lrm_jax.models import decode
from lrm_jax.models import paligemma
from lrm_jax.models import preprocess
from lrm_jax.rewards import answers as answers_lib


class Scorer:
  """Holds static things (model, tokenised questions, answer readers); its methods are pure functions of params.

  kinds: which signals to compute (any subset of prompts.KINDS, in any order); prefix_len: padded length of the
  tokenised "Task: ..." prefix (bos + context + "\\n").
  """

  def __init__(self, model: paligemma.Model, tokenizer, image_size: int, kinds: Sequence[str] = prompts.KINDS,
               prefix_len: int = 32):
    unknown = [k for k in kinds if k not in prompts.KINDS]
    if unknown or not kinds:
      raise ValueError(f"Scorer kinds: expected a non-empty subset of {prompts.KINDS}, got {list(kinds)}")
    self.model, self.tokenizer, self.image_size = model, tokenizer, int(image_size)
    self.kinds, self.prefix_len = tuple(kinds), int(prefix_len)
    self.readers = {k: answers_lib.make_reader(tokenizer, k) for k in self.kinds}
    rows = [tokenizer.encode(prompts.question(k)) + list(self.readers[k].forced) for k in self.kinds]
    t = max(len(r) for r in rows)
    self.query_tokens = np.zeros((len(rows), t), np.int32)
    self.query_mask = np.zeros((len(rows), t), bool)
    nodes = max(self.readers[k].num_nodes for k in self.kinds)
    self.query_at = np.zeros((len(rows), nodes), np.int32)  # logits positions within each query row
    for q, (k, r) in enumerate(zip(self.kinds, rows)):
      self.query_tokens[q, :len(r)] = r
      self.query_mask[q, :len(r)] = True
      last_question = len(tokenizer.encode(prompts.question(k))) - 1
      offs = self.readers[k].offsets
      self.query_at[q, :len(offs)] = [last_question + o for o in offs]

  # ---- once per episode -----------------------------------------------------------------------------------------
  def encode_instructions(self, instructions: Sequence[str]) -> dict:
    """Tokenised prefixes for a list of instructions: tokens / mask int32 / bool [E, prefix_len] (numpy)."""
    out = self.tokenizer.batch([prompts.context(i) for i in instructions], max_len=self.prefix_len)
    return dict(tokens=out["tokens"], mask=out["input_mask"].astype(bool))

  # ---- the hot path ---------------------------------------------------------------------------------------------
  def embed(self, params, images):
    """Frames [B, H, W, 3] (uint8) -> image tokens [B, P, D]; keep them to reuse a frame as the next context."""
    return self.model.apply({"params": params}, preprocess.images(images, self.image_size),
                            method=paligemma.Model.embed_image)

  def score_embedded(self, params, embeds_a, embeds_b, prefix_tokens, prefix_mask) -> dict:
    """Signals from image encodings: embeds_a/b [B, P, D]; prefix tokens / mask [B, prefix_len] (or [prefix_len],
    broadcast over the batch). Returns {kind: [B] float32} plus `<kind>_probs` [B, A]."""
    b = embeds_b.shape[0]
    prefix_tokens = jnp.broadcast_to(prefix_tokens, (b, self.prefix_len))
    prefix_mask = jnp.broadcast_to(prefix_mask, (b, self.prefix_len))
    q, t = self.query_tokens.shape
    image_embeds = jnp.concatenate([embeds_a, embeds_b], axis=1)
    cache_size = image_embeds.shape[1] + self.prefix_len + q * t
    p = {"params": params}
    _, cache = self.model.apply(p, None, prefix_tokens, jnp.zeros_like(prefix_tokens), prefix_mask,
                                image_embeds=image_embeds, cache_size=cache_size, method=paligemma.Model.prefill)
    bcast = lambda x: jnp.broadcast_to(jnp.asarray(x), (b, *x.shape))
    logits = self.model.apply(p, cache, bcast(self.query_tokens), bcast(self.query_mask),
                              logits_at=bcast(self.query_at), method=paligemma.Model.query)  # [B, Q, J, V]
    out = {}
    for i, kind in enumerate(self.kinds):
      reader = self.readers[kind]
      probs = jnp.exp(reader.log_probs(logits[:, i, :reader.num_nodes]))
      out[kind] = reader.expectation(probs)
      out[f"{kind}_probs"] = probs
    return out

  def __call__(self, params, images_a, images_b, prefix_tokens, prefix_mask) -> dict:
    """Signals for frame pairs: images_a (context) and images_b (current) uint8 [B, H, W, 3]."""
    b = images_b.shape[0]
    both = self.embed(params, jnp.concatenate([images_a, images_b], axis=0))
    return self.score_embedded(params, both[:b], both[b:], prefix_tokens, prefix_mask)

  # ---- inspection -----------------------------------------------------------------------------------------------
  def explain(self, params, images_a, images_b, instructions: Sequence[str], max_new_tokens: int = 4) -> list:
    """The free-text answers (greedy decoding, one question at a time) next to the expectations, one JSON string
    per example, in the paper's style: {"task", "progress", "completed", "closer", "expected": {...}}."""
    enc = self.encode_instructions(instructions)
    scores = jax.device_get(self(params, images_a, images_b, enc["tokens"], enc["mask"]))
    embeds = jnp.concatenate([self.embed(params, images_a), self.embed(params, images_b)], axis=1)
    texts = {}
    for kind in self.kinds:
      question = np.broadcast_to(np.array(self.tokenizer.encode(prompts.question(kind)), np.int32),
                                 (len(instructions), len(self.tokenizer.encode(prompts.question(kind)))))
      toks, _ = decode.greedy(self.model, params, None, jnp.asarray(enc["tokens"]), jnp.asarray(enc["mask"]),
                              max_new_tokens=max_new_tokens, eos_id=self.tokenizer.eos_id,
                              pad_id=self.tokenizer.pad_id, image_embeds=embeds, question=jnp.asarray(question))
      texts[kind] = [self.tokenizer.decode(row) for row in np.asarray(toks)]
    names = {prompts.PROGRESS: "progress", prompts.COMPLETION: "completed", prompts.CONTRASTIVE: "closer"}
    out = []
    for i, instruction in enumerate(instructions):
      d = {"task": instruction}
      d.update({names[k]: texts[k][i] for k in self.kinds})
      d["expected"] = {k: round(float(scores[k][i]), 4) for k in self.kinds}
      out.append(json.dumps(d))
    return out


def make_scorer(model, tokenizer, image_size: int, kinds: Sequence[str] = prompts.KINDS,
                prefix_len: Optional[int] = None) -> Scorer:
  return Scorer(model, tokenizer, image_size, kinds, prefix_len or 32)


def score_fn_for_rl(scorer: Scorer, params, instructions: Sequence[str], *, lrm: bool = True,
                    similarity: bool = False):
  """The reward model as `lrm_jax.rewards.interval`'s score_fn(prev_frames, cur_frames, instruction_ids).

  `instructions` is the task's instruction table (`LrmBenchEnv.instruction_table()`, or one string): it is tokenised
  here, once, and each env's row is looked up by its `instruction_ids` inside the step. Params are closed over, so
  the whole reward model becomes part of the jitted env step. `lrm` gives the scorer's signals (`progress`,
  `completion`, `contrastive`), `similarity` the VLM-RM baseline's frame-instruction similarity of the current frame.
  """
  if not (lrm or similarity):
    raise ValueError("score_fn_for_rl: ask for lrm signals, similarity, or both")
  if isinstance(instructions, str):
    instructions = [instructions]
  enc = scorer.encode_instructions(list(instructions))
  table_tokens, table_mask = jnp.asarray(enc["tokens"]), jnp.asarray(enc["mask"])
  params = jax.tree.map(jnp.asarray, params)  # host (numpy) params cannot be indexed by traced token ids

  def score_fn(prev_frames, cur_frames, instruction_ids=None):
    b = cur_frames.shape[0]
    ids = jnp.zeros((b,), jnp.int32) if instruction_ids is None else instruction_ids
    tokens, mask = table_tokens[ids], table_mask[ids]
    out = {}
    if lrm:
      both = scorer.embed(params, jnp.concatenate([prev_frames, cur_frames], axis=0))
      out = scorer.score_embedded(params, both[:b], both[b:], tokens, mask)
      out = {k: v for k, v in out.items() if not k.endswith("_probs")}
      cur_embeds = both[b:]
    else:
      cur_embeds = scorer.embed(params, cur_frames)
    if similarity:
      from lrm_jax.rewards import vlmrm  # local: vlmrm imports nothing of this module, but keeps the edge one-way
      out["similarity"] = vlmrm.similarity(scorer, params, None, tokens, mask, image_embeds=cur_embeds)
    return out

  return score_fn
