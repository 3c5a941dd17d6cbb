"""reward_data job: sim episodes -> suite RLDS, EPIC-KITCHENS layout, Open-X layout -> mixture; held-out tasks never
reach the training mixture (checked on config, on generated episodes, and by the mixture's guard on reading)."""
import json
import os

import numpy as np
import pytest

from configs import reward_data as reward_data_config
from data_pipelines import export, registry
from data_pipelines.epic import EpicKitchensReader
from data_pipelines.errors import ExcludedTaskError
from data_pipelines.mixture import build_mixture
from data_pipelines.oxe import OxeReader
from data_pipelines.suite_rlds import SuiteRldsReader
from data_pipelines import suite_rlds_builder
from lrm_jax.envs import language, splits
from lrm_jax.jobs import reward_data

HELD_OUT_TEXT = "put the red cube on the plate, then the blue cube"  # a two_on_plate phrasing


def episode(task, instruction, T=6, success=True, seed=0, size=16, embodiment="gripper"):
  ramp = np.linspace(20, 230, T)[:, None, None, None]
  images = np.clip(ramp + np.random.default_rng(seed).integers(0, 10, (T, size, size, 3)), 0, 255).astype(np.uint8)
  return dict(images=images, state=np.zeros((T, 5), np.float32), action=np.zeros((T, 4), np.float32),
              reward=np.zeros(T, np.float32), stage=np.zeros(T, np.int32), instruction=instruction, task=task,
              success=success, embodiment=embodiment, seed=seed, noise="clean", num_stages=1)


def mixture_config(paths, size=16):
  fmts = {"lrm_bench": "lrm_bench", "epic_kitchens": "epic_kitchens", "lrm_bench_oxe": "oxe"}
  return dict(seed=0, image_size=size, augment=False, shuffle_buffer=1, batch_size=None,
              sources=[dict(name=n, format=fmts[n], path=p, weight=1.0) for n, p in paths.items()])


# ---------------------------------------------------------------------------------------------- held-out guards
def test_default_config_is_train_tasks_only():
  c = reward_data_config.get_config()
  assert set(c.datagen.tasks) == set(splits.TRAIN_TASKS) == set(c.datagen_oxe.tasks)
  assert c.datagen_oxe.camera != c.datagen.camera


def test_held_out_task_in_config_raises_before_generating(tmp_path):
  c = reward_data_config.get_config("tasks=push_cube+two_on_plate,image_size=16")
  with pytest.raises(ValueError, match="two_on_plate"):
    reward_data.build_sources(c, str(tmp_path))
  assert not os.listdir(tmp_path)


def test_held_out_instructions_cover_every_phrasing_and_no_train_one():
  banned = reward_data.held_out_instructions()
  assert HELD_OUT_TEXT in banned
  assert "press the red button, then the green button, then the blue button" in banned
  assert set(language.all_instructions(sorted(splits.HELD_OUT_TASKS))) <= banned
  assert not banned & reward_data._instructions(splits.TRAIN_TASKS)


def test_check_train_only_refuses_held_out_episodes():
  reward_data.check_train_only([episode("push_cube", "push the red cube onto the mat")])
  with pytest.raises(ValueError, match="two_on_plate"):
    reward_data.check_train_only([episode("push_cube", "push the red cube onto the mat"),
                                  episode("two_on_plate", HELD_OUT_TEXT)])
  with pytest.raises(ValueError, match="instruction"):  # mislabelled task, held-out text
    reward_data.check_train_only([episode("place_on_plate", HELD_OUT_TEXT)])


@pytest.fixture(scope="module")
def clean_sources(tmp_path_factory):
  """Three small sources with train tasks only, written by the job's writers (no simulator)."""
  root = str(tmp_path_factory.mktemp("sources"))
  train = [episode("push_cube", "push the red cube onto the mat", seed=1),
           episode("press_button", "hit the green button", T=8, seed=2)]
  suite = suite_rlds_builder.write(os.path.join(root, "suite"), {"train": lambda: iter(train)}, 16)
  epic = os.path.join(root, "EPIC-KITCHENS")
  os.makedirs(epic)
  export.write_epic(epic, train, fps=25.0)
  oxe = export.write_oxe_rlds(os.path.join(root, "oxe"), train, 16)
  return dict(lrm_bench=suite, epic_kitchens=epic, lrm_bench_oxe=oxe), train


