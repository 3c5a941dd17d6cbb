"""Data generation: the plan, and a round trip of the job's RLDS output through `tfds.builder_from_directory`."""
import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import datagen as datagen_config
from data_pipelines import suite_rlds_builder
from data_pipelines.suite_rlds import SuiteRldsReader
from lrm_jax.datagen import plan as plan_lib
from lrm_jax.envs import base
from lrm_jax.envs import splits
from lrm_jax.jobs import datagen as datagen_job

TASKS = ("push_cube", "press_buttons_in_order")  # one scene family (one compile), one train + one held-out task


def _stack(steps):
  """RLDS nested `steps` (an iterable of step dicts) -> dict of stacked arrays."""
  steps = list(steps)
  stack = lambda xs: np.stack(xs) if not isinstance(xs[0], dict) else {k: stack([x[k] for x in xs]) for k in xs[0]}
  return stack(steps)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("datagen"))
  config = datagen_config.get_config("episodes_per_task=3,image_size=16,batch_size=4,videos")
  config.tasks = TASKS
  config.failure_modes = ("wrong_object",)
  config.failure_fraction = 0.34
  summary = datagen_job.run(config, workdir)
  return workdir, summary


def test_plan_covers_tasks_modes_and_embodiments():
  specs = plan_lib.plan_episodes(["stack_two", "open_drawer"], 10, 0.5, ("drop", "wrong_object"),
                                 ("gripper", "hand"), seed=3)
  assert len(specs) == 20 and len({s.seed for s in specs}) == 20
  by_task = {t: [s for s in specs if s.task == t] for t in ("stack_two", "open_drawer")}
  assert sum(s.mode == "clean" for s in by_task["stack_two"]) == 5
  assert {s.mode for s in by_task["stack_two"]} == {"clean", "drop", "wrong_object"}
  # A drawer has nothing to drop or swap: those modes fall back to applicable ones.
  assert {s.mode for s in by_task["open_drawer"]} <= {"clean", "stall", "noise"}
  assert {s.embodiment for s in specs} == {"gripper", "hand"}
  assert plan_lib.plan_episodes(["stack_two"], 4, 0.5, ("drop",), ("gripper",), 3) == \
      plan_lib.plan_episodes(["stack_two"], 4, 0.5, ("drop",), ("gripper",), 3)
  with pytest.raises(ValueError, match="unknown task 'stack'"):
    plan_lib.plan_episodes(["stack"], 1, 0.0, (), ("gripper",), 0)
  with pytest.raises(ValueError, match="unknown failure mode 'explode'"):
    plan_lib.plan_episodes(["stack_two"], 1, 0.5, ("explode",), ("gripper",), 0)


def test_dataset_round_trip_through_builder_from_directory(generated):
  workdir, summary = generated
  builder = tfds.builder_from_directory(summary["dataset_dir"])
  assert set(builder.info.splits) == {"train", "heldout"}
  train = list(tfds.as_numpy(builder.as_dataset(split="train")))
  heldout = list(tfds.as_numpy(builder.as_dataset(split="heldout")))
  assert len(train) == 3 and len(heldout) == 3
  for ep in train + heldout:
    steps = _stack(ep["steps"])
    meta = ep["episode_metadata"]
    T = len(steps["is_first"])
    assert T > 5 and steps["is_first"][0] and steps["is_last"][-1] and steps["is_first"].sum() == 1
    assert steps["observation"]["image"].shape == (T, 16, 16, 3)
    assert steps["observation"]["image"].dtype == np.uint8
    assert steps["action"].shape == (T, 4) and steps["stage"].shape == (T,)
    assert len({s.decode() for s in steps["language_instruction"]}) == 1
    assert bool(meta["success"]) == bool(steps["stage"][-1] >= meta["num_stages"])
    assert meta["embodiment"].decode() in ("gripper", "hand")
  train_tasks = {ep["episode_metadata"]["task"].decode() for ep in train}
  held_tasks = {ep["episode_metadata"]["task"].decode() for ep in heldout}
  assert train_tasks == {"push_cube"} and held_tasks == {"press_buttons_in_order"}
  assert not train_tasks & splits.HELD_OUT_TASKS
  # Clean episodes succeed; the swapped-object episode of the ordered-buttons task fails.
  noise = {(ep["episode_metadata"]["task"].decode(), ep["episode_metadata"]["noise"].decode()):
           bool(ep["episode_metadata"]["success"]) for ep in train + heldout}
  assert noise[("push_cube", "clean")] and noise[("press_buttons_in_order", "clean")]
  assert not noise[("press_buttons_in_order", "wrong_object")]


def test_suite_reader_reads_the_generated_dataset_train_split_only(generated):
  _, summary = generated
  trajs = list(SuiteRldsReader(summary["dataset_dir"]))
  assert len(trajs) == 3 and {t.task for t in trajs} == {"push_cube"}
  assert all(t.frames.shape[1:] == (16, 16, 3) and t.stage is not None for t in trajs)


