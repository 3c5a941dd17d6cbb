"""The end-to-end demo and its pieces: refine config checks, targets, report; the whole job at toy scale (slow)."""
import json
import os
import subprocess
import sys

import ml_collections
import pytest

from lrm_jax.envs import splits
from lrm_jax.jobs import refine
from lrm_jax.jobs import report
from lrm_jax.utils import config_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _refine_config(arg=""):
  return config_args.load_sibling(os.path.join(ROOT, "configs", "x.py"), "refine.py", arg or None)


def test_refine_refuses_training_tasks_and_unknown_rewards():
  with pytest.raises(ValueError, match="'press_button' is a training task"):
    refine.check_config(_refine_config("task=press_button"))
  with pytest.raises(ValueError, match=r"refine.rewards \['lrm_tri', 'shiny'\]"):
    refine.check_config(_refine_config("rewards=lrm_tri+shiny"))
  refine.check_config(_refine_config())  # defaults are valid


def test_refine_iteration_holds_one_episode_per_env():
  for task in sorted(splits.HELD_OUT_TASKS):
    c = _refine_config(f"task={task},envs=16")
    from lrm_jax.envs import tasks
    from lrm_jax.rl import ppo
    per_env = ppo.env_steps_per_iteration(c.ppo) // c.ppo.num_envs
    assert tasks.TASKS[task].episode_length <= per_env < tasks.TASKS[task].episode_length + c.ppo.unroll_length


def _fake_stage_results(lrm_after=0.55, oracle_after=0.7, sparse_after=0.2, vlmrm_after=0.1, before=0.2):
  rm = dict(models={"lrm": dict(voc=0.85, completion_auc=0.8, direction_accuracy=0.9, per_task={}),
                    "untrained": dict(voc=0.1), "vlmrm": dict(voc=0.0)},
            steps=10, eval_episodes=6, eval_successful=3, interval=10, validation_training_tasks={},
            seconds=dict(sources=1, eval_data=1, train=1, eval=1))
  runs = {}
  for name, after in (("lrm_tri", lrm_after), ("oracle", oracle_after), ("sparse", sparse_after),
                      ("vlmrm", vlmrm_after)):
    s = dict(success_rate=after, ci_low=after - 0.05, ci_high=after + 0.05, successes=0, num_episodes=256,
             final_oracle=0.5)
    runs[name] = dict(after=s, gain=after - before, checkpoints=[dict(iteration=30, **{k: s[k] for k in (
        "success_rate", "ci_low", "ci_high")})], history=[], seconds=dict(train=1.0, eval=1.0, first_iteration=1.0))
  rl = dict(task="press_buttons_in_order", bc=dict(success_rate=before, ci_low=0.15, ci_high=0.25, successes=0,
                                                  num_episodes=256, final_oracle=0.3),
            runs=runs, demos=16, iterations=30, env_steps_per_iteration=3520, eval_episodes=256,
            seconds=dict(demos_and_bc=1.0, total=10.0))
  return rm, rl