def test_clean_sources_mix_with_the_guard_on(clean_sources):
  paths, _ = clean_sources
  ds, mix = build_mixture(mixture_config(paths), exclude_tasks=splits.HELD_OUT_TASKS,
                          exclude_instructions=reward_data.held_out_instructions(), process_index=0,
                          process_count=1, repeat=False, verbose=False)
  assert [s.trajectories for s in mix.summary] == [2, 2, 2]
  sources = {x["source"].decode() for x in ds.as_numpy_iterator()}
  assert sources == {"lrm_bench", "epic_kitchens", "oxe:lrm_bench_oxe"}


@pytest.mark.parametrize("fmt", ["epic_kitchens", "lrm_bench_oxe"])
def test_held_out_episode_sneaked_into_a_source_without_task_names_raises(tmp_path, clean_sources, fmt):
  """EPIC and Open-X layouts carry no task names: the mixture still refuses a held-out task's instruction."""
  paths, train = clean_sources
  sneaky = train + [episode("two_on_plate", HELD_OUT_TEXT, seed=3)]
  paths = dict(paths)
  if fmt == "epic_kitchens":
    paths[fmt] = str(tmp_path / "EPIC-KITCHENS")
    os.makedirs(paths[fmt])
    export.write_epic(paths[fmt], sneaky, fps=25.0)
  else:
    paths[fmt] = export.write_oxe_rlds(str(tmp_path), sneaky, 16)
  with pytest.raises(ExcludedTaskError, match="plate, then the blue cube"):
    build_mixture(mixture_config(paths), exclude_tasks=splits.HELD_OUT_TASKS,
                  exclude_instructions=reward_data.held_out_instructions(), process_index=0, process_count=1,
                  verbose=False)


def test_held_out_episode_sneaked_into_the_suite_train_split_is_dropped_and_its_text_refused(tmp_path,
                                                                                             clean_sources):
  paths, train = clean_sources
  paths = dict(paths)
  sneaky = train + [episode("two_on_plate", HELD_OUT_TEXT, seed=3)]
  paths["lrm_bench"] = suite_rlds_builder.write(str(tmp_path / "suite"), {"train": lambda: iter(sneaky)}, 16)
  _, mix = build_mixture(mixture_config(paths), exclude_tasks=splits.HELD_OUT_TASKS, process_index=0,
                         process_count=1, verbose=False)
  assert mix.summary[0].trajectories == 2  # the reader dropped it by task name
  # The same text under a train task's name (a mislabelled episode) is refused by the instruction guard.
  mislabelled = train + [episode("place_on_plate", HELD_OUT_TEXT, seed=4)]
  paths["lrm_bench"] = suite_rlds_builder.write(str(tmp_path / "suite2"), {"train": lambda: iter(mislabelled)}, 16)
  with pytest.raises(ExcludedTaskError, match="plate, then the blue cube"):
    build_mixture(mixture_config(paths), exclude_tasks=splits.HELD_OUT_TASKS,
                  exclude_instructions=reward_data.held_out_instructions(), process_index=0, process_count=1,
                  verbose=False)


# --------------------------------------------------------------------------------------------------- writers
def test_epic_export_reads_back_as_epic(tmp_path):
  eps = [episode("push_cube", f"push the red cube onto the mat {k}", T=5 + k, seed=k) for k in range(3)]
  rows = export.write_epic(str(tmp_path), eps, fps=25.0, segments_per_video=2)
  assert [r["video_id"] for r in rows] == ["P01_01", "P01_01", "P01_02"]
  assert (rows[1]["start_frame"], rows[1]["stop_frame"]) == (6, 11)
  assert os.path.exists(tmp_path / "P01" / "rgb_frames" / "P01_01" / "frame_0000000011.jpg")
  got = list(EpicKitchensReader(str(tmp_path)))
  assert [t.instruction for t in got] == [e["instruction"] for e in eps]
  for t, e in zip(got, eps):
    assert t.success is None and t.num_frames == len(e["images"])
    assert np.abs(t.frames.astype(int) - e["images"]).mean() < 6  # JPEG
    np.testing.assert_allclose(t.timestamps, np.arange(len(e["images"])) / 25.0, atol=1e-6)
  with pytest.raises(ValueError, match="only successful"):
    export.write_epic(str(tmp_path / "x"), [episode("push_cube", "push it", success=False)], fps=25.0)


