"""Generic RLDS reader: one image key and one instruction key per dataset -> Trajectory records.

OXE, RLDS LIBERO and the suite's own dataset differ only in which keys they use; see oxe.py, libero.py,
suite_rlds.py.
"""
import functools
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from data_pipelines import tfds_io
from data_pipelines.errors import DataFormatError
from data_pipelines.reader import Reader, failing
from data_pipelines.record import Trajectory, decode_text, subsample_indices


def decode_instruction(value, encoding: str, where, field: str) -> str:
  """`text`: a (bytes) string. `int_bytes`: int32[512] UTF-8 codes, zero padded (language_table)."""
  if encoding == "text":
    return decode_text(value).strip()
  if encoding == "int_bytes":
    codes = np.asarray(value).reshape(-1)
    if not np.issubdtype(codes.dtype, np.integer):
      raise DataFormatError(where, field, "an integer array of UTF-8 byte codes", f"dtype {codes.dtype}")
    nul = np.flatnonzero(codes == 0)
    codes = codes[: nul[0]] if nul.size else codes
    return bytes(codes.astype(np.uint8).tolist()).decode("utf-8", errors="replace").strip()
  raise ValueError(f"instruction encoding: expected 'text' or 'int_bytes', got {encoding!r}")


def success_from_reward(steps: dict, meta: dict) -> Optional[bool]:
  """Sparse-reward datasets (RLDS LIBERO): the last step's reward is 1 exactly when the episode succeeded."""
  r = steps.get("reward")
  return None if r is None or len(r) == 0 else bool(r[-1] > 0)


class RldsReader(Reader):
  """Reads an RLDS TFDS folder.

  image_key: step key of the primary camera, e.g. "observation/image".
  instruction_key: step key (first step is used) or episode key ("episode_metadata/..."); None with
    `instruction` given uses that fixed text for every episode.
  success_fn(steps, episode) -> bool | None.
  """

  def __init__(self, path, *, image_key: str, instruction_key: Optional[str], source: str,
               instruction_encoding: str = "text", instruction: Optional[str] = None,
               success_fn: Callable = lambda steps, meta: None, task_fn: Callable = lambda steps, meta: None,
               split: str = "train", **kw):
    self.source = source
    super().__init__(**kw)
    self.path, self.image_key, self.instruction_key = str(path), image_key, instruction_key
    self.instruction_encoding, self.instruction = instruction_encoding, instruction
    self.success_fn, self.task_fn, self.split = success_fn, task_fn, split

  def _mine(self, k: int) -> bool:
    return True  # sharded inside iter_episodes, before records are read

  def _check_keys(self, builder):
    steps, eps = tfds_io.step_keys(builder), tfds_io.episode_keys(builder)
    if self.image_key not in steps:
      raise DataFormatError(self.path, f"steps/{self.image_key}", "the image feature",
                            f"step keys {steps}")
    if self.instruction_key is not None and self.instruction_key not in steps + eps:
      raise DataFormatError(self.path, self.instruction_key, "the instruction feature",
                            f"step keys {steps}, episode keys {eps}")

  def _items(self):
    try:
      builder = tfds_io.open_builder(self.path)
      self._check_keys(builder)
    except DataFormatError as err:
      yield self.path, failing(err)
      return
    episodes = tfds_io.iter_episodes(builder, self.split, (self.shard_index, self.shard_count))
    while True:
      try:
        i, steps, meta = next(episodes)
      except StopIteration:
        return
      except tf.errors.OpError as e:  # a corrupted or truncated shard ends the readable part of the split
        yield self.path, failing(DataFormatError(self.path, "tfrecord shards", "readable TFRecord records",
                                                 f"{type(e).__name__}: {e.message.splitlines()[0][:120]}"))
        return
      where = f"{self.path}[{self.split} episode {i}]"
      yield where, functools.partial(self._to_record, where, i, steps, meta)

  def _instruction(self, where, steps, meta) -> str:
    if self.instruction_key is None:
      if self.instruction is None:
        raise DataFormatError(where, "instruction", "an instruction key or a fixed instruction= for this dataset")
      return self.instruction
    value = steps[self.instruction_key][0] if self.instruction_key in steps else meta[self.instruction_key]
    return decode_instruction(value, self.instruction_encoding, where, self.instruction_key)

  def _to_record(self, where, i, steps, meta) -> Trajectory:
    if not steps or len(steps.get("is_first", steps.get(self.image_key, []))) == 0:
      raise DataFormatError(where, "steps", "at least one step", "an empty episode")
    frames = steps[self.image_key]
    if frames.ndim != 4 or frames.shape[-1] != 3:
      raise DataFormatError(where, f"steps/{self.image_key}", "images of rank 3 (H,W,3) per step",
                            f"per-step shape {frames.shape[1:]}")
    keep = subsample_indices(len(frames), self.max_frames)
    stage = steps.get("stage")
    file_path = meta.get("episode_metadata/file_path")
    return Trajectory(
        frames=np.ascontiguousarray(frames[keep]), instruction=self._instruction(where, steps, meta),
        source=self.source, success=self.success_fn(steps, meta), timestamps=None,
        stage=None if stage is None else stage[keep].astype(np.int32),
        episode_id=f"{self.source}/{self.split}/{i}" + (f":{decode_text(file_path)}" if file_path is not None
                                                      else ""),
        task=self.task_fn(steps, meta),
        metadata={"step_index": keep, "num_steps": len(frames)})
