"""LIBERO, raw robomimic HDF5 (`<suite>/<TASK>_demo.hdf5`) and RLDS (`libero_*_no_noops/1.0.0`)."""
import functools
import os
from typing import Optional

import numpy as np

from data_pipelines import hdf5_util
from data_pipelines.errors import DataFormatError
from data_pipelines.reader import Reader, failing
from data_pipelines.record import Trajectory, subsample_indices
from data_pipelines.rlds import RldsReader, success_from_reward


class LiberoHdf5Reader(Reader):
  """Every `*_demo.hdf5` under `root` (recursively, sorted); one Trajectory per `data/demo_i`.

  The instruction is `problem_info["language_instruction"]` (a JSON attribute of `data`). Images are stored
  upside down (robosuite's OpenGL convention) and are flipped on both axes to upright here.
  Success: LIBERO demos set rewards/dones on the last step only when the task was achieved.
  """

  def __init__(self, root, *, camera: str = "agentview_rgb", **kw):
    self.source = f"libero_hdf5:{os.path.basename(os.path.normpath(root))}"
    super().__init__(**kw)
    self.root, self.camera = str(root), camera

  def _items(self):
    for path, data in hdf5_util.data_groups(self.root, "*_demo.hdf5", "<TASK>_demo.hdf5"):
      if isinstance(data, DataFormatError):
        yield path, failing(data)
        continue
      try:
        info = hdf5_util.attr_json(path, data, "problem_info")
        instruction = info.get("language_instruction")
        if not isinstance(instruction, str) or not instruction.strip():
          raise DataFormatError(path, "data.attrs['problem_info'].language_instruction", "a non-empty string",
                                repr(instruction))
      except DataFormatError as err:
        yield path, failing(err)
        continue
      task = os.path.basename(path)[: -len("_demo.hdf5")]
      for name in hdf5_util.demo_names(path, data):
        yield f"{path}:{name}", functools.partial(self._demo, path, data[name], instruction.strip(), task)

  def _demo(self, path, demo, instruction, task) -> Trajectory:
    if "obs" not in demo:
      raise DataFormatError(path, f"{demo.name}/obs", "an 'obs' group", f"keys {sorted(demo.keys())}")
    n = demo["obs"][self.camera].shape[0] if self.camera in demo["obs"] else 0
    keep = subsample_indices(n, self.max_frames) if n else None
    frames = hdf5_util.images(path, demo["obs"], self.camera, keep)
    return Trajectory(
        frames=np.ascontiguousarray(frames[:, ::-1, ::-1]), instruction=instruction, source=self.source,
        success=hdf5_util.last_flag(demo, "rewards", "dones"), episode_id=f"{path}:{demo.name}", task=task,
        metadata={"step_index": keep, "num_steps": n})


class LiberoRldsReader(RldsReader):
  """RLDS LIBERO (e.g. `libero_10_no_noops/1.0.0`, shards named `liber_o10-train...`); images already upright."""

  def __init__(self, path, *, image_key: str = "observation/image", split: str = "train",
               source: Optional[str] = None, **kw):
    super().__init__(path, image_key=image_key, instruction_key="language_instruction",
                     source=source or f"libero_rlds:{os.path.basename(os.path.dirname(os.path.normpath(path)))}",
                     success_fn=success_from_reward, split=split, **kw)
