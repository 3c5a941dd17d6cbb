"""The reward-model job end to end at toy scale: sources -> held-out episodes -> train -> metrics and plots."""
import json
import os
import subprocess
import sys

import jax
import pytest

from lrm_jax.envs import splits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = "steps=12,episodes=4,eval_episodes=2,res=32,batch=4,patch=8,width=32,depth=1,tower_steps=30"


@pytest.mark.slow
def test_reward_model_job_writes_heldout_metrics(tmp_path):
  cmd = [sys.executable, "-m", "lrm_jax.main", f"--config=configs/reward_model/cpu_demo.py:{ARGS}",
         f"--workdir={tmp_path}", "--config.eval.interval=5", "--config.checkpoint_every=4", "--config.val_batches=2"]
  out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)
  assert out.returncode == 0, out.stderr[-3000:]
  m = json.load(open(tmp_path / "eval" / "metrics.json"))
  assert m["heldout_tasks"] == sorted(splits.HELD_OUT_TASKS) and m["steps"] == 12
  assert set(m["models"]) == {"lrm", "untrained", "vlmrm", "pixel_change"}
  for name, r in m["models"].items():
    assert set(r["per_task"]) <= splits.HELD_OUT_TASKS, name  # evaluated on held-out tasks only
    assert -1 <= r["voc"] <= 1 and 0 <= r["direction_accuracy"] <= 1, name
  for f in ("progress_curves.png", "roc_completion.png", "metrics.png", "explain.jsonl"):
    assert os.path.getsize(tmp_path / "eval" / f) > 0, f
  first = json.loads(open(tmp_path / "eval" / "explain.jsonl").readline())
  assert {"task", "progress", "completed", "closer", "expected"} <= set(first)
  sources = json.load(open(tmp_path / "sources" / "sources.json"))
  assert not set(sources["lrm_bench"]["tasks"]) & splits.HELD_OUT_TASKS  # training sources: training tasks only
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["12", "8"]  # keep_checkpoints=2
  # The image tower was pretrained on the sources' segmented frames (training tasks only) before training.
  tower = json.load(open(tmp_path / "tower" / "summary.json"))
  assert tower["steps"] == 30 and tower["frames"] == sources["tower_frames"]["frames"] > 0
  assert tower["loss_last"] < tower["loss_first"] and os.path.getsize(tmp_path / "tower" / "img.npz") > 0
  assert m["seconds"]["tower"] > 0
  # The tower is measured on held-out tasks' frames too (never trained on them): perception that transfers.
  assert {"val", "heldout_tasks"} <= set(tower["metrics"]) and tower["metrics"]["heldout_tasks"]["position_cm"] > 0
  # The paper's open-loop score files, one per mode, one trajectory per held-out episode.
  for mode in ("progress", "completion", "comparison"):
    scores = json.load(open(tmp_path / "eval" / "openloop" / mode / "vlm_scores.json"))
    assert scores["mode"] == mode and len(scores["trajectories"]) == m["eval_episodes"]


@pytest.mark.slow
def test_release_recipe_exports_a_model_that_loads_and_scores_the_same(tmp_path):
  """configs/reward_model/lrm_tiny.py at toy sizes: the extra evaluation sets and the release folder (manifest:
  training tasks disjoint from the held-out split), which loads as a released model with the trained params."""
  import numpy as np
  from lrm_jax.jobs import reward_model
  from lrm_jax.models import release
  out = tmp_path / "release"
  arg = (f"steps=6,episodes=4,eval_episodes=1,in_dist_episodes=1,res=32,batch=4,patch=8,width=32,depth=1,"
         f"tower_steps=10,warmup=3,release={out}")
  cmd = [sys.executable, "-m", "lrm_jax.main", f"--config=configs/reward_model/lrm_tiny.py:{arg}",
         f"--workdir={tmp_path / 'w'}", "--config.eval.interval=5", "--config.val_batches=1",
         "--config.eval.bootstrap=10", "--config.eval.explain=0"]
  run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)
  assert run.returncode == 0, run.stderr[-3000:]
  m = json.load(open(tmp_path / "w" / "eval" / "metrics.json"))
  assert set(m["other_sets"]) == {"in_distribution", "other_look"}
  manifest = release.read_manifest(str(out))
  # One new episode per training task the release trained on (the in-distribution set follows `tasks`).
  assert m["other_sets"]["in_distribution"]["episodes"] == len(manifest["training_tasks"])
  assert manifest["training_tasks"] and not set(manifest["training_tasks"]) & splits.HELD_OUT_TASKS
  assert manifest["evaluation"]["models"]["lrm"]["voc"] == m["models"]["lrm"]["voc"]
  assert manifest["training_curve"]["train/loss"][-1][0] == 6 and manifest["config"].endswith("lrm_tiny.py")
  model, tok, params, initial = reward_model.load_trained(None, str(out))
  from lrm_jax.utils import config_args
  config = config_args.load_file(f"configs/reward_model/lrm_tiny.py:{arg}")
  _, _, trained, _ = reward_model.load_trained(config, str(tmp_path / "w"))
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(trained)):
    np.testing.assert_allclose(a, b, rtol=2e-2, atol=2e-2)  # the shipped file is the trained params in bf16
  # bench/score_release.py scores the release on the run's own evaluation episodes (every set): the same episodes,
  # and the same answers up to the bf16 rounding of the shipped file.
  scored = tmp_path / "scored"
  cmd = [sys.executable, "bench/score_release.py", f"--release={out}", f"--like={tmp_path / 'w'}",
         f"--out={scored}", f"--config=configs/reward_model/lrm_tiny.py:{arg}"]
  run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)
  assert run.returncode == 0, run.stderr[-3000:]
  s = json.load(open(scored / "eval" / "metrics.json"))
  assert s["eval_episodes"] == m["eval_episodes"] and set(s["other_sets"]) == set(m["other_sets"])
  for name in m["other_sets"]:
    assert s["other_sets"][name]["episodes"] == m["other_sets"][name]["episodes"]
    a = json.load(open(tmp_path / "w" / f"eval_{name}" / "openloop" / "progress" / "vlm_scores.json"))
    b = json.load(open(scored / f"eval_{name}" / "openloop" / "progress" / "vlm_scores.json"))
    assert [t["oracle_steps"] for t in a["trajectories"]] == [t["oracle_steps"] for t in b["trajectories"]]
  assert abs(s["models"]["lrm"]["progress_mae"] - m["models"]["lrm"]["progress_mae"]) < 0.05
  again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert again.returncode == 2 and "never overwritten" in again.stderr  # a second run keeps the first's scores
  # The demo runs on a released model: zero-shot evaluation (nothing trained), then refinement with it.
  cmd = [sys.executable, "-m", "lrm_jax.main", f"--config=configs/demo.py:quick,release={out}",
         f"--workdir={tmp_path / 'demo'}"]
  run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)
  assert run.returncode == 0, run.stderr[-3000:]
  res = json.load(open(tmp_path / "demo" / "results.json"))
  assert res["reward_model"]["release"]["dir"] == str(out) and res["reward_model"]["steps"] == 0
  assert not (tmp_path / "demo" / "reward_model" / "checkpoints").exists()  # nothing was trained
  assert set(res["rl"]["rewards"]) >= {"lrm_tri", "oracle"}
  report = open(tmp_path / "demo" / "report.md").read()
  assert "the released reward model" in report and "reward model: released, not trained" in report