def test_targets_are_checked_against_the_measured_numbers(tmp_path):
  targets = ml_collections.ConfigDict(dict(voc=0.8, completion_auc=0.9, direction_accuracy=0.85, rl_gain=0.3,
                                           oracle_fraction=0.8, minutes=30, minutes_limit=45))
  rm, rl = _fake_stage_results()
  res = report.results(rm, rl, dict(total=1200.0, reward_model=600.0, refine=600.0), dict(
      backend="cpu", cpus=2, jax="x", platform="p", devices=[]), targets)
  met = {t["target"]: t["met"] for t in res["targets"]}
  assert met["held-out VOC >= 0.8"] and not met["held-out completion ROC-AUC >= 0.9"]
  assert met["held-out direction accuracy >= 0.85"]  # 0.9; no base rate given
  assert met["lrm_tri: success gain over BC >= 30% (intervals not overlapping)"]  # 0.55 - 0.2 = 0.35
  assert not met["lrm_tri: >= 80% of the oracle reward's gain"]  # 0.35 / 0.5 = 0.7
  assert res["rl"]["rewards"]["lrm_tri"]["fraction_of_oracle_gain"] == pytest.approx(0.7)
  assert met["lrm_tri beats sparse (final success, intervals not overlapping)"]
  assert met["lrm_tri beats vlmrm (final success, intervals not overlapping)"]
  assert met["demo wall time <= 30 min"] and met["demo wall time <= 45 min (hard limit)"]
  rm, rl = _fake_stage_results(lrm_after=0.15)
  res = report.results(rm, rl, dict(total=3000.0, reward_model=1.0, refine=1.0), res["machine"], targets)
  met = {t["target"]: t["met"] for t in res["targets"]}
  assert not met["lrm_tri: success gain over BC >= 30% (intervals not overlapping)"]
  assert not met["lrm_tri beats sparse (final success, intervals not overlapping)"]
  assert not met["demo wall time <= 30 min"] and not met["demo wall time <= 45 min (hard limit)"]
  path = report.write_report(str(tmp_path / "report.md"), res, rm, rl)
  text = open(path).read()
  assert "| lrm_tri | 20.0% | 15.0% [10.0%, 20.0%] | -5.0 pts (within noise) |" in text
  assert "**no**" in text and "press_buttons_in_order" in text
  # An interval wholly below BC's is a measured loss, not noise (the first shipped model's demo: 16.4% -> 6.6%).
  rm, rl = _fake_stage_results(lrm_after=0.05)
  res = report.results(rm, rl, dict(total=1.0, reward_model=1.0, refine=1.0), res["machine"], targets)
  text = open(report.write_report(str(tmp_path / "loss.md"), res, rm, rl)).read()
  assert "| lrm_tri | 20.0% | 5.0% [0.0%, 10.0%] | -15.0 pts (worse than BC) |" in text
  # A direction accuracy that a constant "later is closer" answer would reach is not a met target.
  rm, rl = _fake_stage_results()
  rm["models"]["lrm"]["direction_oracle_up_share"] = 0.92
  res = report.results(rm, rl, dict(total=1.0, reward_model=1.0, refine=1.0), res["machine"], targets)
  row = next(t for t in res["targets"] if t["target"] == "held-out direction accuracy >= 0.85")
  assert row["value"] == 0.9 and row["met"] is False and "0.920" in row["why"]
  text = open(report.write_report(str(tmp_path / "base.md"), res, rm, rl)).read()
  assert "| held-out direction accuracy >= 0.85 | 0.900 | **no** (not above a constant 'later is closer' answer" in text


def test_report_of_a_demo_on_a_released_model(tmp_path):
  targets = ml_collections.ConfigDict(dict(voc=0.8, completion_auc=0.9, direction_accuracy=0.85, rl_gain=0.3,
                                           oracle_fraction=0.8, minutes=30, minutes_limit=45))
  rm, rl = _fake_stage_results()
  del rm["validation_training_tasks"]  # what reward_model.evaluate_release returns: no training, no sources
  rm.update(steps=0, seconds=dict(eval_data=1, eval=1, total=2),
            release=dict(dir=os.path.join(ROOT, "rel"), commit="abc1234", config="configs/reward_model/lrm_tiny.py",
                         training_tasks=sorted(splits.TRAIN_TASKS)))
  res = report.results(rm, rl, dict(total=600.0, reward_model=60.0, refine=540.0), dict(
      backend="cpu", cpus=2, jax="x", platform="p", devices=[]), targets)
  assert res["reward_model"]["release"]["commit"] == "abc1234"
  text = open(report.write_report(str(tmp_path / "report.md"), res, rm, rl)).read()
  assert "the released reward model `rel` (trained by `configs/reward_model/lrm_tiny.py` at commit abc1234" in text
  assert "| reward model: released, not trained | 0 |" in text and "reward model: sources" not in text


