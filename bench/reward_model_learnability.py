"""Learnability: can the reward model learn ONE training task's completion (or contrastive) question alone?

  python bench/reward_model_learnability.py --workdir=W [--task=open_drawer] [--episodes=64] [--steps=400] [--arg=...]

The first thing to prove before tuning the full recipe (issue 13): the `reward_model` job, on sources of one training
task (front camera, gripper look, clean and failed episodes; completion labels only, no mismatched instructions),
must answer "is the task done?" correctly on completion examples drawn by the same label rules from NEW episodes
(another seed) -- a validation accuracy, not a training one. Also checks that the answer is not constant (both
answers predicted, P(yes) spread). Prints one JSON line; `tests/test_reward_model_learnability.py` runs it small.
"""
import argparse
import json
import os
import time

from lrm_jax.utils import host_devices

host_devices.use_all_cores()  # as lrm_jax.main

import jax  # noqa: E402
import numpy as np  # noqa: E402

from data_pipelines import labels as labels_lib  # noqa: E402
from data_pipelines import prompts  # noqa: E402
from data_pipelines.record import Trajectory  # noqa: E402
from lrm_jax.jobs import datagen, reward_model  # noqa: E402
from lrm_jax.rewards import scoring  # noqa: E402
from lrm_jax.utils import compile_cache, config_args  # noqa: E402


def labels_for(kind: str) -> dict:
  """One question's labels; completion without mismatched instructions (one task: one instruction family)."""
  return dict(kinds=(kind,), completion_mismatch_negatives=0)


def config_for(task: str, episodes: int, steps: int, arg: str = "", seed: int = 0, kind: str = "completion"):
  """cpu_demo's reward model on one task's labels of one question: gripper look, front camera only."""
  # Looks alternate per episode and the hand source must not be empty: generate twice `episodes`, mix the gripper half.
  c = config_args.load_file(f"configs/reward_model/cpu_demo.py:episodes={2 * episodes},steps={steps},"
                            f"eval_episodes=0,seed={seed}" + (f",{arg}" if arg else ""))
  c.data.datagen.tasks = (task,)
  c.data.datagen_oxe.tasks = (task,)
  c.data.datagen_oxe.episodes_per_task = 1  # the Open-X-layout source is written but not mixed in
  c.data.mixture.sources = [s for s in c.data.mixture.sources if s["name"] == "lrm_bench"]
  c.data.mixture.sources[0]["weight"] = 1.0
  c.data.mixture.labels = labels_for(kind)
  c.eval_data.episodes_per_task = 0  # no held-out evaluation: this is about one training task
  c.eval.baselines = ()
  c.eval.explain = 0
  return c


def validation_examples(config, task: str, episodes: int, seed: int, kind: str = "completion"):
  """Completion examples of new episodes of `task` (same label rules as training, with the episodes' stages as the
  suite RLDS source carries them)."""
  ec = config.data.datagen.copy_and_resolve_references()
  ec.unlock()
  ec.tasks, ec.episodes_per_task, ec.seed, ec.semantic_seg = (task,), episodes, seed, False
  ec.embodiments = ("gripper",)
  rng = np.random.default_rng(seed)
  cfg = labels_lib.LabelConfig(**labels_for(kind))
  out = []
  for i, e in enumerate(datagen.generate(ec)):
    traj = Trajectory(frames=e["images"], instruction=e["instruction"], source="validation", success=bool(e["success"]),
                      timestamps=None, stage=e["stage"], episode_id=str(i), task=task, metadata={})
    out += labels_lib.make_examples(traj, rng, cfg=cfg)
  return out


def measure(workdir: str, task: str = "open_drawer", episodes: int = 64, steps: int = 400, val_episodes: int = 32,
            arg: str = "", seed: int = 0, kind: str = "completion") -> dict:
  """Trains, then scores the validation examples: accuracy of the decision (completion: P(yes) > 0.5; contrastive:
  P(B) - P(A) > 0, i.e. "B is closer") against the label, and whether both answers occur."""
  compile_cache.enable()
  config = config_for(task, episodes, steps, arg, seed, kind)
  t0 = time.time()
  reward_model.run(config, workdir)
  train_s = time.time() - t0
  model, tok, params, _ = reward_model.load_trained(config, workdir)
  exs = validation_examples(config, task, val_episodes, seed + 5000, kind)
  scorer = scoring.Scorer(model, tok, config.image_size, kinds=(kind,))
  enc = scorer.encode_instructions([x.instruction for x in exs])
  a = np.stack([x.images[0] for x in exs])
  b = np.stack([x.images[1] for x in exs])
  p = np.asarray(jax.jit(scorer.__call__)(params, a, b, enc["tokens"], enc["mask"])[kind])
  y = np.array([x.answer in (prompts.YES, prompts.B) for x in exs])  # the "positive" answer: yes / B is closer
  said = p > (0.5 if kind == prompts.COMPLETION else 0.0)
  return dict(task=task, kind=kind, train_episodes=episodes, steps=steps, validation_examples=len(y),
              validation_positives=int(y.sum()), accuracy=float((said == y).mean()),
              score_positives=float(p[y].mean()), score_negatives=float(p[~y].mean()),
              answers_both=bool(said.any() and (~said).any()), score_std=float(p.std()),
              train_seconds=round(train_s, 1))


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--workdir", required=True)
  ap.add_argument("--task", default="open_drawer")
  ap.add_argument("--episodes", type=int, default=64, help="gripper training episodes of the task (half fail)")
  ap.add_argument("--steps", type=int, default=400)
  ap.add_argument("--val_episodes", type=int, default=32)
  ap.add_argument("--arg", default="", help="extra cpu_demo.py args, e.g. res=96,patch=8")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--kind", default="completion", choices=("completion", "contrastive"))
  args = ap.parse_args()
  print(json.dumps(measure(os.path.abspath(args.workdir), args.task, args.episodes, args.steps, args.val_episodes,
                           args.arg, args.seed, args.kind)), flush=True)


if __name__ == "__main__":
  main()
