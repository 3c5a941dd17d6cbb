"""Writes tiny robomimic-style HDF5 files exactly as LIBERO and RoboCasa lay them out."""
import json

import h5py
import numpy as np

from tests.fixtures_rlds import frames_with_progress


def write_libero(path, instruction, demos, size=16):
  """demos: list of (T, success). Images are stored upside down, as LIBERO's robosuite renders them.

  Returns the upright frames per demo.
  """
  upright = []
  with h5py.File(path, "w") as f:
    data = f.create_group("data")
    data.attrs["problem_info"] = json.dumps({"problem_name": "libero_10", "domain_name": "kitchen",
                                             "language_instruction": instruction})
    data.attrs["env_args"] = json.dumps({"env_name": "Libero_Kitchen"})
    data.attrs["total"] = sum(T for T, _ in demos)
    for i, (T, success) in enumerate(demos):
      fr = frames_with_progress(T, size, size, i)
      fr[:, : size // 4, : size // 4] = 255  # a bright top-left corner marks "up" in the upright image
      upright.append(fr)
      d = data.create_group(f"demo_{i}")
      d.attrs["num_samples"] = T
      d.attrs["init_state"] = np.zeros(10)
      obs = d.create_group("obs")
      obs.create_dataset("agentview_rgb", data=fr[:, ::-1, ::-1])
      obs.create_dataset("eye_in_hand_rgb", data=fr[:, ::-1, ::-1])
      obs.create_dataset("joint_states", data=np.zeros((T, 7)))
      d.create_dataset("actions", data=np.zeros((T, 7)))
      flags = np.zeros(T, np.uint8)
      flags[-1] = success
      d.create_dataset("rewards", data=flags)
      d.create_dataset("dones", data=flags)
  return upright


def write_robocasa(path, demos, size=16):
  """demos: list of (lang, T, success); gzip-compressed image datasets like RoboCasa's."""
  frames = []
  with h5py.File(path, "w") as f:
    data = f.create_group("data")
    data.attrs["env_args"] = json.dumps({"env_name": "PnPCounterToCab"})
    for i, (lang, T, success) in enumerate(demos):
      fr = frames_with_progress(T, size, size, i)
      frames.append(fr)
      d = data.create_group(f"demo_{i}")
      d.attrs["ep_meta"] = json.dumps({"lang": lang, "layout_id": 1, "style_id": 2, "object_cfgs": []})
      d.attrs["model_file"] = "<mujoco/>"
      obs = d.create_group("obs")
      for cam in ("robot0_agentview_left_image", "robot0_agentview_right_image", "robot0_eye_in_hand_image"):
        obs.create_dataset(cam, data=fr, compression="gzip")
      d.create_dataset("actions", data=np.zeros((T, 12)))
      flags = np.zeros(T, np.uint8)
      flags[-1] = success
      d.create_dataset("rewards", data=flags)
      d.create_dataset("dones", data=flags)
  return frames
