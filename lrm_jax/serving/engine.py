"""The reward model behind the server: padded, pre-compiled batches of frame pairs -> the three signals.

Requests of any size are concatenated, cut into chunks of at most the largest compiled batch size, and each chunk is
padded up to the smallest compiled size that holds it (`batch_sizes`), so after `warmup()` nothing compiles while
serving. All of it runs on one thread (the batcher's), so JAX sees one caller.

Two ways to answer:
  expectation (default)  `scoring.Scorer`: one prefix pass, every answer distribution read at once; progress =
                         expected bin, completion = P(yes), contrastive = P(B) - P(A). `response` is the most
                         probable answer string.
  text                   the paper's server: greedy text decoding of each requested question
                         (`models/decode.greedy`), the text parsed into a score (progress "0.3" -> 0.3, "yes" -> 1,
                         "B" -> +1 / "A" -> -1), an unreadable answer -> 0.0 as the paper's parser defaults.
                         Kept as a faithful baseline for benchmarks.
"""
import dataclasses
import functools
import re
import threading
import time
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from data_pipelines import prompts
from lrm_jax import sharding
from lrm_jax.models import decode
from lrm_jax.rewards import scoring
from lrm_jax.serving import codec


@dataclasses.dataclass
class Pairs:
  """One request's work: n frame pairs (context a, current b) uint8 [n, H, W, 3], their instructions' token rows
  (`Engine.encode`, done by the request handler so that a bad instruction fails its own request only), and the
  signals wanted."""
  a: np.ndarray
  b: np.ndarray
  tokens: np.ndarray
  mask: np.ndarray
  kinds: tuple = prompts.KINDS

  def __len__(self):
    return len(self.b)


_PROGRESS_RE = re.compile(r"(?<![\d.])([01](?:\.\d+)?)")


def parse_answer(kind: str, text: str) -> Optional[float]:
  """A decoded answer -> its score, None when unreadable (the paper's parsers fall back to a default)."""
  t = text.strip()
  if kind == prompts.PROGRESS:
    m = _PROGRESS_RE.search(t)
    return None if m is None else min(max(float(m.group(1)), 0.0), 1.0)
  low = t.lower()
  if kind == prompts.COMPLETION:
    if low.startswith(prompts.YES):
      return 1.0
    return 0.0 if low.startswith(prompts.NO) else None
  if t.startswith(prompts.B):
    return 1.0
  return -1.0 if t.startswith(prompts.A) else None


