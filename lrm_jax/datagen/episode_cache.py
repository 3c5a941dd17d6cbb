"""Finished chunks of a generation on disk, so that a run killed while generating resumes where it stopped.

Generating episodes is the slow part of building data (minutes on CPU) and runs in chunks (`rollout.Rollout`). Each
finished chunk is saved as one `.npz` (written to a temporary name, then renamed: a kill leaves no half chunk under
a real name). A rerun loads the chunks it finds and simulates only the missing ones. Chunks are named by a hash of
everything that decides their episodes (the rollout's compiled-in settings and the chunk's inputs: looks, keys,
tasks, failure modes), so a chunk is only reused for exactly the same episodes; a generation is deterministic given
those, so a resumed generation returns the same episodes as an uninterrupted one (`tests/test_resume.py`).

The caller removes the folder once what it built from the episodes is written.
"""
import hashlib
import json
import os
import shutil
from typing import Optional

import numpy as np

_SCALARS = (bool, int, float, str)


class EpisodeCache:

  def __init__(self, directory: str):
    self.directory = os.path.abspath(directory)
    self.hits = self.misses = 0

  @staticmethod
  def key(settings: dict, arrays: dict) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for name in sorted(arrays):
      a = np.ascontiguousarray(arrays[name])
      h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
      h.update(a.tobytes())
    return h.hexdigest()[:32]

  def _path(self, key: str) -> str:
    return os.path.join(self.directory, f"{key}.npz")

  def load(self, key: str) -> Optional[list[dict]]:
    path = self._path(key)
    if not os.path.exists(path):
      self.misses += 1
      return None
    with np.load(path) as z:
      meta = json.loads(str(z["meta"]))
      episodes = [dict(m, **{k: z[f"{i}/{k}"] for k in m.pop("__arrays__")}) for i, m in enumerate(meta)]
    self.hits += 1
    return episodes

  def save(self, key: str, episodes: list[dict]) -> None:
    arrays, meta = {}, []
    for i, ep in enumerate(episodes):
      m = {"__arrays__": []}
      for k, v in ep.items():
        if isinstance(v, np.ndarray):
          arrays[f"{i}/{k}"] = v
          m["__arrays__"].append(k)
        elif isinstance(v, _SCALARS):  # bool before int matters only to JSON, which keeps true/false apart
          m[k] = v
        else:  # a new episode field of another type must be stored faithfully, not silently changed
          raise TypeError(f"episode field {k!r} of type {type(v).__name__} cannot be cached")
      meta.append(m)
    os.makedirs(self.directory, exist_ok=True)
    tmp = self._path(key) + ".tmp"
    with open(tmp, "wb") as f:
      np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
    os.replace(tmp, self._path(key))

  def remove(self) -> None:
    shutil.rmtree(self.directory, ignore_errors=True)
