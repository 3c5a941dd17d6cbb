"""OXE RLDS reader on faithful TFDS fixtures of every dataset in the per-dataset table."""
import numpy as np
import pytest

from data_pipelines.errors import DataFormatError
from data_pipelines.oxe import OXE_DATASETS, OxeReader
from tests import fixtures_rlds


@pytest.fixture(scope="module")
def oxe_dirs(tmp_path_factory):
  root = tmp_path_factory.mktemp("oxe")
  return {name: fixtures_rlds.write_oxe(root, name) for name in OXE_DATASETS}


@pytest.mark.parametrize("name", sorted(OXE_DATASETS))
def test_reads_every_table_dataset(oxe_dirs, name):
  path, frames = oxe_dirs[name]
  kw = {"instruction": "pick anything"} if OXE_DATASETS[name].instruction_key is None else {}
  trajs = list(OxeReader(path, **kw))
  assert len(trajs) == 2
  for e, traj in enumerate(trajs):
    assert traj.frames.dtype == np.uint8 and traj.frames.shape == frames[e].shape
    # JPEG is lossy: compare brightness, which rises with t in the fixture.
    np.testing.assert_allclose(traj.frames.mean(axis=(1, 2, 3)), frames[e].mean(axis=(1, 2, 3)), atol=4)
    expected = "pick anything" if kw else f"{name} task {e}: put the cup on the plate"
    assert traj.instruction == expected
    assert traj.source == f"oxe:{name}" and traj.success is None


def test_language_table_bytes_are_cut_at_nul(oxe_dirs):
  traj = next(iter(OxeReader(oxe_dirs["language_table"][0])))
  assert traj.instruction == "language_table task 0: put the cup on the plate" and "\x00" not in traj.instruction


def test_no_instruction_dataset_needs_one(oxe_dirs):
  with pytest.raises(DataFormatError, match=r"toto.*field 'instruction'"):
    list(OxeReader(oxe_dirs["toto"][0]))


def test_unknown_dataset_names_keys_found(tmp_path):
  feats, spec = fixtures_rlds.oxe_features("jaco_play")
  ep, _ = fixtures_rlds.oxe_episode("jaco_play", spec, 3, "x", 0)
  path = fixtures_rlds.write_tfds(tmp_path, "mystery_robot", "0.1.0", feats, [ep])
  with pytest.raises(DataFormatError) as err:
    OxeReader(path)
  msg = str(err.value)
  assert "'mystery_robot'" in msg and "observation/image_wrist" in msg and "\n" not in msg


def test_max_frames_keeps_first_and_last(oxe_dirs):
  traj = next(iter(OxeReader(oxe_dirs["fractal20220817_data"][0], max_frames=3)))
  assert traj.num_frames == 3 and list(traj.metadata["step_index"]) == [0, 2, 5]


def test_not_a_tfds_folder(tmp_path):
  with pytest.raises(DataFormatError, match="dataset_info.json"):
    OxeReader(tmp_path)


def test_shard_template_without_shard_count(tmp_path):
  # Some datasets' dataset_info.json name shards without "-of-N"; the template there must be honoured.
  import json
  import os
  path, frames = fixtures_rlds.write_oxe(tmp_path, "jaco_play")
  info_path = os.path.join(path, "dataset_info.json")
  info = json.load(open(info_path))
  info["splits"][0]["filepathTemplate"] = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_INDEX}"
  json.dump(info, open(info_path, "w"))
  os.rename(os.path.join(path, "jaco_play-train.tfrecord-00000-of-00001"),
            os.path.join(path, "jaco_play-train.tfrecord-00000"))
  trajs = list(OxeReader(path))
  assert len(trajs) == 2 and trajs[1].frames.shape == frames[1].shape


@pytest.mark.parametrize("name", ["bridge_dataset", "droid"])
def test_episodes_without_language_are_skipped_and_counted(tmp_path, name):
  """Real Bridge has many episodes with an empty instruction, DROID some: the reader stopped at the first one."""
  texts = ["put the cup on the plate", "", "open the drawer", "  "]
  path, _ = fixtures_rlds.write_oxe(tmp_path, name, num_episodes=4, T=3, instructions=texts)
  reader = OxeReader(path)
  assert [t.instruction for t in reader] == ["put the cup on the plate", "open the drawer"]
  assert reader.no_instruction_count == 2 and reader.skips.count == 0
  assert [t.instruction for t in reader] and reader.no_instruction_count == 2  # per pass, not accumulated
  with pytest.raises(DataFormatError, match=r"episode 1\]: field 'instruction'"):
    list(OxeReader(path, no_instruction="raise"))
