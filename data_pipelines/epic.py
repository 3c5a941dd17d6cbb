"""EPIC-KITCHENS-100: narration CSV + extracted frames `PXX/rgb_frames/PXX_YY/frame_%010d.jpg` (1-based).
One narration segment [start_frame, stop_frame] = one trajectory; its narration is the instruction."""
import ast
import csv
import functools
import os
from typing import Optional

import numpy as np
from PIL import Image

from data_pipelines.errors import DataFormatError
from data_pipelines.reader import Reader, failing
from data_pipelines.record import Trajectory, subsample_indices
from data_pipelines.video import resize_frame

REQUIRED = ("narration_id", "participant_id", "video_id", "start_frame", "stop_frame", "narration")


def _read_csv(path) -> list[dict]:
  try:
    with open(path, newline="") as f:
      rows = list(csv.DictReader(f))
      header = rows[0].keys() if rows else []
  except FileNotFoundError:
    raise DataFormatError(path, "file", "an EPIC-KITCHENS-100 CSV", "file not found")
  missing = [c for c in REQUIRED if c not in header] if rows else []
  if missing:
    raise DataFormatError(path, "columns", f"columns {list(REQUIRED)}", f"missing {missing}")
  return rows


def read_jpeg(path, size=None) -> np.ndarray:
  try:
    with Image.open(path) as im:
      frame = np.asarray(im.convert("RGB"))
  except FileNotFoundError:
    raise DataFormatError(path, "frame", "a JPEG frame of the narration segment", "file not found")
  except OSError as e:
    raise DataFormatError(path, "frame", "a decodable JPEG", str(e).splitlines()[0][:100])
  return resize_frame(frame, size)


class EpicKitchensReader(Reader):
  """Reads `annotations` (default `<root>/EPIC_100_train.csv`); frames from `<root>/<PXX>/rgb_frames/<video>/`.

  fps comes from `EPIC_100_video_info.csv` beside the annotations when present (timestamps are then known).
  Success unknown (None): a narrated action counts as a successful demonstration of its narration.
  max_frames keeps evenly spaced frames of each segment (first and last always), reading only those JPEGs.
  """
  source = "epic_kitchens"

  def __init__(self, root, *, annotations: Optional[str] = None, frame_size=None, **kw):
    super().__init__(**kw)
    self.root = str(root)
    self.annotations = annotations or os.path.join(self.root, "EPIC_100_train.csv")
    self.frame_size = frame_size
    info = os.path.join(os.path.dirname(self.annotations), "EPIC_100_video_info.csv")
    self.fps = {}
    if os.path.exists(info):
      self.fps = {r["video_id"]: float(r["fps"]) for r in _read_csv_plain(info)}

  def _items(self):
    try:
      rows = _read_csv(self.annotations)
    except DataFormatError as err:
      yield self.annotations, failing(err)
      return
    for k, row in enumerate(rows):
      yield f"{self.annotations}[row {k + 2}]", functools.partial(self._load, k, row)

  def _load(self, k, row) -> Trajectory:
    where = f"{self.annotations}[row {k + 2}]"
    try:
      start, stop = int(row["start_frame"]), int(row["stop_frame"])
    except ValueError:
      raise DataFormatError(where, "start_frame/stop_frame", "integers", f"{row['start_frame']!r}, "
                            f"{row['stop_frame']!r}")
    if start < 1 or stop < start:
      raise DataFormatError(where, "start_frame/stop_frame", "1 <= start_frame <= stop_frame", f"{start}, {stop}")
    folder = os.path.join(self.root, row["participant_id"], "rgb_frames", row["video_id"])
    numbers = start + subsample_indices(stop - start + 1, self.max_frames)
    frames = np.stack([read_jpeg(os.path.join(folder, f"frame_{n:010d}.jpg"), self.frame_size) for n in numbers])
    fps = self.fps.get(row["video_id"])
    meta = {"frame_number": numbers, "verb": row.get("verb"), "noun": row.get("noun"), "fps": fps}
    if row.get("all_nouns"):
      try:
        meta["all_nouns"] = ast.literal_eval(row["all_nouns"])  # Python list literal in the CSV
      except (ValueError, SyntaxError):
        raise DataFormatError(where, "all_nouns", "a Python list literal", row["all_nouns"][:60])
    return Trajectory(
        frames=frames.astype(np.uint8), instruction=row["narration"].strip(), source=self.source, success=None,
        timestamps=None if fps is None else ((numbers - start) / fps).astype(np.float32),
        episode_id=row["narration_id"], task=None, metadata=meta)


def _read_csv_plain(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))
