"""Human-video readers (EgoDex, HOI4D, SSv2, EPIC-KITCHENS-100) on fixtures with real encoded video / JPEGs."""
import json
import os

import numpy as np
import pytest

from data_pipelines import labels
from data_pipelines.egodex import EgoDexReader
from data_pipelines.epic import EpicKitchensReader
from data_pipelines.errors import DataFormatError
from data_pipelines.hoi4d import Hoi4dReader, parse_color_json
from data_pipelines.ssv2 import Ssv2Reader
from tests import fixtures_video


def brightness(frames):
  return frames.astype(np.float32).mean(axis=(1, 2, 3))


def assert_close_video(got, want):
  """Lossy codecs: same shape and per-frame brightness within a few levels (the fixture brightens with t)."""
  assert got.dtype == np.uint8 and got.shape == want.shape
  np.testing.assert_allclose(brightness(got), brightness(want), atol=6)


EGODEX_CLIPS = [
    ("part1", "open_close_box", 0, {"llm_type": "reversible", "which_llm_description": "1",
                                    "llm_description": "Open the box.", "llm_description2": "Close the box."}, 8),
    ("part1", "open_close_box", 1, {"llm_type": "reversible", "which_llm_description": b"2",
                                    "llm_description": b"Open the box.", "llm_description2": b"Close the box."}, 8),
    ("part2", "wipe_table", 0, {"llm_type": "irreversible", "which_llm_description": "1",
                                "llm_description": "Wipe the table.", "llm_description2": "unused"}, 8),
    ("part3", "stack_cups", 3, {"description": "Stack the cups."}, 6),
]


@pytest.fixture(scope="module")
def egodex_root(tmp_path_factory):
  root = tmp_path_factory.mktemp("egodex")
  return str(root), fixtures_video.write_egodex(root, EGODEX_CLIPS)


def test_egodex_reversible_rule_and_frames(egodex_root):
  root, frames = egodex_root
  trajs = list(EgoDexReader(root))
  assert [t.instruction for t in trajs] == ["Open the box.", "Close the box.", "Wipe the table.", "Stack the cups."]
  assert [t.task for t in trajs] == ["open_close_box", "open_close_box", "wipe_table", "stack_cups"]
  assert all(t.success is None for t in trajs)
  for traj, want in zip(trajs, frames):
    assert_close_video(traj.frames, want)
    np.testing.assert_allclose(traj.timestamps, np.arange(len(want)) / 30, atol=1e-6)
  assert trajs[0].metadata["pose_frames"] == 8
  assert len(labels.progress_examples(trajs[0], np.random.default_rng(0))) == 11  # human video counts as a successful demonstration


def test_egodex_subsample_resize(egodex_root):
  traj = next(iter(EgoDexReader(egodex_root[0], max_frames=4, frame_size=(16, 24))))
  assert traj.frames.shape == (4, 16, 24, 3) and list(traj.metadata["frame_index"]) == [0, 2, 5, 7]


def test_egodex_missing_hdf5_and_unreadable_video(tmp_path):
  fixtures_video.write_egodex(tmp_path, EGODEX_CLIPS[:1])
  os.remove(tmp_path / "part1" / "open_close_box" / "0.hdf5")
  with pytest.raises(DataFormatError, match=r"0.hdf5: field 'file': expected an EgoDex .hdf5 beside the .mp4"):
    list(EgoDexReader(tmp_path))
  fixtures_video.write_egodex(tmp_path, EGODEX_CLIPS[:1])
  (tmp_path / "part1" / "open_close_box" / "0.mp4").write_bytes(b"\x00" * 64)
  with pytest.raises(DataFormatError, match=r"0.mp4: field 'video': expected a decodable video"):
    list(EgoDexReader(tmp_path))
  reader = EgoDexReader(tmp_path, on_error="skip")
  assert list(reader) == [] and reader.skips.count == 1


def test_hoi4d_both_schemas_table_and_stage(tmp_path):
  _, f_new = fixtures_video.hoi4d_sequence(tmp_path, "C5", "T2", schema="new", T=20, seed=0)
  _, f_old = fixtures_video.hoi4d_sequence(tmp_path, "C2", "T5", schema="old", T=20, seed=1)
  trajs = list(Hoi4dReader(tmp_path))
  by_task = {t.task: t for t in trajs}
  assert by_task["C5/T2"].instruction == "Pour all the water into a mug"
  assert by_task["C2/T5"].instruction == "Pour the water into another mug"
  assert_close_video(by_task["C5/T2"].frames, f_new)
  assert_close_video(by_task["C2/T5"].frames, f_old)
  fps = 300 / 10.0  # 300 frames per HOI4D clip over the annotated duration
  np.testing.assert_allclose(by_task["C5/T2"].timestamps, np.arange(20) / fps, atol=1e-6)
  # Events start at 0.0 (reach), 0.3 s (grasp), 0.6 s (pour): frames 0-8, 9-17, 18-19 at 30 fps.
  assert by_task["C5/T2"].stage.tolist() == [0] * 9 + [1] * 9 + [2] * 2
  assert by_task["C2/T5"].stage.tolist() == by_task["C5/T2"].stage.tolist()
  assert by_task["C2/T5"].metadata["events"] == ["reach", "grasp", "pour"]