class Engine:

  def __init__(self, scorer: scoring.Scorer, params, batch_sizes: Sequence[int] = (1, 4, 16, 64),
               text: bool = False, max_new_tokens: int = 4, data_parallel: bool = True):
    sizes = sorted({int(b) for b in batch_sizes})
    if not sizes or sizes[0] < 1:
      raise ValueError(f"batch_sizes: expected positive integers, got {list(batch_sizes)}")
    self.scorer, self.batch_sizes, self.text = scorer, tuple(sizes), bool(text)
    self.max_new_tokens = int(max_new_tokens)
    self.params = jax.device_put(params)
    self.image_size = scorer.image_size
    self.stats = dict(requests=0, pairs=0, batches=0, padded_pairs=0, model_s=0.0)
    self._stats_lock = threading.Lock()
    kinds = scorer.kinds

    @jax.jit
    def score(params, a, b, tokens, mask):
      out = scorer(params, a, b, tokens, mask)
      return {k: out[k] for k in kinds} | {f"{k}_probs": out[f"{k}_probs"] for k in kinds}
    self._score = score
    # Several local devices (one CPU device per core, see utils/host_devices.py; or several GPUs): a batch whose
    # size they divide is split over them (`batching.data_parallel`), so a gathered batch uses every core while a
    # single request (batch 1) runs on one. Expectation mode only.
    self._mesh = sharding.local_mesh() if data_parallel and jax.local_device_count() > 1 and not text else None
    if self._mesh is not None:
      batch = jax.sharding.PartitionSpec(sharding.BATCH)
      # check_vma=False: the scorer's layer scan starts its carry from constants (not per-device values), which
      # shard_map's varying-axes check rejects although every device computes its own examples independently.
      self._score_dp = jax.jit(jax.shard_map(scorer.__call__, mesh=self._mesh, in_specs=(jax.sharding.PartitionSpec(),)
                                             + (batch,) * 4, out_specs=batch, check_vma=False))
      self._put = lambda *xs: sharding.shard_batch(xs, self._mesh)
      self._params_dp = sharding.shard_params(params, self._mesh, "replicate")
    self._embed = jax.jit(scorer.embed)
    self._resize = jax.jit(lambda x: jax.image.resize(
        x.astype(jnp.float32), (*x.shape[:-3], self.image_size, self.image_size, 3), "bilinear", antialias=True))
    tok = scorer.tokenizer
    self._questions = {k: np.asarray(tok.encode(prompts.question(k)), np.int32) for k in kinds}

  # ---- instructions: tokenised once per distinct text (a robot sends the same few over and over) -----------------
  @functools.lru_cache(maxsize=4096)
  def _encode_one(self, text: str):
    try:
      enc = self.scorer.encode_instructions([text])
    except ValueError:
      n = len(self.scorer.tokenizer.format(prompts.context(text))["tokens"])
      raise codec.RequestError(f"instruction: expected at most {self.scorer.prefix_len} tokens with the prompt "
                               f"(the model's prefix length), got {n}: {text[:40]!r}...") from None
    return enc["tokens"][0], enc["mask"][0]

  def encode(self, instructions: Sequence[str], field: str = "task_description"):
    """Token rows [n, prefix_len] for instructions; a too-long one raises RequestError naming `field`."""
    rows = []
    for i, text in enumerate(instructions):
      try:
        rows.append(self._encode_one(text))
      except codec.RequestError as e:
        name = field if len(instructions) == 1 else f"{field}[{i}]"
        raise codec.RequestError(f"field '{name}': {e}") from None
    return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])

  # ---- the batched call ---------------------------------------------------------------------------------------
  def _frames(self, x: np.ndarray) -> np.ndarray:
    """uint8 frames at any size -> float32 [0, 255] at the model's size (exact for the model's size; other sizes
    are resized as `preprocess.images` would)."""
    if x.shape[-3:-1] != (self.image_size, self.image_size):
      return np.asarray(self._resize(x))
    return x.astype(np.float32)

  def _bucket(self, n: int) -> int:
    return next(b for b in self.batch_sizes if b >= n)

  def _pad(self, x: np.ndarray, size: int) -> np.ndarray:
    if len(x) == size:
      return x
    return np.concatenate([x, np.repeat(x[:1], size - len(x), axis=0)])  # real rows: no NaN from empty masks

  def _chunk(self, a, b, tokens, mask, kinds) -> dict:
    n = len(b)
    size = self._bucket(n)
    a, b, tokens, mask = (self._pad(x, size) for x in (a, b, tokens, mask))
    with self._stats_lock:
      self.stats["batches"] += 1
      self.stats["padded_pairs"] += size
    if not self.text:
      if self._mesh is not None and size % self._mesh.size == 0:
        out = jax.device_get(self._score_dp(self._params_dp, *self._put(a, b, tokens, mask)))
      else:
        out = jax.device_get(self._score(self.params, a, b, tokens, mask))
      res = {}
      for k in self.scorer.kinds:
        res[k] = np.asarray(out[k][:n], np.float64)
        answers = self.scorer.readers[k].answers
        res[f"{k}_response"] = [answers[i] for i in np.argmax(out[f"{k}_probs"][:n], axis=-1)]
      return res
    embeds = self._embed(self.params, np.concatenate([a, b]))
    embeds = jnp.concatenate([embeds[:size], embeds[size:]], axis=1)
    tok = self.scorer.tokenizer
    res = {}
    for k in kinds:
      question = np.broadcast_to(self._questions[k], (size, len(self._questions[k])))
      ids, _ = decode.greedy(self.scorer.model, self.params, None, jnp.asarray(tokens), jnp.asarray(mask),
                             max_new_tokens=self.max_new_tokens, eos_id=tok.eos_id, pad_id=tok.pad_id,
                             image_embeds=embeds, question=jnp.asarray(question))
      texts = [tok.decode(row) for row in np.asarray(ids)[:n]]
      scores = [parse_answer(k, t) for t in texts]
      res[k] = np.array([0.0 if s is None else s for s in scores], np.float64)
      res[f"{k}_response"] = texts
    return res

  def run(self, items: Sequence[Pairs]) -> list:
    """Scores every item's pairs in as few padded calls as possible; returns per item {kind: [n] float64,
    kind_response: [n] str} for the item's kinds."""
    t0 = time.perf_counter()
    a = np.concatenate([self._frames(it.a) for it in items])
    b = np.concatenate([self._frames(it.b) for it in items])
    tokens = np.concatenate([it.tokens for it in items])
    mask = np.concatenate([it.mask for it in items])
    kinds = tuple(k for k in self.scorer.kinds if any(k in it.kinds for it in items))
    step = self.batch_sizes[-1]
    parts = [self._chunk(a[i:i + step], b[i:i + step], tokens[i:i + step], mask[i:i + step], kinds)
             for i in range(0, len(b), step)]
    merged = {key: np.concatenate([p[key] for p in parts]) if not key.endswith("_response")
              else [x for p in parts for x in p[key]] for key in parts[0]}
    with self._stats_lock:
      self.stats["requests"] += len(items)
      self.stats["pairs"] += len(b)
      self.stats["model_s"] += time.perf_counter() - t0
    out, start = [], 0
    for it in items:
      n = len(it)
      out.append({key: merged[key][start:start + n] for key in merged
                  if key.removesuffix("_response") in it.kinds})
      start += n
    return out

  def warmup(self) -> None:
    """Compiles every batch size (and, in text mode, every question) before the first request."""
    s = self.image_size
    frames = np.zeros((1, s, s, 3), np.uint8)
    tokens, mask = self.encode(["warm up"])
    for size in self.batch_sizes:
      rep = lambda x: np.repeat(x, size, 0)
      self.run([Pairs(rep(frames), rep(frames), rep(tokens), rep(mask))])
    with self._stats_lock:
      self.stats.update(requests=0, pairs=0, batches=0, padded_pairs=0, model_s=0.0)
