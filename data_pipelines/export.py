"""Writers that lay simulated suite episodes out exactly as real datasets are laid out, so the CPU-scale demo runs the
same readers a user with real data runs.

- `write_epic(root, episodes, fps)`: EPIC-KITCHENS-100 (narration CSV + `PXX/rgb_frames/PXX_YY/frame_%010d.jpg`),
  read by `epic.EpicKitchensReader` (format `epic_kitchens`).
- `write_oxe_rlds(data_dir, episodes, image_size)`: an RLDS dataset `lrm_bench_oxe/0.1.0` in the Open-X "converted"
  key layout (`steps/observation/image`, `steps/language_instruction`, `episode_metadata/file_path`), read by
  `oxe.OxeReader` (format `oxe`, table entry `lrm_bench_oxe`).
- `atomic_dir(final)`: write a source into a temporary sibling folder and rename it into place when complete;
  `remove_incomplete(parent)`: the temporary folders a killed run left behind.

Episodes are the suite's dicts (images uint8 [T,H,W,3], state, action, reward, instruction, task, success, seed).
Neither format has a success flag (human video and most Open-X sets are demonstrations, read as successful), so only
successful episodes may be exported: the writers refuse failed ones. Task names are not written either (real data
has none); held-out filtering happens before export, and the mixture's instruction guard checks again on reading.
"""
import contextlib
import csv
import os
import re
import shutil
import tempfile
from typing import Iterable, Sequence

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from data_pipelines import tfds_io

EPIC_COLUMNS = ("narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
                "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
                "noun_class", "all_nouns", "all_noun_classes")
# Our own small verb/noun class tables (EPIC's are EPIC_100_verb_classes.csv / noun_classes.csv; ids are ours).
NOUNS = ("block", "button", "cube", "drawer", "mat", "plate", "table", "tower")
OXE_NAME, OXE_VERSION = "lrm_bench_oxe", "0.1.0"


@contextlib.contextmanager
def atomic_dir(final: str, inner: str = ""):
  """Yields an empty temporary folder beside `final`; on success `tmp/inner` replaces `final` (old one removed),
  on error nothing changes. Readers never see a half-written source under the final name."""
  final = os.path.abspath(final)
  parent = os.path.dirname(final)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".incomplete-{os.path.basename(final)}-", dir=parent)
  try:
    yield tmp
    src = os.path.join(tmp, inner) if inner else tmp
    old = None
    if os.path.exists(final):
      old = tempfile.mkdtemp(prefix=f".old-{os.path.basename(final)}-", dir=parent)
      os.rename(final, os.path.join(old, "x"))
    os.rename(src, final)
    if old:
      shutil.rmtree(old, ignore_errors=True)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def remove_incomplete(parent: str) -> list[str]:
  """Removes the temporary folders `atomic_dir` left in `parent` when its process was killed (`kill -9` skips its
  clean-up): a rerun writes those sources again from the start. Assumes no other writer is busy in `parent`.
  Returns the removed folders."""
  if not os.path.isdir(parent):
    return []
  stale = sorted(os.path.join(parent, n) for n in os.listdir(parent) if n.startswith((".incomplete-", ".old-")))
  for path in stale:
    shutil.rmtree(path, ignore_errors=True)
  return stale


def _require_successful(episodes: Sequence[dict], what: str) -> None:
  failed = [i for i, e in enumerate(episodes) if not bool(e["success"])]
  if failed:
    raise ValueError(f"{what}: only successful episodes can be exported (the format has no success flag, so they "
                     f"read as demonstrations); episodes {failed[:5]} failed")
  if not episodes:
    raise ValueError(f"{what}: no episodes to export")


def _timestamp(seconds: float) -> str:
  """EPIC's HH:MM:SS.mmm."""
  ms = int(round(seconds * 1000))
  h, rest = divmod(ms, 3_600_000)
  m, rest = divmod(rest, 60_000)
  return f"{h:02d}:{m:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def verb_noun(text: str) -> tuple[str, list[str]]:
  """First word as the verb; the known object nouns in order of appearance (EPIC keeps verb, noun, all_nouns)."""
  words = re.findall(r"[a-z]+", text.lower())
  nouns = []
  for w in words:
    w = w[:-1] if w.endswith("s") and w[:-1] in NOUNS else w
    if w in NOUNS and w not in nouns:
      nouns.append(w)
  return (words[0] if words else ""), (nouns or ["object"])


