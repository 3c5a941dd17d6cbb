"""Videos are written and decoded without forking Python in this multithreaded (JAX) process."""
import warnings

import jax.numpy as jnp
import numpy as np

from data_pipelines import video
from lrm_jax.datagen import report


def test_video_round_trip_starts_ffmpeg_without_a_python_fork(tmp_path):
  jnp.zeros(1).block_until_ready()  # the backend's threads are running: JAX now warns on every fork of Python
  frames = np.zeros((6, 16, 16, 3), np.uint8)
  frames[:, :, :8] = 255  # left half white
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    path = report.write_mp4(str(tmp_path / "a.mp4"), frames, fps=6)
    decoded, _, fps = video.read_video(path)
  assert not [w for w in caught if "os.fork()" in str(w.message)], [str(w.message) for w in caught]
  assert len(decoded) == 6 and fps == 6.0
  assert decoded[0, :, : decoded.shape[2] // 2].mean() > 200 > 50 > decoded[0, :, decoded.shape[2] // 2 + 8:].mean()