def test_oxe_export_reads_back_through_the_oxe_table(tmp_path):
  eps = [episode("push_cube", "push the red cube onto the mat", T=7, seed=1)]
  path = export.write_oxe_rlds(str(tmp_path), eps, 16)
  assert path.endswith("lrm_bench_oxe/0.1.0")
  (t,) = list(OxeReader(path))
  assert t.source == "oxe:lrm_bench_oxe" and t.success is None and t.instruction == eps[0]["instruction"]
  assert np.abs(t.frames.astype(int) - eps[0]["images"]).mean() < 6  # JPEG
  with pytest.raises(ValueError, match="only successful"):
    export.write_oxe_rlds(str(tmp_path / "x"), [episode("push_cube", "push it", success=False)], 16)


def test_atomic_dir_replaces_only_when_complete(tmp_path):
  final = tmp_path / "src"
  with export.atomic_dir(str(final)) as tmp:
    open(os.path.join(tmp, "a"), "w").write("1")
  assert os.listdir(final) == ["a"]
  with pytest.raises(RuntimeError):
    with export.atomic_dir(str(final)) as tmp:
      open(os.path.join(tmp, "b"), "w").write("2")
      raise RuntimeError("interrupted")
  assert os.listdir(final) == ["a"] and sorted(os.listdir(tmp_path)) == ["src"]
  with export.atomic_dir(str(final)) as tmp:
    open(os.path.join(tmp, "c"), "w").write("3")
  assert os.listdir(final) == ["c"] and sorted(os.listdir(tmp_path)) == ["src"]


# ---------------------------------------------------------------------------------------------------- the job
@pytest.mark.slow
def test_job_writes_three_readable_train_only_sources_and_mixes_them(tmp_path):
  """Tiny config: two table-family tasks (one compiled program per camera), 16 px, 3 + 1 episodes per task."""
  c = reward_data_config.get_config("episodes_per_task=3,failure_fraction=0.34,image_size=16,batch_size=4,"
                                    "tasks=press_button+push_cube,batches=6,examples=4")
  summary = reward_data.run(c, str(tmp_path))
  root = tmp_path / "sources"
  # No temp folders or cached chunks left; the tower-pretraining frames and the completion marker sit beside the
  # three datasets.
  assert sorted(os.listdir(root)) == sorted(["EPIC-KITCHENS", "lrm_bench", "lrm_bench_oxe", reward_data.TOWER_FRAMES,
                                             reward_data.SOURCES_MARKER])
  tower = np.load(root / reward_data.TOWER_FRAMES)
  assert tower["frames"].shape[:3] == tower["seg"].shape and tower["frames"].shape[1:] == (16, 16, 3)
  assert len(tower["frames"]) == summary["built"]["tower_frames"]["frames"] > 0
  banned = reward_data.held_out_instructions()
  readers = {"lrm_bench": SuiteRldsReader(root / "lrm_bench" / "1.0.0"),
             "epic_kitchens": registry.make_reader("epic_kitchens", root / "EPIC-KITCHENS"),
             "oxe": registry.make_reader("oxe", root / "lrm_bench_oxe" / "0.1.0")}
  for name, reader in readers.items():
    trajs = list(reader)  # no exclusion: what is on disk
    assert trajs, name
    assert all(t.task is None or t.task in {"press_button", "push_cube"} for t in trajs), name
    assert not {t.instruction for t in trajs} & banned, name
    if name != "lrm_bench":
      assert all(t.success is None for t in trajs)  # demonstrations: no success flag in these formats
  assert {t.metadata["embodiment"] for t in readers["lrm_bench"]} == {"gripper"}
  assert set(summary["batches"]["examples_by_source"]) == {"lrm_bench", "epic_kitchens", "oxe:lrm_bench_oxe"}
  assert os.path.getsize(tmp_path / "reward_data_examples.png") > 1000
  with open(tmp_path / "reward_data_summary.json") as f:
    saved = json.load(f)
  assert [s["name"] for s in saved["mixture"]["sources"]] == ["lrm_bench", "epic_kitchens", "lrm_bench_oxe"]
  assert saved["mixture"]["excluded_tasks"] == sorted(splits.HELD_OUT_TASKS)


def test_real_config_points_the_mixture_at_datasets_on_disk(tmp_path):
  c = reward_data_config.get_config(f"real,root={tmp_path}")
  assert not c.generate
  mc = reward_data.resolve_sources(c.mixture, "/unused")
  assert {s["format"] for s in mc["sources"]} >= {"oxe", "libero_rlds", "egodex", "epic_kitchens", "lrm_bench"}
  assert all(s["path"].startswith(str(tmp_path) + "/") for s in mc["sources"])
