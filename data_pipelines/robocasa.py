"""RoboCasa robomimic-style HDF5: `data/demo_N/obs/robot0_agentview_left_image`, instruction in `ep_meta["lang"]`."""
import functools
import glob
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
    files = [self.root] if os.path.isfile(self.root) else sorted(
        glob.glob(os.path.join(self.root, "**", "*.hdf5"), recursive=True))
    if not files:
      yield self.root, failing(DataFormatError(self.root, "files", "at least one .hdf5 file", "none found"))
    for path in files:
      try:
        f = hdf5_util.open_h5(path)
      except DataFormatError as err:
        yield path, failing(err)
        continue
      with f:
        if "data" not in f:
          yield path, failing(DataFormatError(path, "data", "a 'data' group", f"keys {sorted(f.keys())}"))
          continue
        for name in hdf5_util.demo_names(path, f["data"]):
          yield f"{path}:{name}", functools.partial(self._demo, path, f["data"][name])

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
