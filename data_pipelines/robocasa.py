"""RoboCasa robomimic-style HDF5: `data/demo_N/obs/robot0_agentview_left_image`, instruction in `ep_meta["lang"]`."""
import functools
import os

import numpy as np

from data_pipelines import hdf5_util
from data_pipelines.errors import DataFormatError
from data_pipelines.reader import Reader, failing
from data_pipelines.record import Trajectory, subsample_indices


class RoboCasaReader(Reader):
  """Every `*.hdf5` under `root` (or one file); one Trajectory per demo.

  flip_upside_down: the image orientation of RoboCasa files is unverified (robosuite can render in the OpenGL
  convention, upside down); set True if frames come out inverted. Off by default.
  task: `ep_meta["task_name"]` or the demo attr `task_name` when present (RoboCasa stores the env name there).
  """

  def __init__(self, root, *, camera: str = "robot0_agentview_left_image", flip_upside_down: bool = False, **kw):
    self.source = f"robocasa:{os.path.splitext(os.path.basename(os.path.normpath(root)))[0]}"
    super().__init__(**kw)
    self.root, self.camera, self.flip = str(root), camera, flip_upside_down

  def _items(self):
    for path, data in hdf5_util.data_groups(self.root, "*.hdf5", ".hdf5 file"):
      if isinstance(data, DataFormatError):
        yield path, failing(data)
        continue
      for name in hdf5_util.demo_names(path, data):
        yield f"{path}:{name}", functools.partial(self._demo, path, data[name])

  def _demo(self, path, demo) -> Trajectory:
    meta = hdf5_util.attr_json(path, demo, "ep_meta")
    lang = meta.get("lang")
    if not isinstance(lang, str) or not lang.strip():
      raise DataFormatError(path, f"{demo.name}.attrs['ep_meta'].lang", "a non-empty instruction string", repr(lang))
    if "obs" not in demo:
      raise DataFormatError(path, f"{demo.name}/obs", "an 'obs' group", f"keys {sorted(demo.keys())}")
    n = demo["obs"][self.camera].shape[0] if self.camera in demo["obs"] else 0
    keep = subsample_indices(n, self.max_frames) if n else None
    frames = hdf5_util.images(path, demo["obs"], self.camera, keep)
    if self.flip:
      frames = frames[:, ::-1, ::-1]
    task = meta.get("task_name") or hdf5_util.attr_text(path, demo, "task_name", required=False)
    return Trajectory(
        frames=np.ascontiguousarray(frames), instruction=lang.strip(), source=self.source,
        success=hdf5_util.last_flag(demo, "rewards", "dones"), episode_id=f"{path}:{demo.name}", task=task,
        metadata={"step_index": keep, "num_steps": n})
