"""The reward-model job end to end at toy scale: sources -> held-out episodes -> train -> metrics and plots."""
import json
import os
import subprocess
import sys

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
