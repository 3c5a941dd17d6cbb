"""HOI4D: `ZY2021080000*/H*/C*/N*/S*/s*/T*/` sequences with `align_rgb/image.mp4` and `action/color.json`.

One sequence = one trajectory; its instruction comes from the (object class, task) table; the annotated action
events give a per-frame stage (index of the event in progress).
"""
import functools
import glob
import json
import os
import re
from typing import Optional

import numpy as np

from data_pipelines.errors import DataFormatError
from data_pipelines.hoi4d_tasks import HOI4D_TASKS
from data_pipelines.reader import Reader, failing
from data_pipelines.record import Trajectory
from data_pipelines.video import read_video

FRAMES_PER_VIDEO = 300  # every HOI4D clip has 300 frames; fps = 300 / annotated duration


def parse_color_json(path) -> tuple[float, list[tuple[str, float, float]]]:
  """Both schemas -> (duration seconds, [(event, start s, end s)] sorted by start).

  New: {"info": {"duration": D}, "events": [{"event", "startTime", "endTime"}]}
  Old: {"info": {"Duration": D}, "markResult": {"marks": [{"event", "hdTimeStart", "hdTimeEnd"}]}}
  """
  try:
    with open(path) as f:
      doc = json.load(f)
  except FileNotFoundError:
    raise DataFormatError(path, "file", "an HOI4D action/color.json", "file not found")
  except json.JSONDecodeError as e:
    raise DataFormatError(path, "file", "valid JSON", f"invalid JSON ({e.msg})")
  info = doc.get("info", {}) if isinstance(doc, dict) else {}
  if "events" in doc:
    duration, raw, keys = info.get("duration"), doc["events"], ("startTime", "endTime")
    field = "events"
  elif "markResult" in doc:
    duration, raw, keys = info.get("Duration"), doc["markResult"].get("marks"), ("hdTimeStart", "hdTimeEnd")
    field = "markResult.marks"
  else:
    raise DataFormatError(path, "events", "'events' (new schema) or 'markResult.marks' (old schema)",
                          f"keys {sorted(doc) if isinstance(doc, dict) else type(doc).__name__}")
  if not isinstance(duration, (int, float)) or duration <= 0:
    raise DataFormatError(path, "info.duration", "a positive duration in seconds", repr(duration))
  if not isinstance(raw, list):
    raise DataFormatError(path, field, "a list of events", type(raw).__name__)
  events = []
  for i, ev in enumerate(raw):
    try:
      events.append((str(ev["event"]), float(ev[keys[0]]), float(ev[keys[1]])))
    except (KeyError, TypeError, ValueError):
      raise DataFormatError(path, f"{field}[{i}]", f"'event', '{keys[0]}', '{keys[1]}'", repr(ev)[:80])
  return float(duration), sorted(events, key=lambda e: e[1])


def stage_at(times: np.ndarray, events) -> np.ndarray:
  """Index of the latest event started at each time (0 before the first)."""
  starts = np.array([e[1] for e in events]) if events else np.zeros(1)
  return np.maximum(np.searchsorted(starts, times, side="right") - 1, 0).astype(np.int32)


class Hoi4dReader(Reader):
  """Every `.../C*/.../T*/align_rgb/image.mp4` under `root` (sorted). Success unknown (None): counts as a
  successful demonstration. `task_table` adds to / overrides the built-in (class, task) -> text table."""
  source = "hoi4d"

  def __init__(self, root, *, task_table: Optional[dict] = None, frame_size=None, **kw):
    super().__init__(**kw)
    self.root, self.frame_size = str(root), frame_size
    self.table = {**HOI4D_TASKS, **(task_table or {})}

  def _items(self):
    videos = sorted(glob.glob(os.path.join(self.root, "**", "align_rgb", "image.mp4"), recursive=True))
    if not videos:
      yield self.root, failing(DataFormatError(self.root, "files", ".../T*/align_rgb/image.mp4", "none found"))
    for video in videos:
      yield video, functools.partial(self._load, video)

  def _load(self, video) -> Trajectory:
    seq = os.path.dirname(os.path.dirname(video))
    rel = os.path.relpath(seq, self.root).split(os.sep)
    cls = next((p for p in rel if re.fullmatch(r"C\d+", p)), None)
    task = next((p for p in rel if re.fullmatch(r"T\d+", p)), None)
    if cls is None or task is None:
      raise DataFormatError(video, "path", "a ZY*/H*/C*/N*/S*/s*/T*/ sequence folder", os.path.join(*rel))
    if (cls, task) not in self.table:
      raise DataFormatError(video, "task table", f"an entry for ({cls}, {task}) in the HOI4D task table "
                            "(pass task_table=)", "no entry")
    duration, events = parse_color_json(os.path.join(seq, "action", "color.json"))
    frames, idx, _container_fps = read_video(video, max_frames=self.max_frames, size=self.frame_size)
    times = (idx * duration / FRAMES_PER_VIDEO).astype(np.float32)
    return Trajectory(
        frames=frames, instruction=self.table[(cls, task)], source=self.source, success=None,
        timestamps=times, stage=stage_at(times, events), episode_id=os.path.relpath(seq, self.root),
        task=f"{cls}/{task}", metadata={"frame_index": idx, "events": [e[0] for e in events]})
