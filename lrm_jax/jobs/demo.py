"""Job `demo`: the whole method end to end, on embedded defaults.

  the released LRM-tiny (or: simulated training sources, training tasks only -> reward model training)
  -> zero-shot evaluation on the held-out tasks -> behaviour-cloned base policy on a held-out task -> PPO with the
  reward model's reward and with the baselines -> ground-truth evaluation -> W/report.md + W/results.json

Stages write into their own folders and are the ordinary jobs (`reward_model`, `refine`), so each can be rerun or
inspected alone; a rerun of the demo resumes the reward model from its checkpoints and reuses the data it built.
  W/reward_model/   job reward_model (sources, held-out episodes, checkpoints, eval/metrics.json and plots, tb)
  W/refine/         job refine (demos, PPO runs per reward, refine.json, learning curves, videos)
  W/report.md       tables, plots and videos, ready to read (or paste)
  W/results.json    success before/after per reward, reward-quality metrics, targets, timings
"""
import json
import os
import platform
import time

import jax

from lrm_jax.jobs import refine as refine_job
from lrm_jax.jobs import report as report_lib
from lrm_jax.jobs import reward_model as reward_model_job


def run(config, workdir: str) -> dict:
  t0 = time.time()
  rm_dir = os.path.join(workdir, "reward_model")
  rl_dir = os.path.join(workdir, "refine")
  released = config.get("reward_model_release", "")
  if released:  # the shipped model: zero-shot evaluation only, nothing trained
    print(f"== 1/2 reward model: released {released}, zero-shot evaluation on held-out tasks", flush=True)
    rm = reward_model_job.evaluate_release(config.reward_model, released, rm_dir)
  else:
    print("== 1/2 reward model: data, training, zero-shot evaluation on held-out tasks", flush=True)
    rm = reward_model_job.run(config.reward_model, rm_dir)
  t_rm = time.time() - t0
  print("== 2/2 policy refinement: BC base policy, PPO with each reward, ground-truth evaluation", flush=True)
  rl_config = config.refine.copy_and_resolve_references()
  rl_config.unlock()
  rl_config.reward_model = config.reward_model
  rl_config.reward_model_workdir = released or rm_dir
  rl = refine_job.run(rl_config, rl_dir)
  seconds = dict(reward_model=round(t_rm, 1), refine=round(time.time() - t0 - t_rm, 1),
                 total=round(time.time() - t0, 1))
  machine = dict(platform=platform.platform(), cpus=os.cpu_count(), backend=jax.default_backend(),
                 devices=[str(d) for d in jax.devices()], jax=jax.__version__)
  results = report_lib.results(rm, rl, seconds, machine, config.targets)
  tmp = os.path.join(workdir, "results.json.tmp")
  with open(tmp, "w") as f:
    json.dump(results, f, indent=2, default=float)
  os.replace(tmp, os.path.join(workdir, "results.json"))
  report_lib.write_report(os.path.join(workdir, "report.md"), results, rm, rl)
  print(f"\ndemo done in {seconds['total'] / 60:.1f} min -> {workdir}/report.md, {workdir}/results.json", flush=True)
  return results
