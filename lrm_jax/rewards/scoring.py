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

Inputs (checked when traced; a mistake is one `InputError` line naming the argument, not an error deep in JAX):
frames are [B, H, W, 3], channels last, RGB, uint8 in [0, 255] (float frames are taken as [0, 255] too: the server
passes resized float32 frames); any H, W (resized to `image_size` as in training). Frames already in [-1, 1] or
integers other than uint8 (e.g. int64 up to 2550) would be scored silently wrong, so other integer dtypes are
refused, and `Scorer(..., guard=True)` adds `frames_ok` [B] to the outputs: False where a frame is not finite,
leaves [0, 255], or looks like [-1, 1] (max <= 1 with negative values); a few reductions, negligible next to the
model. `check_frame_values(frames)` raises on the same conditions for host (numpy) frames. Frame batches,
instruction rows and encodings must agree on B >= 1; instructions are non-empty strings.
"""
import json
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from data_pipelines import prompts
from data_pipelines.errors import InputError
from lrm_jax.models import decode
from lrm_jax.models import paligemma
from lrm_jax.models import preprocess
from lrm_jax.rewards import answers as answers_lib


def _shape(x) -> tuple:
  """Static shape of an array, tracer or list (np.shape would convert a tracer to numpy and fail)."""
  return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


class Scorer:
  """Holds static things (model, tokenised questions, answer readers); its methods are pure functions of params.

  kinds: which signals to compute (any subset of prompts.KINDS, in any order); prefix_len: padded length of the
  tokenised "Task: ..." prefix (bos + context + "\\n").
  """

  def __init__(self, model: paligemma.Model, tokenizer, image_size: int, kinds: Sequence[str] = prompts.KINDS,
               prefix_len: int = 32, guard: bool = False):
    unknown = [k for k in kinds if k not in prompts.KINDS]
    if unknown or not kinds:
      raise ValueError(f"Scorer kinds: expected a non-empty subset of {prompts.KINDS}, got {list(kinds)}")
    self.model, self.tokenizer, self.image_size = model, tokenizer, int(image_size)
    self.kinds, self.prefix_len, self.guard = tuple(kinds), int(prefix_len), bool(guard)
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

  # ---- input checks (trace time: shapes and dtypes only) ---------------------------------------------------------
  def check_frames(self, frames, name: str = "frames") -> int:
    """Raises InputError unless `frames` is [B >= 1, H, W, 3] uint8 (or float); returns B."""
    shape = _shape(frames)
    dtype = np.dtype(frames.dtype) if hasattr(frames, "dtype") else np.asarray(frames).dtype
    hint = ""
    if len(shape) == 4 and shape[1] == 3 and shape[-1] != 3:
      hint = " (channels first? transpose to [B, H, W, 3])"
    elif len(shape) == 3:
      hint = " (one frame, or grayscale [B, H, W]? frames are a batch of RGB images)"
    if len(shape) != 4 or shape[-1] != 3:
      raise InputError(name, "frames [B, H, W, 3] (channels last, RGB)", f"shape {list(shape)}{hint}")
    if shape[0] < 1:
      raise InputError(name, "at least one frame", "an empty batch [0, H, W, 3]")
    if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
      raise InputError(name, "uint8 values in [0, 255] (or float in [0, 255])", f"dtype {dtype}")
    return shape[0]

  def _check_prefix(self, prefix_tokens, prefix_mask, b: int) -> None:
    for name, x in (("prefix_tokens", prefix_tokens), ("prefix_mask", prefix_mask)):
      shape = _shape(x)
      if shape not in ((b, self.prefix_len), (self.prefix_len,)):
        raise InputError(name, f"[B, {self.prefix_len}] with B = {b} frames (or [{self.prefix_len}]), from "
                         "encode_instructions", f"shape {list(shape)}")

  def _frames_ok(self, *frame_batches):
    """[B] bool: every frame finite, in [0, 255], and not in the model's own [-1, 1] range."""
    oks = []
    for x in frame_batches:
      x = jnp.asarray(x).astype(jnp.float32)
      lo, hi = x.min(axis=(1, 2, 3)), x.max(axis=(1, 2, 3))
      oks.append(jnp.isfinite(x).all(axis=(1, 2, 3)) & (lo >= 0) & (hi <= 255) & ~((hi <= 1.0) & (lo < 0)))
    return jnp.logical_and(*oks) if len(oks) > 1 else oks[0]

  # ---- once per episode -----------------------------------------------------------------------------------------
  def encode_instructions(self, instructions: Sequence[str]) -> dict:
    """Tokenised prefixes for a list of instructions: tokens / mask int32 / bool [E, prefix_len] (numpy)."""
    if isinstance(instructions, str):
      raise InputError("instructions", "a list of strings (one per frame pair)", "a single string")
    instructions = list(instructions)
    if not instructions:
      raise InputError("instructions", "at least one instruction", "an empty list")
    for i, text in enumerate(instructions):
      if not isinstance(text, str) or not text.strip():
        raise InputError(f"instructions[{i}]", "a non-empty string", repr(text))
    out = self.tokenizer.batch([prompts.context(i) for i in instructions], max_len=self.prefix_len)
    return dict(tokens=out["tokens"], mask=out["input_mask"].astype(bool))

  # ---- the hot path ---------------------------------------------------------------------------------------------
  def embed(self, params, images):
    """Frames [B, H, W, 3] (uint8) -> image tokens [B, P, D]; keep them to reuse a frame as the next context."""
    self.check_frames(images, "images")
    return self.model.apply({"params": params}, preprocess.images(images, self.image_size),
                            method=paligemma.Model.embed_image)

  def score_embedded(self, params, embeds_a, embeds_b, prefix_tokens, prefix_mask) -> dict:
    """Signals from image encodings: embeds_a/b [B, P, D]; prefix tokens / mask [B, prefix_len] (or [prefix_len],
    broadcast over the batch). Returns {kind: [B] float32} plus `<kind>_probs` [B, A]."""
    if len(_shape(embeds_a)) != 3 or _shape(embeds_a) != _shape(embeds_b):
      raise InputError("embeds_a, embeds_b", "image tokens [B, P, D] of the same shape (from embed)",
                       f"shapes {list(_shape(embeds_a))} and {list(_shape(embeds_b))}")
    b = embeds_b.shape[0]
    self._check_prefix(prefix_tokens, prefix_mask, b)
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
    b = self.check_frames(images_b, "images_b")
    if self.check_frames(images_a, "images_a") != b or _shape(images_a)[1:] != _shape(images_b)[1:]:
      raise InputError("images_a, images_b", "frame batches of the same shape (context and current frames)",
                       f"shapes {list(_shape(images_a))} and {list(_shape(images_b))}")
    both = self.embed(params, jnp.concatenate([images_a, images_b], axis=0))
    out = self.score_embedded(params, both[:b], both[b:], prefix_tokens, prefix_mask)
    if self.guard:
      out["frames_ok"] = self._frames_ok(images_a, images_b)
    return out

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