def write_epic(root: str, episodes: Sequence[dict], fps: float, *, segments_per_video: int = 8,
               videos_per_participant: int = 4, quality: int = 95) -> list[dict]:
  """Writes `root/EPIC_100_train.csv`, `root/EPIC_100_video_info.csv` and 1-based JPEG frames
  `root/PXX/rgb_frames/PXX_YY/frame_%010d.jpg`. Consecutive episodes become consecutive narration segments of one
  video (`segments_per_video` each); the narration is the instruction. Returns the CSV rows."""
  _require_successful(episodes, "EPIC-KITCHENS export")
  verbs = sorted({verb_noun(e["instruction"])[0] for e in episodes})
  rows, videos = [], []
  for start in range(0, len(episodes), segments_per_video):
    v = len(videos)
    pid = f"P{v // videos_per_participant + 1:02d}"
    vid = f"{pid}_{v % videos_per_participant + 1:02d}"
    folder = os.path.join(root, pid, "rgb_frames", vid)
    os.makedirs(folder, exist_ok=True)
    frame = 1  # the next frame number of this video
    shape = None
    for k, ep in enumerate(episodes[start:start + segments_per_video]):
      images = np.asarray(ep["images"])
      if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(f"EPIC-KITCHENS export: episode images must be uint8 [T,H,W,3], got {images.dtype} "
                         f"{images.shape}")
      shape = images.shape[1:3]
      first = frame
      for img in images:
        Image.fromarray(img).save(os.path.join(folder, f"frame_{frame:010d}.jpg"), quality=quality)
        frame += 1
      last = frame - 1
      verb, nouns = verb_noun(ep["instruction"])
      rows.append(dict(
          narration_id=f"{vid}_{k}", participant_id=pid, video_id=vid,
          narration_timestamp=_timestamp((first - 1) / fps), start_timestamp=_timestamp((first - 1) / fps),
          stop_timestamp=_timestamp((last - 1) / fps), start_frame=first, stop_frame=last,
          narration=ep["instruction"], verb=verb, verb_class=verbs.index(verb), noun=nouns[0],
          noun_class=NOUNS.index(nouns[0]) if nouns[0] in NOUNS else len(NOUNS), all_nouns=repr(nouns),
          all_noun_classes=repr([NOUNS.index(n) if n in NOUNS else len(NOUNS) for n in nouns])))
    videos.append(dict(video_id=vid, duration=round((frame - 1) / fps, 3), fps=fps,
                       resolution=f"{shape[1]}x{shape[0]}"))
  with open(os.path.join(root, "EPIC_100_train.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=EPIC_COLUMNS)
    w.writeheader()
    w.writerows(rows)
  with open(os.path.join(root, "EPIC_100_video_info.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=("video_id", "duration", "fps", "resolution"))
    w.writeheader()
    w.writerows(videos)
  return rows


def oxe_features(image_size: int) -> tfds.features.FeaturesDict:
  """Open-X "converted" layout (as e.g. austin_buds): JPEG image + state under observation, per-step
  language_instruction, discount/reward/is_* flags, episode_metadata/file_path. Not written: the 512-d
  language_embedding (a Universal Sentence Encoder output we cannot compute here; no reader uses it)."""
  return tfds.features.FeaturesDict({
      "steps": tfds.features.Dataset({
          "observation": tfds.features.FeaturesDict({
              "image": tfds.features.Image(shape=(image_size, image_size, 3), encoding_format="jpeg"),
              # Families differ in state size; variable length inside `steps` must be encoded to be readable.
              "state": tfds.features.Tensor(shape=(None,), dtype=np.float32, encoding="zlib"),
          }),
          "action": tfds.features.Tensor(shape=(4,), dtype=np.float32),
          "discount": np.float32,
          "reward": np.float32,
          "is_first": np.bool_,
          "is_last": np.bool_,
          "is_terminal": np.bool_,
          "language_instruction": tfds.features.Text(),
      }),
      "episode_metadata": tfds.features.FeaturesDict({"file_path": tfds.features.Text()}),
  })


def to_oxe(ep: dict, index: int) -> dict:
  images = np.asarray(ep["images"])
  T = len(images)
  steps = [{
      "observation": {"image": images[t], "state": np.asarray(ep["state"][t], np.float32)},
      "action": np.asarray(ep["action"][t], np.float32),
      "discount": np.float32(1.0),
      "reward": np.float32(t == T - 1),  # converted sets: sparse 1.0 on the last step of a successful demo
      "is_first": t == 0, "is_last": t == T - 1, "is_terminal": t == T - 1,
      "language_instruction": ep["instruction"],
  } for t in range(T)]
  return {"steps": steps, "episode_metadata": {"file_path": f"/sim/{OXE_NAME}/episode_{index:06d}.npz"}}


class LrmBenchOxe(tfds.core.GeneratorBasedBuilder):
  """`LrmBenchOxe(episodes=[...], image_size=64, data_dir=...)`: one `train` split."""

  VERSION = tfds.core.Version(OXE_VERSION)
  RELEASE_NOTES = {OXE_VERSION: "LRM-Bench successful episodes, second camera, Open-X converted key layout."}

  def __init__(self, *, episodes: Iterable[dict] = (), image_size: int = 64, **kwargs):
    self._episodes, self._image_size = episodes, image_size
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, features=oxe_features(self._image_size),
                                 description="Simulated manipulation demos in the Open-X converted RLDS layout.")

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    for i, ep in enumerate(self._episodes):
      yield i, to_oxe(ep, i)


def write_oxe_rlds(data_dir: str, episodes: Sequence[dict], image_size: int) -> str:
  """Writes `data_dir/lrm_bench_oxe/0.1.0`; returns that folder. Successful episodes only."""
  _require_successful(episodes, "Open-X export")
  builder = LrmBenchOxe(episodes=list(episodes), image_size=image_size, data_dir=data_dir)
  tfds_io.prepare(builder, try_download_gcs=False)
  return builder.data_dir
