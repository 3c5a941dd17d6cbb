"""LIBERO (raw HDF5 and RLDS), RoboCasa HDF5 and the suite's own RLDS on faithful fixtures."""
import json
import os

import h5py
import numpy as np
import pytest

from data_pipelines.errors import DataFormatError
from data_pipelines.libero import LiberoHdf5Reader, LiberoRldsReader
from data_pipelines.robocasa import RoboCasaReader
from data_pipelines.suite_rlds import SuiteRldsReader
from tests import fixtures_hdf5, fixtures_rlds


def _libero_root(tmp_path):
  root = tmp_path / "libero_10"
  root.mkdir()
  a = fixtures_hdf5.write_libero(root / "KITCHEN_SCENE3_turn_on_the_stove_demo.hdf5", "turn on the stove",
                                 [(5, True), (7, True)])
  b = fixtures_hdf5.write_libero(root / "LIVING_ROOM_SCENE2_put_the_box_demo.hdf5", "put the box in the basket",
                                 [(6, False)])
  return root, a + b


def test_libero_hdf5_upright_instruction_success(tmp_path):
  root, upright = _libero_root(tmp_path)
  trajs = list(LiberoHdf5Reader(root))
  assert [t.instruction for t in trajs] == ["turn on the stove"] * 2 + ["put the box in the basket"]
  assert [t.success for t in trajs] == [True, True, False]
  assert trajs[0].task == "KITCHEN_SCENE3_turn_on_the_stove"
  for traj, fr in zip(trajs, upright):
    np.testing.assert_array_equal(traj.frames, fr)
    assert traj.frames[0, 0, 0].min() == 255  # marker back in the top-left corner


def test_libero_hdf5_demo_order_is_numeric(tmp_path):
  path = tmp_path / "T_demo.hdf5"
  fixtures_hdf5.write_libero(path, "x", [(3, True)] * 11)
  ids = [t.episode_id.rsplit("/", 1)[1] for t in LiberoHdf5Reader(path)]
  assert ids[:3] == ["demo_0", "demo_1", "demo_2"] and ids[-1] == "demo_10"


def test_libero_hdf5_missing_problem_info_and_skip(tmp_path):
  root, _ = _libero_root(tmp_path)
  bad = root / "BROKEN_demo.hdf5"
  fixtures_hdf5.write_libero(bad, "x", [(3, True)])
  with h5py.File(bad, "a") as f:
    del f["data"].attrs["problem_info"]
  with pytest.raises(DataFormatError, match=r"BROKEN_demo.hdf5: field '/data.attrs\['problem_info'\]'"):
    list(LiberoHdf5Reader(root))
  reader = LiberoHdf5Reader(root, on_error="skip")
  assert len(list(reader)) == 3 and reader.skips.count == 1


def test_libero_hdf5_wrong_rank_and_empty(tmp_path):
  path = tmp_path / "T_demo.hdf5"
  fixtures_hdf5.write_libero(path, "x", [(3, True), (3, True)])
  with h5py.File(path, "a") as f:
    del f["data/demo_0/obs/agentview_rgb"]
    f["data/demo_0/obs"].create_dataset("agentview_rgb", data=np.zeros((3, 16, 16), np.uint8))
    del f["data/demo_1/obs/agentview_rgb"]
    f["data/demo_1/obs"].create_dataset("agentview_rgb", data=np.zeros((0, 16, 16, 3), np.uint8))
  with pytest.raises(DataFormatError, match=r"demo_0/obs/agentview_rgb': expected rank 4"):
    list(LiberoHdf5Reader(path))
  reader = LiberoHdf5Reader(path, on_error="skip")
  assert list(reader) == [] and reader.skips.count == 2
  assert any("empty episode" in m for m in reader.skips.messages)


def test_libero_hdf5_unreadable_file(tmp_path):
  (tmp_path / "X_demo.hdf5").write_bytes(b"not hdf5")
  with pytest.raises(DataFormatError, match="X_demo.hdf5: field 'file': expected a readable HDF5 file"):
    list(LiberoHdf5Reader(tmp_path))


def test_libero_rlds(tmp_path):
  path, frames = fixtures_rlds.write_libero_rlds(
      tmp_path, [("turn on the stove", 5, True), ("put the box in the basket", 4, False)])
  assert "liber_o10-train.tfrecord-00000-of-00001" in os.listdir(path)
  trajs = list(LiberoRldsReader(path))
  assert [t.instruction for t in trajs] == ["turn on the stove", "put the box in the basket"]
  assert [t.success for t in trajs] == [True, False]
  assert trajs[0].frames.shape == frames[0].shape and trajs[0].source == "libero_rlds:liber_o10"


def test_robocasa(tmp_path):
  path = tmp_path / "PnPCounterToCab.hdf5"
  frames = fixtures_hdf5.write_robocasa(path, [("pick the apple from the counter and place it in the cabinet", 6, 1),
                                               ("open the drawer", 4, 0)])
  trajs = list(RoboCasaReader(path))
  assert [t.instruction for t in trajs][1] == "open the drawer"
  assert [t.success for t in trajs] == [True, False]
  np.testing.assert_array_equal(trajs[0].frames, frames[0])
  flipped = next(iter(RoboCasaReader(path, flip_upside_down=True)))
  np.testing.assert_array_equal(flipped.frames, frames[0][:, ::-1, ::-1])


def test_robocasa_ep_meta_without_lang(tmp_path):
  path = tmp_path / "r.hdf5"
  fixtures_hdf5.write_robocasa(path, [("a", 3, 1)])
  with h5py.File(path, "a") as f:
    f["data/demo_0"].attrs["ep_meta"] = json.dumps({"layout_id": 1})
  with pytest.raises(DataFormatError, match=r"r.hdf5: field '/data/demo_0.attrs\['ep_meta'\].lang'"):
    list(RoboCasaReader(path))


