"""Learnability (issue 13): the reward model learns one training task's completion question from its labels alone.

Runs `bench/reward_model_learnability.py` (the `reward_model` job on one task's sources, completion labels only) and
scores completion examples of NEW episodes of that task: the accuracy must reach 95% and the answer must not be
constant. If this fails, no recipe tuning of the full model can work: the pipeline itself does not learn.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Measured (bench/RESULTS.md, "Learnability"): 64 gripper episodes, 400 steps -> 0.967 on 60 new examples; the whole
# test took 14.7 min on the 2-core machine (another test ran beside it for ~3 of them). Before the stage-aware
# labels the same run gave 0.917.
EPISODES, STEPS = 64, 400


@pytest.mark.slow
def test_one_task_completion_is_learned_to_95_percent_on_new_episodes(tmp_path):
  # A subprocess, as the benchmark is run: it sets one CPU device per core before JAX starts, which the pytest
  # process (whose backend other tests already started) cannot do -- and the measured number used those devices.
  cmd = [sys.executable, os.path.join(ROOT, "bench", "reward_model_learnability.py"), f"--workdir={tmp_path}",
         "--task=open_drawer", f"--episodes={EPISODES}", f"--steps={STEPS}", "--val_episodes=32"]
  run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=2400)
  assert run.returncode == 0, run.stderr[-3000:]
  r = json.loads(run.stdout.strip().splitlines()[-1])
  print(r)
  assert r["validation_examples"] >= 40 and 0 < r["validation_positives"] < r["validation_examples"]
  assert r["answers_both"] and r["score_std"] > 0.2, r  # not a constant answer
  assert r["accuracy"] >= 0.95, r
