"""Video decoding through imageio's ffmpeg plugin (bundled ffmpeg binary), with bounded memory.

Human videos are long and large (EgoDex 1080p at 30 fps); frames are subsampled while streaming and optionally
resized one at a time, so memory holds only the frames that are kept.
"""
import os
from typing import Optional

import imageio.v3 as iio
import numpy as np
from PIL import Image

from data_pipelines.errors import DataFormatError

# No preexec_fn when imageio-ffmpeg starts ffmpeg: Python run in a forked copy of a multithreaded process can hang
# (imageio-ffmpeg issue #58; why in full: lrm_jax/datagen/report.py).
os.environ.setdefault("IMAGEIO_FFMPEG_NO_PREVENT_SIGINT", "1")


def resize_frame(frame: np.ndarray, size: Optional[tuple[int, int]]) -> np.ndarray:
  """Resizes one HxWx3 uint8 frame to size=(height, width) with antialiasing; None keeps it."""
  if size is None or tuple(frame.shape[:2]) == tuple(size):
    return frame
  return np.asarray(Image.fromarray(frame).resize((size[1], size[0]), Image.BILINEAR))


def video_meta(path) -> dict:
  """fps, duration and frame count estimate; raises DataFormatError when the file cannot be probed."""
  if not os.path.exists(path):
    raise DataFormatError(path, "video", "an existing video file", "file not found")
  try:
    return iio.immeta(path, plugin="FFMPEG")
  except Exception as e:  # imageio raises OSError/IOError/RuntimeError depending on the failure
    raise DataFormatError(path, "video", "a decodable video", f"{type(e).__name__}: {str(e).splitlines()[0][:120]}")


def read_video(path, *, max_frames: Optional[int] = None, size: Optional[tuple[int, int]] = None):
  """Decodes `path` -> (frames uint8 [T,H,W,3], source frame indices int64 [T], fps float).

  max_frames: keep at most this many, evenly spaced (the frame count is estimated from the container's duration;
  the first and last frames are always kept).
  """
  meta = video_meta(path)
  fps = float(meta.get("fps") or 0.0)
  if fps <= 0:
    raise DataFormatError(path, "fps", "a positive frame rate in the video stream", meta.get("fps"))
  last_est = int(round(float(meta.get("duration") or 0.0) * fps)) - 1
  keep = None
  if max_frames is not None and last_est >= 0:
    # Frame counts from container metadata can be off by a frame or two; the tail is re-checked below.
    keep = set(np.round(np.linspace(0, last_est, min(max_frames, last_est + 1))).astype(int).tolist())
  frames, indices = [], []
  last_seen = None
  try:
    for i, frame in enumerate(iio.imiter(path, plugin="FFMPEG")):
      last_seen = (i, frame)
      if keep is None or i in keep:
        if frame.ndim != 3 or frame.shape[-1] != 3:
          raise DataFormatError(path, "video frame", "HxWx3 RGB frames", f"shape {frame.shape}")
        frames.append(resize_frame(frame, size))
        indices.append(i)
  except DataFormatError:
    raise
  except Exception as e:
    raise DataFormatError(path, "video", "a decodable video", f"{type(e).__name__}: {str(e).splitlines()[0][:120]}")
  if last_seen is not None and (not indices or indices[-1] != last_seen[0]):
    # Always end on the true last frame: completion labels depend on it.
    if keep is not None and len(frames) >= max_frames:
      frames.pop(), indices.pop()
    frames.append(resize_frame(last_seen[1], size))
    indices.append(last_seen[0])
  if not frames:
    raise DataFormatError(path, "video", "at least one frame", "no frames")
  return np.stack(frames).astype(np.uint8), np.asarray(indices, np.int64), fps