def test_job_writes_summary_videos_and_logs(generated):
  workdir, summary = generated
  with open(os.path.join(workdir, "datagen_summary.json")) as f:
    saved = json.load(f)
  assert saved["episodes"] == 6 and set(saved["success"]) == set(TASKS)
  for task in TASKS:
    assert os.path.getsize(os.path.join(workdir, "videos", f"{task}.mp4")) > 0
    assert os.path.exists(os.path.join(workdir, "videos", f"{task}.png"))
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(workdir, "tb")))


def test_builder_rejects_malformed_episodes(tmp_path):
  bad = dict(images=np.zeros((3, 8, 8), np.uint8), state=np.zeros((3, 2)), action=np.zeros((3, 4)),
             reward=np.zeros(3), stage=np.zeros(3), instruction="x", task="pick_cube", success=False,
             embodiment="gripper", seed=0, noise="clean", num_stages=2)
  with pytest.raises(ValueError, match=r"episode 0: images must be uint8 \[T, H, W, 3\]"):
    suite_rlds_builder.to_rlds(bad, 0)
  bad["images"] = np.zeros((4, 8, 8, 3), np.uint8)
  with pytest.raises(ValueError, match="episode 0: state has 3 steps, images have 4"):
    suite_rlds_builder.to_rlds(bad, 0)


@pytest.mark.slow
def test_default_datagen_acceptance(tmp_path):
  """The issue's acceptance: the default config writes >= 200 episodes covering every task in <= 10 minutes."""
  import time
  from lrm_jax.envs import tasks as tasks_lib
  config = datagen_config.get_config()
  config.videos = False
  t0 = time.time()
  summary = datagen_job.run(config, str(tmp_path))
  minutes = (time.time() - t0) / 60
  assert summary["episodes"] >= 200 and set(summary["success"]) == set(tasks_lib.TASKS)
  clean = [v for row in summary["success"].values() for m, v in row.items() if m == "clean"]
  clean_rate = sum(n * r for n, r in clean) / sum(n for n, _ in clean)
  assert clean_rate >= 0.95, summary["success"]
  assert minutes <= 10.0, f"datagen took {minutes:.1f} min"


def test_generations_share_one_compiled_rollout_and_looks_are_per_episode(generated):
  """Cameras, appearance strength and embodiment are data: generating two configs together reuses the program the
  fixture compiled, and an episode comes out the same whether generated alone or beside other looks."""
  front = datagen_config.get_config("episodes_per_task=2,image_size=16,batch_size=4,videos=false,seed=5")
  front.tasks = ("push_cube",)
  side = front.copy_and_resolve_references()
  side.camera, side.appearance_strength, side.semantic_seg = "side", 0.0, True
  compiled_before = set(datagen_job._ROLLOUTS)
  mixed_front, mixed_side = datagen_job.generate_many([front, side], progress=False)
  (alone_side,) = datagen_job.generate_many([side], progress=False)
  # The fixture's rollout, compiled once; no new one. (Only this key is checked: the process-wide cache also holds
  # whatever earlier tests compiled, e.g. the slow acceptance test's 64 px rollouts of both families.)
  assert set(datagen_job._ROLLOUTS) == compiled_before
  key = ("table",) + tuple(front[k] for k in datagen_job._COMPILED_IN)
  assert datagen_job._ROLLOUTS[key]._run._cache_size() == 1
  for a, b in zip(mixed_side, alone_side):
    np.testing.assert_array_equal(a["images"], b["images"])
    np.testing.assert_array_equal(a["seg"], b["seg"])
  for f, s in zip(mixed_front, mixed_side):  # same seeds: same physics, another camera
    assert "seg" not in f and s["seg"].shape == s["images"].shape[:3]
    np.testing.assert_allclose(f["state"], s["state"], atol=1e-5)
    assert np.abs(f["images"][0].astype(int) - s["images"][0].astype(int)).mean() > 10
  # Several cameras in one config ("side+left"): episodes cycle through them, still the same compiled program.
  both = side.copy_and_resolve_references()
  both.camera = "side+left"
  (cycled,) = datagen_job.generate_many([both], progress=False)
  assert [e["camera"] for e in cycled] == ["side", "left"] and [e["camera"] for e in alone_side] == ["side"] * 2
  np.testing.assert_array_equal(cycled[0]["images"], alone_side[0]["images"])
  assert np.abs(cycled[1]["images"][0].astype(int) - alone_side[1]["images"][0].astype(int)).mean() > 10
  assert cycled[0]["scene"].shape == (len(cycled[0]["images"]), len(base.SCENE_STATE)) == cycled[0]["scene_mask"].shape
  assert set(datagen_job._ROLLOUTS) == compiled_before and datagen_job._ROLLOUTS[key]._run._cache_size() == 1
  with pytest.raises(ValueError, match="must share image_size"):
    datagen_job.generate_many([front, datagen_config.get_config("image_size=32")])
