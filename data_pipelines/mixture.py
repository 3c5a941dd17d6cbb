"""Weighted multi-source mixture of label examples as a tf.data pipeline.

Config (ml_collections.ConfigDict or plain dict):
  sources: list of {name, format, path, weight, reader_kwargs (optional), labels (optional per-source
    LabelConfig overrides)}; `format` is a registry name
    (data_pipelines.registry.READERS) or a callable(path, **kwargs) returning Trajectory iterables.
  seed: int (everything random derives from it: labels, augmentation, shuffling, source sampling).
  image_size: int, square output size.  augment: bool.  shuffle_buffer: int.  batch_size: int or None.
  labels: dict of LabelConfig fields.  summary_max_trajectories: cap for the start-up summary pass (None: all);
    that pass also collects each source's instruction pool for mismatched completion negatives, so a cap changes
    the training labels, not only the summary.
  label_counts: bool (True): count the labels epoch 0 will draw, for the summary (a second pass over every source;
    a stream read only for a few validation batches turns it off).
Each element: images uint8 [2,S,S,3] (image A = context frame, image B = current frame; see prompts.py; a legacy
one-image example gets a black second slot), num_images int32, prompt (display text), instruction, answer, kind,
source, episode_id (strings), target float32. Text stays raw: tokenisation belongs to the training layer.
"""
import dataclasses
import logging
from typing import Iterable, Optional

import numpy as np
import tensorflow as tf

from data_pipelines import augment as augment_lib
from data_pipelines import labels as labels_lib
from data_pipelines import prompts, registry
from data_pipelines.guard import TaskGuard

_log = logging.getLogger(__name__)

DEFAULTS = dict(seed=0, image_size=224, augment=True, shuffle_buffer=256, batch_size=None, labels={},
                summary_max_trajectories=None, prefetch=2, label_counts=True)

SIGNATURE = {
    "images": tf.TensorSpec([2, None, None, 3], tf.uint8), "num_images": tf.TensorSpec([], tf.int32),
    "prompt": tf.TensorSpec([], tf.string), "instruction": tf.TensorSpec([], tf.string),
    "answer": tf.TensorSpec([], tf.string),
    "kind": tf.TensorSpec([], tf.string), "source": tf.TensorSpec([], tf.string),
    "episode_id": tf.TensorSpec([], tf.string), "target": tf.TensorSpec([], tf.float32),
}


def _get(cfg, key, default=None):
  if isinstance(cfg, dict):
    return cfg.get(key, default)
  return getattr(cfg, key, default) if key in cfg else default


@dataclasses.dataclass
class SourceSummary:
  name: str
  weight: float
  trajectories: int = 0
  frames: int = 0
  success: int = 0
  failed: int = 0
  unknown: int = 0
  skipped: int = 0
  no_language: int = 0  # episodes without an instruction, skipped by the reader (Bridge, DROID)
  examples: dict = dataclasses.field(default_factory=dict)  # kind -> {answer: count}

  def line(self) -> str:
    bal = []
    for kind in prompts.KINDS:
      c = self.examples.get(kind, {})
      if kind == prompts.PROGRESS:
        bal.append(f"progress {sum(c.values())}")
      else:
        bal.append(f"{kind} " + "/".join(f"{a}:{c.get(a, 0)}" for a in prompts.ANSWERS[kind]))
    return (f"{self.name:<24} w={self.weight:.3f} traj={self.trajectories} frames={self.frames} "
            f"succ/fail/unk={self.success}/{self.failed}/{self.unknown} skipped={self.skipped}"
            + (f" no_language={self.no_language}" if self.no_language else "") + " | " + ", ".join(bal))


def _to_element(ex: labels_lib.LabelExample) -> dict:
  imgs = list(ex.images)
  if len(imgs) == 1:
    imgs.append(np.zeros_like(imgs[0]))
  return {"images": np.stack(imgs), "num_images": np.int32(len(ex.images)), "prompt": ex.prompt,
          "instruction": ex.instruction,
          "answer": ex.answer, "kind": ex.kind, "source": ex.source, "episode_id": ex.episode_id,
          "target": np.float32(ex.target)}