def test_a_text_len_too_short_for_the_training_prompts_is_a_config_error_before_any_work():
  from lrm_jax.jobs import reward_model
  from lrm_jax.models import tokenizer as tokenizer_lib
  from lrm_jax.utils import config_args
  config = config_args.load_file("configs/reward_model/cpu_demo.py")
  tok = tokenizer_lib.load(None)
  reward_model.check_text_len(config, tok)  # the shipped default fits every training phrasing
  config.text_len = 20
  with pytest.raises(config_args.ConfigError, match=r"text_len: expected >= \d+ tokens .* got 20"):
    reward_model.check_text_len(config, tok)
  # The release trains on every training task in 48 tokens; v1's 40 fit its nine tasks, not the compositions.
  reward_model.check_text_len(config_args.load_file("configs/reward_model/lrm_tiny.py"), tok)
  reward_model.check_text_len(
      config_args.load_file("configs/reward_model/lrm_tiny.py:tasks=stack_three+put_in_drawer,text_len=40"), tok)
  with pytest.raises(config_args.ConfigError, match=r"text_len: expected >= \d+ tokens .* got 40"):
    reward_model.check_text_len(config_args.load_file("configs/reward_model/lrm_tiny.py:text_len=40"), tok)



@pytest.mark.slow
def test_warmup_stage_trains_its_questions_first_and_the_main_stage_starts_from_it(tmp_path, monkeypatch):
  """`config.warmup`: W/warmup is trained on the warm-up questions alone, W/warmup_2 (`warmup.then`) on its own
  questions from there, and the main stage's initial params are the last warm-up's final params (not the random
  init)."""
  import numpy as np
  from lrm_jax.jobs import reward_model
  from lrm_jax.train import trainer as trainer_lib
  from lrm_jax.utils import config_args
  config = config_args.load_file("configs/reward_model/cpu_demo.py:steps=2,episodes=4,eval_episodes=0,res=32,batch=4,"
                                 "patch=8,width=32,depth=1,tower_steps=0")
  config.warmup.steps, config.val_batches = 3, 1
  config.warmup.then = dict(steps=2, kinds=("completion",))
  inits, finals, configs = {}, {}, {}  # per trainer workdir

  class Spy(trainer_lib.Trainer):
    def run(self, *args, **kwargs):
      state = super().run(*args, **kwargs)
      finals[self.workdir] = jax.device_get(state.params)
      return state

  def make(c, model, init, workdir):
    def recorded():
      inits[workdir] = jax.device_get(init())
      return inits[workdir]
    configs[workdir] = c
    return Spy(c, model, recorded, workdir)
  monkeypatch.setattr(trainer_lib, "Trainer", make)
  reward_model.run(config, str(tmp_path))
  warm, warm2, main = str(tmp_path / "warmup"), str(tmp_path / "warmup_2"), str(tmp_path)
  assert configs[warm].total_steps == 3 and tuple(configs[warm].data.mixture.labels["kinds"]) == ("contrastive",)
  assert configs[warm2].total_steps == 2 and tuple(configs[warm2].data.mixture.labels["kinds"]) == ("completion",)
  assert "kinds" not in (configs[main].data.mixture.get("labels", None) or {})  # the main stage: every question
  assert sorted(os.listdir(tmp_path / "warmup" / "checkpoints"), key=int)[-1] == "3"
  assert sorted(os.listdir(tmp_path / "warmup_2" / "checkpoints"), key=int)[-1] == "2"
  for a, b in zip(jax.tree.leaves(inits[warm2]), jax.tree.leaves(finals[warm])):
    np.testing.assert_array_equal(a, b)  # the second stage starts where the first ended
  for a, b in zip(jax.tree.leaves(inits[main]), jax.tree.leaves(finals[warm2])):
    np.testing.assert_array_equal(a, b)  # the main stage starts where the last warm-up ended
  assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(inits[warm2]), jax.tree.leaves(finals[warm2])))
  assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(inits[warm]), jax.tree.leaves(finals[warm])))