SUITE = [
    {"task": "lift_cube", "instruction": "lift the red cube", "T": 6, "success": True, "num_stages": 2},
    {"task": "lift_cube", "instruction": "lift the red cube", "T": 5, "success": False, "num_stages": 2,
     "noise": "drop"},
    {"task": "stack_cubes", "instruction": "stack the red cube on the blue cube", "T": 7, "success": True,
     "num_stages": 3, "embodiment": "hand"},
]


def test_suite_rlds(tmp_path):
  path, frames = fixtures_rlds.write_suite(tmp_path, SUITE)
  trajs = list(SuiteRldsReader(path))
  assert [t.task for t in trajs] == ["lift_cube", "lift_cube", "stack_cubes"]
  assert [t.success for t in trajs] == [True, False, True]
  np.testing.assert_array_equal(trajs[0].frames, frames[0])  # PNG: lossless
  assert trajs[2].stage.tolist() == [0, 0, 0, 1, 1, 2, 2]
  assert trajs[1].metadata["noise"] == "drop" and trajs[2].metadata["embodiment"] == "hand"
  assert trajs[2].metadata["num_stages"] == 3


def test_suite_rlds_exclude_tasks(tmp_path):
  path, _ = fixtures_rlds.write_suite(tmp_path, SUITE)
  reader = SuiteRldsReader(path, exclude_tasks={"stack_cubes"})
  assert [t.task for t in reader] == ["lift_cube", "lift_cube"]
  assert reader.excluded_instructions == {"stack the red cube on the blue cube"}


def test_rlds_empty_episode_and_wrong_image_rank(tmp_path):
  import tensorflow_datasets as tfds
  from data_pipelines.oxe import OxeSpec
  episodes = [dict(SUITE[0], T=0), SUITE[0]]
  path, _ = fixtures_rlds.write_suite(tmp_path / "a", episodes)
  with pytest.raises(DataFormatError, match=r"episode 0\]: field 'steps': expected at least one step"):
    list(SuiteRldsReader(path))
  reader = SuiteRldsReader(path, on_error="skip")
  assert len(list(reader)) == 1 and reader.skips.by_field["steps"] == 1
  # A grey-scale camera stored as a plain (H, W) uint8 tensor is not an RGB image stream.
  feats = tfds.features.FeaturesDict({"steps": tfds.features.Dataset({
      "observation": tfds.features.FeaturesDict({"depth": tfds.features.Tensor(shape=(8, 8), dtype=np.uint8)}),
      "language_instruction": tfds.features.Text(), "is_first": np.bool_})})
  ep = {"steps": [{"observation": {"depth": np.zeros((8, 8), np.uint8)}, "language_instruction": "x",
                   "is_first": t == 0} for t in range(3)]}
  path = fixtures_rlds.write_tfds(tmp_path / "b", "gray_robot", "0.1.0", feats, [ep])
  from data_pipelines.oxe import OxeReader
  with pytest.raises(DataFormatError, match=r"field 'steps/observation/depth': expected images of rank 3"):
    list(OxeReader(path, spec=OxeSpec("observation/depth", "language_instruction")))


def test_readers_shard_before_loading(tmp_path):
  root, _ = _libero_root(tmp_path)
  ids = [[t.episode_id for t in LiberoHdf5Reader(root).shard(k, 2)] for k in range(2)]
  assert len(ids[0]) == 2 and len(ids[1]) == 1 and not set(ids[0]) & set(ids[1])
  path, _ = fixtures_rlds.write_suite(tmp_path / "s", SUITE)
  ids = [[t.episode_id for t in SuiteRldsReader(path).shard(k, 2)] for k in range(2)]
  assert sorted(ids[0] + ids[1]) == sorted(t.episode_id for t in SuiteRldsReader(path))
  assert not set(ids[0]) & set(ids[1])


def test_corrupted_shard_is_one_line_error(tmp_path):
  path, _ = fixtures_rlds.write_suite(tmp_path, SUITE)
  shard = os.path.join(path, "lrm_bench-train.tfrecord-00000-of-00001")
  data = open(shard, "rb").read()
  with open(shard, "wb") as f:
    f.write(data[: len(data) * 2 // 3])  # truncated mid-record
  with pytest.raises(DataFormatError, match=r"field 'tfrecord shards': expected readable TFRecord records"):
    list(SuiteRldsReader(path))
  reader = SuiteRldsReader(path, on_error="skip")
  assert len(list(reader)) >= 1 and reader.skips.count == 1


def test_corrupted_hdf5_dataset_bytes(tmp_path):
  path = tmp_path / "T_demo.hdf5"
  fixtures_hdf5.write_libero(path, "x", [(3, True)])
  with h5py.File(path, "a") as f:  # gzip chunks: overwritten chunk bytes make decompression fail, as on disk rot
    del f["data/demo_0/obs/agentview_rgb"]
    f["data/demo_0/obs"].create_dataset("agentview_rgb", data=np.zeros((3, 16, 16, 3), np.uint8),
                                        compression="gzip", chunks=(1, 16, 16, 3))
  raw = bytearray(open(path, "rb").read())
  with h5py.File(path, "r") as f:
    offset = f["data/demo_0/obs/agentview_rgb"].id.get_chunk_info(0).byte_offset
  raw[offset: offset + 8] = b"\xff" * 8
  open(path, "wb").write(bytes(raw))
  with pytest.raises(DataFormatError, match=r"T_demo.hdf5:demo_0: field 'data': expected readable data.*filter returned failure"):
    list(LiberoHdf5Reader(path))