def check_frame_values(frames, name: str = "frames") -> None:
  """Host-side value check of numpy frames (the guard's conditions, raised): NaN/inf, values outside [0, 255],
  or frames that look like the model's [-1, 1] input range (pass uint8 frames instead)."""
  x = np.asarray(frames)
  if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
    raise InputError(name, "finite values in [0, 255]", f"{int((~np.isfinite(x)).sum())} NaN/inf values")
  lo, hi = float(x.min()), float(x.max())
  if lo < 0 or hi > 255:
    if hi <= 1.0:
      raise InputError(name, "values in [0, 255] (uint8 frames)", f"values in [{lo:g}, {hi:g}] (already scaled to "
                       "[-1, 1]?)")
    raise InputError(name, "values in [0, 255] (uint8 frames)", f"values in [{lo:g}, {hi:g}]")


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
    b = scorer.check_frames(cur_frames, "cur_frames")
    if scorer.check_frames(prev_frames, "prev_frames") != b:
      raise InputError("prev_frames, cur_frames", "the same batch size", f"{_shape(prev_frames)[0]} and {b}")
    if instruction_ids is not None and _shape(instruction_ids) != (b,):
      raise InputError("instruction_ids", f"[B] = [{b}] int32 rows of the instruction table",
                       f"shape {list(_shape(instruction_ids))}")
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
