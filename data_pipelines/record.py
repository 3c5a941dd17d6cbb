"""The common trajectory record every reader produces, and its validation.

Readers differ in where things live on disk; everything downstream (labels, mixture, summaries) sees only this.
"""
import dataclasses
from typing import Any, Optional

import numpy as np

from data_pipelines.errors import DataFormatError


@dataclasses.dataclass
class Trajectory:
  """One episode (robot) or one narrated clip (human video).

  frames: uint8 [T, H, W, 3], upright, primary camera.
  instruction: the task in words (what a reward query is conditioned on).
  source: name of the source (dataset) it came from, e.g. "libero_hdf5:libero_10".
  success: True/False when the data says so; None when unknown (human video, most OXE sets).
  timestamps: float32 [T] seconds since the first *decoded* frame of the episode, when the frame rate is known.
  stage: int32 [T] per-step stage index when known (suite data: privileged; HOI4D: annotated event index).
  episode_id: stable identifier (file + episode) used for seeding and reporting.
  task: task name when the source has one (used for held-out filtering); None otherwise.
  metadata: anything else source-specific (embodiment, noise, fps, ...).
  """
  frames: np.ndarray
  instruction: str
  source: str
  success: Optional[bool] = None
  timestamps: Optional[np.ndarray] = None
  stage: Optional[np.ndarray] = None
  episode_id: str = ""
  task: Optional[str] = None
  metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def num_frames(self) -> int:
    return int(self.frames.shape[0])

  def validate(self, path) -> "Trajectory":
    """Checks shapes and types; raises DataFormatError naming `path` and the offending field."""
    f = self.frames
    if not isinstance(f, np.ndarray) or f.ndim != 4 or f.shape[-1] != 3:
      raise DataFormatError(path, "frames", "uint8 array of rank 4 [T,H,W,3]",
                            f"shape {getattr(f, 'shape', type(f).__name__)}")
    if f.dtype != np.uint8:
      raise DataFormatError(path, "frames", "dtype uint8", f"{f.dtype}")
    if f.shape[0] == 0:
      raise DataFormatError(path, "frames", "at least one frame", "an empty episode")
    if not isinstance(self.instruction, str) or not self.instruction.strip():
      raise DataFormatError(path, "instruction", "a non-empty string", repr(self.instruction))
    for name in ("timestamps", "stage"):
      v = getattr(self, name)
      if v is not None and np.shape(v) != (f.shape[0],):
        raise DataFormatError(path, name, f"shape ({f.shape[0]},) matching frames", f"shape {np.shape(v)}")
    return self


def subsample_indices(num: int, max_frames: Optional[int]) -> np.ndarray:
  """Evenly spaced indices that always keep the first and last frame (the last one decides completion)."""
  if max_frames is None or num <= max_frames:
    return np.arange(num)
  return np.unique(np.round(np.linspace(0, num - 1, max_frames)).astype(np.int64))


def decode_text(value) -> str:
  """bytes / numpy bytes / str -> str (HDF5 attributes and TFDS strings come back as either)."""
  if isinstance(value, np.ndarray) and value.shape == ():
    value = value.item()
  if isinstance(value, (bytes, np.bytes_)):
    return bytes(value).decode("utf-8")
  return str(value)