class Mixture:
  """Reads every source twice at start (counts + instruction pools, then label balance), then serves `dataset()`.

  exclude_tasks: held-out task names; readers drop them and a TaskGuard raises if any still gets through.
  exclude_instructions: held-out instructions known up front (e.g. every phrasing of every held-out task); any
    trajectory carrying one raises, whatever its source, even sources without task names (human video, OXE).
  process_index / process_count: per-host sharding by trajectory (default: jax.process_index/count()).
  """

  def __init__(self, config, *, exclude_tasks: Iterable[str] = (), exclude_instructions: Iterable[str] = (),
               process_index: Optional[int] = None, process_count: Optional[int] = None):
    self.config = config
    self.seed = int(_get(config, "seed", DEFAULTS["seed"]))
    self.label_cfg = labels_lib.LabelConfig(**dict(_get(config, "labels", None) or {}))
    if process_index is None or process_count is None:
      import jax  # only for host topology; data_pipelines uses no models or devices
      process_index, process_count = jax.process_index(), jax.process_count()
    self.process_index, self.process_count = int(process_index), int(process_count)
    self.exclude_tasks = frozenset(exclude_tasks)
    self.guard = TaskGuard(self.exclude_tasks)
    self.guard.add_instructions(exclude_instructions)
    self.sources = [s for s in _get(config, "sources", []) if float(_get(s, "weight", 1.0)) > 0]
    if not self.sources:
      raise ValueError("mixture config: expected at least one source with weight > 0 in config.sources")
    names = [_get(s, "name") for s in self.sources]
    if len(set(names)) != len(names) or None in names:
      raise ValueError(f"mixture config: source names must be present and unique, got {names}")
    total = sum(float(_get(s, "weight", 1.0)) for s in self.sources)
    self.weights = [float(_get(s, "weight", 1.0)) / total for s in self.sources]
    self.readers = [self._make_reader(s) for s in self.sources]
    self.label_cfgs = [dataclasses.replace(self.label_cfg, **dict(_get(src, "labels", None) or {}))
                       for src in self.sources]
    counted = [self._count(i) for i in range(len(self.sources))]
    self.summary = [c[0] for c in counted]
    self.pools = [c[1] for c in counted]
    self.all_instructions = sorted({text for pool in self.pools for text in pool})
    for i, pool in enumerate(self.pools):  # excluded instructions are only all known after every reader ran
      for text in pool:
        self.guard.check_instruction(text, f"source {names[i]}")
    if bool(_get(config, "label_counts", DEFAULTS["label_counts"])):
      for i in range(len(self.sources)):
        self._balance(i)

  def _make_reader(self, src):
    kwargs = dict(_get(src, "reader_kwargs", None) or {})
    if self.exclude_tasks:
      kwargs["exclude_tasks"] = self.exclude_tasks
    reader = registry.make_reader(_get(src, "format"), _get(src, "path"), **kwargs)
    if hasattr(reader, "shard"):
      reader.shard(self.process_index, self.process_count)
    return reader

  def _trajectories(self, i):
    """This host's trajectories of source i: readers with `shard()` skip other hosts' items before loading them;
    any other iterable is sharded here by position."""
    reader = self.readers[i]
    own_shard = hasattr(reader, "shard")
    for t, traj in enumerate(reader):
      self.guard.add_instructions(getattr(reader, "excluded_instructions", ()))
      if own_shard or t % self.process_count == self.process_index:
        yield self.guard.check(traj)
    self.guard.add_instructions(getattr(reader, "excluded_instructions", ()))  # episodes dropped at the end

  def _rng(self, i, epoch, t):
    return np.random.default_rng([self.seed, i, epoch, t, self.process_index])

  def _count(self, i) -> tuple[SourceSummary, list[str]]:
    """First pass: trajectories, frames, success counts and the source's instruction pool."""
    s = SourceSummary(_get(self.sources[i], "name"), self.weights[i])
    cap = _get(self.config, "summary_max_trajectories", None)
    pool = set()
    for t, traj in enumerate(self._trajectories(i)):
      if cap is not None and t >= cap:
        break
      pool.add(traj.instruction)
      s.trajectories += 1
      s.frames += traj.num_frames
      if traj.success is None:
        s.unknown += 1
      elif traj.success:
        s.success += 1
      else:
        s.failed += 1
    if s.trajectories == 0:
      raise ValueError(f"mixture source {s.name!r}: no trajectories read from {_get(self.sources[i], 'path')}")
    return s, sorted(pool)

  def _balance(self, i) -> None:
    """Second pass, once every pool is known: label balance exactly as epoch 0 will draw it (counts only)."""
    s = self.summary[i]
    cap = _get(self.config, "summary_max_trajectories", None)
    for t, traj in enumerate(self._trajectories(i)):
      if cap is not None and t >= cap:
        break
      for ex in labels_lib.make_examples(traj, self._rng(i, 0, t), self._pool(i), self.label_cfgs[i]):
        counts = s.examples.setdefault(ex.kind, {})
        counts[ex.answer] = counts.get(ex.answer, 0) + 1
    s.skipped = getattr(getattr(self.readers[i], "skips", None), "count", 0)
    s.no_language = getattr(self.readers[i], "no_instruction_count", 0)

  def _pool(self, i) -> list[str]:
    """Instructions for mismatched completion negatives: the source's own (hard negatives from the same domain),
    or every source's when the source has a single instruction."""
    return self.pools[i] if len(self.pools[i]) > 1 else self.all_instructions

  def summary_text(self) -> str:
    head = (f"mixture: {len(self.sources)} sources, seed {self.seed}, host {self.process_index} of "
            f"{self.process_count} (counts are this host's shard), excluded tasks {sorted(self.exclude_tasks)}")
    return "\n".join([head] + ["  " + s.line() for s in self.summary])

  def _examples(self, i, repeat: bool):
    """Generator of elements of source i for this host, epoch after epoch."""
    epoch = 0
    while True:
      mine = 0
      for t, traj in enumerate(self._trajectories(i)):
        mine += 1
        for ex in labels_lib.make_examples(traj, self._rng(i, epoch, t), self._pool(i), self.label_cfgs[i]):
          yield _to_element(ex)
      if mine == 0:
        raise ValueError(f"mixture source {self.summary[i].name!r}: no trajectories for host "
                         f"{self.process_index} of {self.process_count}")
      epoch += 1
      if not repeat:
        return

  def _source_dataset(self, i, repeat: bool) -> tf.data.Dataset:
    size = int(_get(self.config, "image_size", DEFAULTS["image_size"]))
    do_aug = bool(_get(self.config, "augment", DEFAULTS["augment"]))
    ds = tf.data.Dataset.from_generator(lambda: self._examples(i, repeat), output_signature=SIGNATURE)

    def prep(n, ex):
      ex = dict(ex)
      ex["images"] = augment_lib.resize(ex["images"], size)
      if do_aug:
        # Stateless seed per (run seed, source, host, element): reproducible whatever the read-ahead.
        stream = (self.seed * 1009 + i) * 65537 + self.process_index
        seed = tf.stack([tf.constant(stream, tf.int64), n])
        ex["images"] = augment_lib.augment(ex["images"], ex["num_images"], seed)
      return ex

    ds = ds.enumerate().map(prep, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    buf = int(_get(self.config, "shuffle_buffer", DEFAULTS["shuffle_buffer"]))
    if buf > 1:
      ds = ds.shuffle(buf, seed=self.seed + 7919 * (i + 1), reshuffle_each_iteration=True)
    return ds

  def dataset(self, repeat: bool = True) -> tf.data.Dataset:
    """The mixed stream; deterministic given config.seed (and host index)."""
    per_source = [self._source_dataset(i, repeat) for i in range(len(self.sources))]
    seed = self.seed + 104729 * self.process_index
    ds = tf.data.Dataset.sample_from_datasets(per_source, weights=self.weights, seed=seed,
                                              stop_on_empty_dataset=False)
    batch = _get(self.config, "batch_size", None)
    if batch:
      ds = ds.batch(int(batch), drop_remainder=True)
    opts = tf.data.Options()
    opts.deterministic = True
    ds = ds.with_options(opts)
    return ds.prefetch(int(_get(self.config, "prefetch", DEFAULTS["prefetch"])))


def build_mixture(config, *, exclude_tasks: Iterable[str] = (), exclude_instructions: Iterable[str] = (),
                  process_index=None, process_count=None, repeat: bool = True, verbose: bool = True):
  """Builds the mixture, prints its per-source summary, returns (tf.data.Dataset, Mixture)."""
  mix = Mixture(config, exclude_tasks=exclude_tasks, exclude_instructions=exclude_instructions,
                process_index=process_index, process_count=process_count)
  text = mix.summary_text()
  _log.info("%s", text)
  if verbose:
    print(text, flush=True)
  return mix.dataset(repeat=repeat), mix
