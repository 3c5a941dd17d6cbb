"""Helpers for the tests of bench/ scripts: load a script as a module, and write synthetic open-loop exports.

An export is a reward_model workdir's `W/eval/openloop/progress/vlm_scores.json` in the paper's layout, where each
episode's scores are order_weight * t + noise: its per-episode VOC term is known to be higher where the order weighs
more. Every export of the same EPISODES has the same episodes (oracle steps), whatever its seed."""
import importlib.util
import json
import os
import sys

import numpy as np

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "bench")
EPISODES, FRAMES = 24, 12


def load_bench(name: str):
  """bench/<name>.py as a module (bench/ is not a package: its scripts import each other from their own folder)."""
  if BENCH not in sys.path:
    sys.path.append(BENCH)
  spec = importlib.util.spec_from_file_location(name, os.path.join(BENCH, f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def progress_export(root, name: str, order_weight: float, seed: int, noise: float = 0.3, eval_set: str = "") -> str:
  """A workdir whose progress export scores every episode as order_weight * t + noise; one in three fails. The
  held-out set's export, or with eval_set that extra set's (`eval_<set>/`)."""
  rng = np.random.default_rng(seed)
  trajs = []
  for e in range(EPISODES):
    scores = order_weight * np.linspace(0, 1, FRAMES) + rng.normal(0, noise, FRAMES)
    trajs.append(dict(oracle_steps=[dict(oracle_reward=0.0, cumulative_reward=0.0, success=e % 3 != 0)],
                      completion_scores=[dict(vlm_completion_score=float(s)) for s in scores],
                      comparison_scores=[], summary=dict(success_once=e % 3 != 0)))
  path = os.path.join(str(root), name, f"eval_{eval_set}" if eval_set else "eval", "openloop", "progress")
  os.makedirs(path)
  with open(os.path.join(path, "vlm_scores.json"), "w") as f:
    json.dump(dict(mode="progress", trajectories=trajs), f)
  return os.path.join(str(root), name)


def completion_export(root, finals, tasks, successes, modes, extra_meta=0, folder="eval", episodes="heldout.npz"):
  """A reward_model workdir holding only what the completion readers need: eval/heldout.npz's meta (task, noise,
  success per episode) and the completion export whose final scored frame is `finals` (or an extra evaluation
  set's: eval_<name>/episodes.npz)."""
  os.makedirs(os.path.join(root, folder, "openloop", "completion"))
  meta = [dict(task=t, noise=m, success=s) for t, s, m in zip(tasks, successes, modes)]
  meta += meta[:extra_meta]
  np.savez(os.path.join(root, folder, episodes), meta=np.array(json.dumps(meta)))
  trajs = [dict(oracle_steps=[dict(success=s)], completion_scores=[dict(vlm_completion_score=0.5),
                                                                   dict(vlm_completion_score=f)])
           for f, s in zip(finals, successes)]
  with open(os.path.join(root, folder, "openloop", "completion", "vlm_scores.json"), "w") as f:
    json.dump(dict(trajectories=trajs), f)
  return str(root)