def test_hoi4d_unknown_task_and_bad_json(tmp_path):
  seq, _ = fixtures_video.hoi4d_sequence(tmp_path, "C99", "T1", T=6)
  with pytest.raises(DataFormatError, match=r"field 'task table': expected an entry for \(C99, T1\)"):
    list(Hoi4dReader(tmp_path))
  assert next(iter(Hoi4dReader(tmp_path, task_table={("C99", "T1"): "Do the thing"}))).instruction == "Do the thing"
  with open(os.path.join(seq, "action", "color.json"), "w") as f:
    json.dump({"info": {"duration": 10}}, f)
  with pytest.raises(DataFormatError, match=r"color.json: field 'events'"):
    parse_color_json(os.path.join(seq, "action", "color.json"))


SSV2 = [("1001", "Putting [something] into [something]", ["a pen", "a cup"], 10),
        ("1002", "Pushing [something] from left to right", ["a box"], 7)]


def test_ssv2(tmp_path):
  _, frames = fixtures_video.write_ssv2(tmp_path, SSV2)
  trajs = list(Ssv2Reader(tmp_path))
  assert [t.instruction for t in trajs] == ["Putting a pen into a cup", "Pushing a box from left to right"]
  assert trajs[0].task == "Putting something into something" and [t.metadata["class_index"] for t in trajs] == [1, 0]
  for traj, want in zip(trajs, frames):
    assert_close_video(traj.frames, want)
  np.testing.assert_allclose(trajs[0].timestamps, np.arange(10) / 12, atol=1e-6)
  sub = next(iter(Ssv2Reader(tmp_path, max_frames=4)))  # webm: count estimated from the container duration
  assert sub.metadata["frame_index"].tolist() == [0, 3, 6, 9]


def test_ssv2_test_split_without_labels_and_missing_video(tmp_path):
  fixtures_video.write_ssv2(tmp_path, SSV2)
  with open(tmp_path / "labels" / "test.json", "w") as f:
    json.dump([{"id": "1001"}], f)
  with pytest.raises(DataFormatError, match=r"test.json\[0\]: field 'label'"):
    list(Ssv2Reader(tmp_path, split="test"))
  os.remove(tmp_path / "1002.webm")
  reader = Ssv2Reader(tmp_path, on_error="skip")
  assert len(list(reader)) == 1 and reader.skips.by_field["video"] == 1


def test_epic_segments(tmp_path):
  frames = fixtures_video.write_epic(tmp_path, {"P01_01": 30, "P02_03": 12},
                                     [("P01_01", 3, 14, "open fridge", "open", "fridge"),
                                      ("P02_03", 1, 12, "take knife", "take", "knife")])
  trajs = list(EpicKitchensReader(tmp_path))
  assert [t.instruction for t in trajs] == ["open fridge", "take knife"]
  assert [t.episode_id for t in trajs] == ["P01_01_0", "P02_03_1"]
  assert_close_video(trajs[0].frames, frames["P01_01"][2:14])  # 1-based frame numbers 3..14
  np.testing.assert_allclose(trajs[0].timestamps, np.arange(12) / 50.0, atol=1e-6)
  assert trajs[0].metadata["all_nouns"] == ["fridge"]
  sub = next(iter(EpicKitchensReader(tmp_path, max_frames=4)))
  assert sub.metadata["frame_number"].tolist() == [3, 7, 10, 14]


def test_epic_missing_frame_and_columns(tmp_path):
  fixtures_video.write_epic(tmp_path, {"P01_01": 10}, [("P01_01", 2, 9, "open fridge", "open", "fridge")])
  os.remove(tmp_path / "P01" / "rgb_frames" / "P01_01" / "frame_0000000005.jpg")
  with pytest.raises(DataFormatError, match=r"frame_0000000005.jpg: field 'frame'"):
    list(EpicKitchensReader(tmp_path))
  bad = tmp_path / "bad.csv"
  bad.write_text("narration_id,video_id\nx,P01_01\n")
  with pytest.raises(DataFormatError, match=r"bad.csv: field 'columns'.*missing \['participant_id'"):
    list(EpicKitchensReader(tmp_path, annotations=str(bad)))


def test_ssv2_finds_videos_where_the_official_archive_extracts_them(tmp_path):
  """`<root>/20bn-something-something-v2/<id>.webm` beside `<root>/labels/`, with no videos_dir argument."""
  fixtures_video.write_ssv2(tmp_path, SSV2, videos_subdir="20bn-something-something-v2")
  assert not list(tmp_path.glob("*.webm"))
  trajs = list(Ssv2Reader(tmp_path))
  assert [t.episode_id for t in trajs] == ["1001", "1002"] and trajs[0].num_frames == 10
  os.remove(tmp_path / "20bn-something-something-v2" / "1002.webm")
  with pytest.raises(DataFormatError, match=r"train.json\[1\]: field 'video': expected 1002.webm in "
                     r".*20bn-something-something-v2/ or .*, got file not found"):
    list(Ssv2Reader(tmp_path))
