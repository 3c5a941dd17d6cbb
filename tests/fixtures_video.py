"""Writes tiny human-video datasets in their real on-disk layouts: encoded mp4 (libx264) / webm (libvpx-vp9)
through imageio's bundled ffmpeg, HDF5 side files, JSON/CSV annotations and JPEG frame folders."""
import csv
import json
import os

import h5py
import imageio.v3 as iio
import numpy as np

from tests.fixtures_rlds import frames_with_progress


def write_video(path, frames, fps):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  codec = "libvpx-vp9" if str(path).endswith(".webm") else "libx264"
  iio.imwrite(path, frames, plugin="FFMPEG", fps=fps, codec=codec, macro_block_size=16,
              output_params=["-crf", "20"] if codec == "libx264" else ["-crf", "20", "-b:v", "0"])
  return frames


def write_egodex(root, clips, h=32, w=48):
  """clips: list of (part, task, k, attrs dict, T). Video at 30 fps + HDF5 with poses and root attributes."""
  out = []
  for n, (part, task, k, attrs, T) in enumerate(clips):
    base = os.path.join(root, part, task, str(k))
    frames = write_video(base + ".mp4", frames_with_progress(T, h, w, n), 30)
    with h5py.File(base + ".hdf5", "w") as f:
      for key, value in attrs.items():
        f.attrs[key] = value
      for joint in ("camera", "leftHand", "rightHand"):
        f.create_dataset(f"transforms/{joint}", data=np.tile(np.eye(4, dtype=np.float32), (T, 1, 1)))
        f.create_dataset(f"confidences/{joint}", data=np.ones(T, np.float32))
      f.create_dataset("camera/intrinsic", data=np.eye(3, dtype=np.float32))
    out.append(frames)
  return out


def hoi4d_sequence(root, cls, task, *, schema="new", duration=10.0, T=20, h=32, w=48, seed=0):
  """One HOI4D sequence folder; the real clips have 300 frames, the fixture fewer (T) with the same fps rule."""
  seq = os.path.join(root, "ZY20210800001", "H1", cls, "N01", "S100", "s01", task)
  fps = 300 / duration
  frames = write_video(os.path.join(seq, "align_rgb", "image.mp4"), frames_with_progress(T, h, w, seed), fps)
  events = [("reach", 0.0, 0.3), ("grasp", 0.3, 0.6), ("pour", 0.6, T / fps)]
  if schema == "new":
    doc = {"info": {"duration": duration, "url": "x.mp4"},
           "events": [{"id": i, "event": e, "startTime": s, "endTime": t} for i, (e, s, t) in enumerate(events)]}
  else:
    doc = {"info": {"Duration": duration},
           "markResult": {"marks": [{"event": e, "hdTimeStart": s, "hdTimeEnd": t} for e, s, t in events]}}
  os.makedirs(os.path.join(seq, "action"), exist_ok=True)
  with open(os.path.join(seq, "action", "color.json"), "w") as f:
    json.dump(doc, f)
  os.makedirs(os.path.join(seq, "objpose"), exist_ok=True)
  with open(os.path.join(seq, "objpose", "0.json"), "w") as f:
    json.dump({"dataList": []}, f)
  return seq, frames


def write_ssv2(root, entries, split="train", h=32, w=48, videos_subdir=""):
  """entries: list of (id, template, placeholders, T); label = template filled with the placeholders.
  videos_subdir="20bn-something-something-v2": the videos where the official archive parts extract them."""
  labels, frames = [], []
  os.makedirs(os.path.join(root, videos_subdir), exist_ok=True)
  for n, (vid, template, placeholders, T) in enumerate(entries):
    frames.append(write_video(os.path.join(root, videos_subdir, f"{vid}.webm"), frames_with_progress(T, h, w, n),
                              12))
    label = template
    for p in placeholders:
      label = label.replace("[something]", p, 1)
    labels.append({"id": str(vid), "label": label, "template": template, "placeholders": placeholders})
  os.makedirs(os.path.join(root, "labels"), exist_ok=True)
  with open(os.path.join(root, "labels", f"{split}.json"), "w") as f:
    json.dump(labels, f)
  templates = sorted({t.replace("[", "").replace("]", "") for _, t, _, _ in entries})
  with open(os.path.join(root, "labels", "labels.json"), "w") as f:
    json.dump({t: str(i) for i, t in enumerate(templates)}, f)
  return labels, frames


EPIC_COLUMNS = ["narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
                "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
                "noun_class", "all_nouns", "all_noun_classes"]


def write_epic(root, video_frames, segments, fps=50.0, h=24, w=32):
  """video_frames: {video_id: T}; segments: list of (video_id, start_frame, stop_frame, narration, verb, noun).

  Writes 1-based JPEG frames for each video, EPIC_100_train.csv and EPIC_100_video_info.csv.
  """
  frames = {}
  for n, (vid, T) in enumerate(sorted(video_frames.items())):
    folder = os.path.join(root, vid.split("_")[0], "rgb_frames", vid)
    os.makedirs(folder, exist_ok=True)
    frames[vid] = frames_with_progress(T, h, w, n)
    for i in range(T):
      iio.imwrite(os.path.join(folder, f"frame_{i + 1:010d}.jpg"), frames[vid][i], quality=95)
  with open(os.path.join(root, "EPIC_100_train.csv"), "w", newline="") as f:
    wr = csv.writer(f)
    wr.writerow(EPIC_COLUMNS)
    for k, (vid, start, stop, narration, verb, noun) in enumerate(segments):
      ts = lambda fr: f"00:00:{fr / fps:06.3f}"
      wr.writerow([f"{vid}_{k}", vid.split("_")[0], vid, ts(start), ts(start), ts(stop), start, stop, narration,
                   verb, 3, noun, 7, repr([noun]), repr([7])])
  with open(os.path.join(root, "EPIC_100_video_info.csv"), "w", newline="") as f:
    wr = csv.writer(f)
    wr.writerow(["video_id", "duration", "fps", "resolution"])
    for vid, T in sorted(video_frames.items()):
      wr.writerow([vid, T / fps, fps, "1920x1080"])
  return frames
