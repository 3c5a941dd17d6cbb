"""Something-Something-v2: `<root>/<id>.webm` (about 12 fps) and `labels/{train,validation}.json` with the filled
sentence (`label`), its template and placeholders; `labels/labels.json` maps template -> class index.

The official archive parts extract the videos into `<root>/20bn-something-something-v2/` beside `<root>/labels/`;
without `videos_dir` the reader looks there first, then in `<root>/`."""
import functools
import json
import os
from typing import Optional

import numpy as np

from data_pipelines.errors import DataFormatError
from data_pipelines.reader import Reader, failing
from data_pipelines.record import Trajectory
from data_pipelines.video import read_video


def _load_json(path):
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    raise DataFormatError(path, "file", "an SSv2 labels JSON file", "file not found")
  except json.JSONDecodeError as e:
    raise DataFormatError(path, "file", "valid JSON", f"invalid JSON ({e.msg})")


def template_text(template: str) -> str:
  """"Putting [something] into [something]" -> "Putting something into something" (labels.json keys)."""
  return template.replace("[", "").replace("]", "")


ARCHIVE_DIR = "20bn-something-something-v2"  # where the official archive parts put the .webm files


class Ssv2Reader(Reader):
  """One trajectory per labelled video; instruction = the filled label sentence, task = the template.

  Success unknown (None): counts as a successful demonstration of its own sentence. Note that some templates
  describe pretending or failing ("Pretending to ...", "Failing to ..."); the sentence says so, which keeps the
  pairing of frames and text truthful.
  """
  source = "ssv2"

  def __init__(self, root, *, split: str = "train", labels_file: Optional[str] = None,
               videos_dir: Optional[str] = None, frame_size=None, **kw):
    super().__init__(**kw)
    self.root = str(root)
    self.labels_file = labels_file or os.path.join(self.root, "labels", f"{split}.json")
    self.videos_dir = videos_dir  # None: <root>/20bn-something-something-v2/, then <root>/
    self.frame_size = frame_size
    self.classes = {}
    classes_file = os.path.join(os.path.dirname(self.labels_file), "labels.json")
    if os.path.exists(classes_file):
      self.classes = {k: int(v) for k, v in _load_json(classes_file).items()}

  def _items(self):
    try:
      entries = _load_json(self.labels_file)
      if not isinstance(entries, list):
        raise DataFormatError(self.labels_file, "top level", "a list of entries", type(entries).__name__)
    except DataFormatError as err:
      yield self.labels_file, failing(err)
      return
    for k, entry in enumerate(entries):
      yield f"{self.labels_file}[{k}]", functools.partial(self._load, k, entry)

  def _video_path(self, where: str, vid: str) -> str:
    if self.videos_dir:
      return os.path.join(self.videos_dir, f"{vid}.webm")
    dirs = (os.path.join(self.root, ARCHIVE_DIR), self.root)
    for d in dirs:
      path = os.path.join(d, f"{vid}.webm")
      if os.path.exists(path):
        return path
    raise DataFormatError(where, "video", f"{vid}.webm in {dirs[0]}/ or {dirs[1]}/", "file not found")

  def _load(self, k, entry) -> Trajectory:
    where = f"{self.labels_file}[{k}]"
    if not isinstance(entry, dict) or "id" not in entry:
      raise DataFormatError(where, "id", "an entry with 'id'", repr(entry)[:80])
    if "label" not in entry:
      raise DataFormatError(where, "label", "a filled label sentence (test files hold only ids)",
                            f"keys {sorted(entry)}")
    vid = str(entry["id"])
    template = template_text(entry.get("template", ""))
    frames, idx, fps = read_video(self._video_path(where, vid), max_frames=self.max_frames, size=self.frame_size)
    return Trajectory(
        frames=frames, instruction=str(entry["label"]).strip(), source=self.source, success=None,
        timestamps=(idx / fps).astype(np.float32), episode_id=vid, task=template or None,
        metadata={"frame_index": idx, "fps": fps, "placeholders": entry.get("placeholders", []),
                  "class_index": self.classes.get(template)})
