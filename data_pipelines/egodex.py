"""EgoDex: `<part>/<task>/<k>.mp4` (1080p, 30 fps) beside `<k>.hdf5` holding hand/camera poses and the
description attributes. Pose frame i is video frame i; only the video and the description are used here."""
import functools
import glob
import os
from typing import Optional

import numpy as np

from data_pipelines import hdf5_util
from data_pipelines.errors import DataFormatError
from data_pipelines.reader import Reader, failing
from data_pipelines.record import Trajectory
from data_pipelines.video import read_video


def egodex_instruction(path, attrs) -> str:
  """The reversible-description rule: reversible tasks were recorded in both directions and carry two
  descriptions; `which_llm_description` says which one this clip shows. Older files only have `description`."""
  def get(name):
    return hdf5_util.attr_text(path, attrs, name, required=False)

  llm_type, which = get("llm_type"), get("which_llm_description")
  if llm_type == "reversible":
    key = "llm_description" if (which or "1").strip() == "1" else "llm_description2"
  else:
    key = "llm_description"
  text = get(key)
  if text is None and key == "llm_description":
    key, text = "description", get("description")
  if text is None or not text.strip():
    raise DataFormatError(path, f"attrs['{key}']", "a non-empty task description", "missing or empty")
  return text.strip()


class EgoDexReader(Reader):
  """Every `<k>.mp4` under `root` (sorted) with its `<k>.hdf5`. Success is unknown (None): human demonstrations
  count as successful demonstrations of their description (labels.LabelConfig.unknown_success).

  max_frames / frame_size: subsample and resize while decoding (1080p clips do not fit memory otherwise).
  """
  source = "egodex"

  def __init__(self, root, *, frame_size: Optional[tuple[int, int]] = None, **kw):
    super().__init__(**kw)
    self.root, self.frame_size = str(root), frame_size

  def _items(self):
    videos = sorted(glob.glob(os.path.join(self.root, "**", "*.mp4"), recursive=True))
    if not videos:
      yield self.root, failing(DataFormatError(self.root, "files", "<part>/<task>/<k>.mp4 videos", "none found"))
    for video in videos:
      yield video, functools.partial(self._load, video)

  def _load(self, video) -> Trajectory:
    h5 = os.path.splitext(video)[0] + ".hdf5"
    if not os.path.exists(h5):
      raise DataFormatError(h5, "file", "an EgoDex .hdf5 beside the .mp4", "file not found")
    with hdf5_util.open_h5(h5) as f:
      instruction = egodex_instruction(h5, f)
      pose_frames = None
      if "transforms" in f and len(f["transforms"]):
        pose_frames = int(f["transforms"][sorted(f["transforms"].keys())[0]].shape[0])
    frames, idx, fps = read_video(video, max_frames=self.max_frames, size=self.frame_size)
    task = os.path.basename(os.path.dirname(video))
    return Trajectory(
        frames=frames, instruction=instruction, source=self.source, success=None,
        timestamps=(idx / fps).astype(np.float32), episode_id=os.path.relpath(video, self.root), task=task,
        metadata={"frame_index": idx, "fps": fps, "pose_frames": pose_frames})