def test_demo_config_uses_a_release_unless_told_to_train(tmp_path):
  from lrm_jax.models import release
  shipped = release.LRM_TINY if release.is_release(release.LRM_TINY) else ""
  assert config_args.load_file("configs/demo.py").reward_model_release == shipped
  assert config_args.load_file("configs/demo.py:from_scratch").reward_model_release == ""
  assert config_args.load_file("configs/demo.py:quick").reward_model_release == ""
  assert config_args.load_file(f"configs/demo.py:quick,release={tmp_path}").reward_model_release == str(tmp_path)
  from lrm_jax import jobs
  with pytest.raises(config_args.ConfigError, match="reward_model_release"):  # not a release folder
    jobs.validate(config_args.load_file(f"configs/demo.py:quick,release={tmp_path}"))


def test_rl_claims_need_non_overlapping_intervals(tmp_path):
  """A gain, a 'beats' or a share of the oracle's gain is claimed only when the intervals say so."""
  targets = ml_collections.ConfigDict(dict(voc=0.8, completion_auc=0.9, direction_accuracy=0.85, rl_gain=0.03,
                                           oracle_fraction=0.8, minutes=30, minutes_limit=45))
  # The case: every interval overlaps BC's (BC 0.20 [0.15, 0.25]); the oracle's gain is within noise.
  rm, rl = _fake_stage_results(lrm_after=0.24, oracle_after=0.25, sparse_after=0.21, vlmrm_after=0.2, before=0.2)
  res = report.results(rm, rl, dict(total=1200.0, reward_model=600.0, refine=600.0), dict(
      backend="cpu", cpus=2, jax="x", platform="p", devices=[]), targets)
  t = {t["target"]: t for t in res["targets"]}
  assert not t["lrm_tri: success gain over BC >= 3% (intervals not overlapping)"]["met"]  # 4 pts, but in noise
  assert not t["oracle: success gain over BC >= 3% (intervals not overlapping)"]["met"]
  share = t["lrm_tri: >= 80% of the oracle reward's gain"]
  assert share["met"] is None and share["why"] == "oracle gain not significant" and share["value"] is None
  assert not t["lrm_tri beats sparse (final success, intervals not overlapping)"]["met"]
  text = open(report.write_report(str(tmp_path / "report.md"), res, rm, rl)).read()
  assert "n/a (oracle gain not significant)" in text
  rl_rows = [line for line in text.split("## 3. Targets")[1].splitlines() if line.startswith(("| lrm_", "| oracle"))]
  assert len(rl_rows) == 5 and not any(line.endswith("| yes |") for line in rl_rows), rl_rows


@pytest.mark.slow
def test_demo_runs_end_to_end_and_writes_report(tmp_path):
  cmd = [sys.executable, "-m", "lrm_jax.main", "--config=configs/demo.py:quick", f"--workdir={tmp_path}"]
  out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=2400)
  assert out.returncode == 0, out.stderr[-4000:]
  res = json.load(open(tmp_path / "results.json"))
  assert res["rl_task"] in splits.HELD_OUT_TASKS
  assert set(res["rl"]["rewards"]) == {"lrm_tri", "oracle", "sparse", "vlmrm"}
  for name, r in res["rl"]["rewards"].items():
    assert 0 <= r["after"] <= 1 and r["ci"][0] <= r["after"] <= r["ci"][1], name
    assert [c["iteration"] for c in r["checkpoints"]] == [1, 2], name  # eval_every=1, 2 iterations
  assert set(res["reward_quality"]) == {"lrm", "untrained", "vlmrm", "pixel_change"}
  assert any(t["target"].startswith("held-out VOC") for t in res["targets"])
  text = open(tmp_path / "report.md").read()
  assert "## 2. Policy refinement" in text and "learning_curves.png" in text
  for f in ("refine/learning_curves.png", "refine/videos/bc.mp4", "refine/videos/lrm_tri.mp4",
            "reward_model/eval/progress_curves.png"):
    assert os.path.getsize(tmp_path / f) > 0, f
  assert os.listdir(tmp_path / "refine" / "lrm_tri" / "checkpoints")
