"""Reward quality in distribution vs zero-shot: a finished `reward_model` run scored on fresh training-task episodes.

  python bench/reward_model_in_distribution.py --workdir=W [--config=configs/reward_model/cpu_demo.py:ARG] [--episodes=4]

W is the workdir of `python -m lrm_jax.main --config=configs/reward_model/cpu_demo.py[:ARG] --workdir=W` (pass the
same config). This script simulates new episodes of the *training* tasks (a seed that neither the sources nor the
held-out evaluation uses; clean and failure modes, as the held-out evaluation), scores them exactly as the job scores
held-out episodes (same interval, baselines and metrics), and prints both tables side by side. It only reads the
trained model: nothing here reaches training, so the held-out split is untouched. What it tells: whether a miss on
the held-out tasks is a failure to generalise to new tasks, or the model not having learned the signals at all.
Writes W/eval_in_distribution/ (metrics.json, the same plots as W/eval).
"""
import argparse
import json
import os

from lrm_jax.utils import host_devices

host_devices.use_all_cores()  # as lrm_jax.main: the trainer's mesh (and so its checkpoint layout) spans every core

from lrm_jax.envs import splits  # noqa: E402
from lrm_jax.jobs import reward_model  # noqa: E402
from lrm_jax.rewards import scoring  # noqa: E402
from lrm_jax.utils import compile_cache  # noqa: E402
from lrm_jax.utils import config_args  # noqa: E402

SEED_OFFSET = 2000  # sources use seed, held-out episodes seed + 1000


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--workdir", required=True)
  ap.add_argument("--config", default="configs/reward_model/cpu_demo.py", help="the run's config file[:arg]")
  ap.add_argument("--episodes", type=int, default=4, help="episodes per training task")
  args = ap.parse_args()
  compile_cache.enable()
  config = config_args.load_file(args.config)
  heldout_path = os.path.join(args.workdir, "eval", "metrics.json")
  if not os.path.exists(heldout_path):
    raise FileNotFoundError(f"{heldout_path}: no held-out metrics; run the reward_model job in {args.workdir} first")
  model, tok, params, untrained = reward_model.load_trained(config, args.workdir)
  config.unlock()  # the job's own extra evaluation sets, with this one only (W/eval_in_distribution/)
  config.eval_sets = {"in_distribution": dict(what="new episodes of the training tasks",
                                              tasks=tuple(sorted(splits.TRAIN_TASKS)),
                                              episodes_per_task=args.episodes, seed=int(config.seed) + SEED_OFFSET)}
  out = reward_model.extra_evaluations(config, scoring.Scorer(model, tok, config.image_size), params, untrained,
                                       args.workdir)["in_distribution"]
  results = out["models"]
  summary = dict(tasks=sorted(splits.TRAIN_TASKS), episodes=out["episodes"], successful=out["successful"],
                 seed=int(config.seed) + SEED_OFFSET, models=results)
  reward_model.write_json(os.path.join(args.workdir, "eval_in_distribution", "metrics.json"), summary)
  with open(heldout_path) as f:
    heldout = json.load(f)
  print(f"\nTraining tasks, new episodes ({summary['episodes']}, {summary['successful']} successful; in distribution):\n"
        f"{reward_model.headline(results)}\n\nHeld-out tasks ({heldout['eval_episodes']} episodes; zero-shot, from "
        f"{heldout_path}):\n{reward_model.headline(heldout['models'])}", flush=True)


if __name__ == "__main__":
  main()
