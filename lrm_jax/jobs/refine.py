"""Job `refine`: a behaviour-cloned base policy on a held-out task, refined with PPO under each reward, evaluated.

  W/demos.json              the demonstrations used for behaviour cloning (count, steps, success)
  W/<reward>/               TensorBoard (clu) and brax/orbax checkpoints of the PPO run with that reward;
                            result.json once it is finished and evaluated (a rerun reuses it: resume)
  W/refine.json             ground-truth success (256+ episodes, 95% Wilson interval) of the BC policy, of every
                            reward's policy at its checkpoints and at the end; PPO history; timings
  W/learning_curves.png     success over PPO iterations per reward (with intervals), training reward per iteration
  W/videos/<name>.mp4|png   rollouts of the BC policy and of each refined policy, same start states

The reward model is a finished `reward_model` run (`config.reward_model_workdir`, its config in
`config.reward_model`): its trained parameters score `lrm_*` rewards; its initial parameters (a released
checkpoint, or the seeded random init) score the `vlmrm` baseline, as in the zero-shot evaluation. The task must be
held out from the reward model's training (checked): the whole point is a reward on a task it never saw.
"""
import json
import os
import shutil
import time

from absl import logging
import jax
import ml_collections
import numpy as np

from lrm_jax.datagen import report as video_lib
from lrm_jax.envs import registry
from lrm_jax.envs import splits
from lrm_jax.eval import plots
from lrm_jax.jobs import reward_model as reward_model_job
from lrm_jax.rewards import interval
from lrm_jax.rewards import scoring
from lrm_jax.rl import bc as bc_lib
from lrm_jax.rl import demos as demos_lib
from lrm_jax.rl import evaluate as evaluate_lib
from lrm_jax.rl import ppo as ppo_lib
from lrm_jax.rl import residual as residual_lib
from lrm_jax.utils import distributed
from lrm_jax.utils import run_files

_SUMMARY_KEYS = ("success_rate", "ci_low", "ci_high", "successes", "num_episodes", "final_oracle")


def check_config(config) -> None:
  if config.task not in splits.HELD_OUT_TASKS:
    raise ValueError(f"refine.task {config.task!r} is a training task of the reward model; expected a held-out "
                     f"task, one of {sorted(splits.HELD_OUT_TASKS)}")
  bad = [r for r in config.rewards if r not in interval.MODES]
  if bad or not config.rewards:
    raise ValueError(f"refine.rewards {list(config.rewards)}: expected a non-empty list from {list(interval.MODES)}")


def score_fns(config, env, rewards) -> dict:
  """reward mode -> score_fn for `interval.IntervalReward` (None for the privileged baselines)."""
  needs_lrm = [r for r in rewards if r.startswith("lrm_")]
  needs_sim = [r for r in rewards if r == "vlmrm"]
  if not (needs_lrm or needs_sim):
    return {r: None for r in rewards}
  rm_config = config.reward_model
  model, tok, params, initial = reward_model_job.load_trained(rm_config, config.reward_model_workdir)
  scorer = scoring.Scorer(model, tok, reward_model_job.image_size_of(rm_config, config.reward_model_workdir))
  table = env.instruction_table()
  fns = {r: None for r in rewards}
  for r in needs_lrm:
    fns[r] = scoring.score_fn_for_rl(scorer, params, table)
  for r in needs_sim:
    fns[r] = scoring.score_fn_for_rl(scorer, initial, table, lrm=False, similarity=True)
  return fns


def _summary(result: dict) -> dict:
  return {k: result[k] for k in _SUMMARY_KEYS}


def _write_video(evaluation: dict, path: str, fps: int = 12) -> None:
  """An evaluation's rendered episodes [N, T, H, W, 3] side by side as `path`.mp4, and `path`.png: a contact sheet,
  one row per episode, labelled with its ground-truth outcome when the policy is deterministic (the rendered
  episodes are then the evaluated ones)."""
  frames = evaluation["frames"]
  os.makedirs(os.path.dirname(path), exist_ok=True)
  video_lib.write_mp4(path + ".mp4", np.concatenate(list(frames), axis=2), fps)
  outcome = evaluation["per_episode"] if evaluation.get("deterministic") else [None] * len(frames)
  labels = [f"episode {i}" + ("" if o is None else (": success" if o else ": failure")) for i, o in enumerate(outcome)]
  video_lib.contact_sheet(path + ".png", list(frames), labels=labels,
                          title=f"{os.path.basename(path)} policy: the same start states for every policy")


def base_policy(config, env, workdir: str) -> tuple:
  """Demos -> BC -> ground-truth evaluation of the cloned policy: (bc, before, seconds)."""
  t0 = time.time()
  demos = demos_lib.collect(env, int(config.demos.num), seed=int(config.demos.seed),
                            tail_steps=int(config.demos.tail_steps), action_noise=float(config.demos.action_noise))
  bc = bc_lib.train(demos, config.bc)
  if config.residual.enabled:  # PPO then trains a residual on the frozen cloned policy; it starts exactly at BC
    bc = residual_lib.start_from(bc, config.residual)
  seconds = {"demos_and_bc": time.time() - t0}
  if jax.process_index() == 0:  # multi-host: one writer
    with open(os.path.join(workdir, "demos.json"), "w") as f:
      json.dump(dict(task=config.task, demos=int(config.demos.num), steps=demos.num_steps,
                     action_noise=float(config.demos.action_noise), bc_final_mse=float(bc.losses[-1])), f, indent=2)
  t = time.time()
  before = evaluate_lib.evaluate(env, bc.make_policy, bc.params, config.eval)
  seconds["eval_bc"] = time.time() - t
  logging.info("BC policy on %s: success %.3f [%.3f, %.3f]", config.task, before["success_rate"],
               before["ci_low"], before["ci_high"])
  return bc, before, seconds


def refine_one(config, env, bc, before: dict, reward: str, score_fn, workdir: str) -> tuple[dict, dict]:
  """PPO from the cloned policy with one reward, then its ground-truth evaluation: (run summary, evaluation)."""
  t = time.time()
  rc = ml_collections.ConfigDict(dict(ppo=config.ppo, reward=config.reward, eval=config.eval))
  rc = rc.copy_and_resolve_references()
  rc.unlock()
  rc.reward.reward = reward
  rc.reward.shaping = bool(config.reward.shaping) and reward in interval.SHAPEABLE
  rc.reward.image_size = reward_model_job.image_size_of(config.reward_model, config.get("reward_model_workdir", ""))
  out = ppo_lib.make_train(rc, score_fn=score_fn, workdir=workdir)(env, bc)
  train_s = time.time() - t
  # BC's make_policy is brax's inference function of the same networks (tests/test_rl.py checks they agree on
  # the BC params), so every policy is evaluated by one compiled rollout.
  after = evaluate_lib.evaluate(env, bc.make_policy, out.params, config.eval)
  checkpoints = [dict(iteration=i + 1, success_rate=h["gt/success_rate"], ci_low=h["gt/ci_low"],
                      ci_high=h["gt/ci_high"]) for i, h in enumerate(out.history) if "gt/success_rate" in h]
  checkpoints.append(dict(iteration=len(out.history), **{k: after[k] for k in ("success_rate", "ci_low",
                                                                                "ci_high")}))
  run = dict(after=_summary(after), checkpoints=checkpoints, gain=after["success_rate"] - before["success_rate"],
             history=[{k: v for k, v in h.items() if isinstance(v, (int, float))} for h in out.history],
             seconds=dict(train=round(train_s, 1), eval=round(time.time() - t - train_s, 1),
                          first_iteration=round(out.compile_and_first_iteration_s, 1)))
  logging.info("PPO with %s: success %.3f -> %.3f in %.0f s", reward, before["success_rate"],
               after["success_rate"], train_s)
  print(f"refine {config.task} with {reward}: success {before['success_rate']:.3f} -> {after['success_rate']:.3f} "
        f"[{after['ci_low']:.3f}, {after['ci_high']:.3f}] ({train_s:.0f} s)", flush=True)
  return run, after


def run(config, workdir: str) -> dict:
  check_config(config)
  t0 = time.time()
  os.makedirs(workdir, exist_ok=True)
  env = registry.make(config.task)
  eval_config = config.eval
  bc, before, timings = base_policy(config, env, workdir)

  # Resume: a reward whose run finished (W/<reward>/result.json, written last) is not trained again; an unfinished
  # one is trained again from the BC policy. Demos, BC and its evaluation are redone: deterministic, and cheap
  # next to PPO. brax's PPO keeps no optimizer or env state between iterations that could be restored, so the
  # unit of resumption is one reward's whole run.
  runs = {r: _finished_run(os.path.join(workdir, r)) for r in config.rewards}
  pending = [r for r in config.rewards if runs[r] is None]
  for r in config.rewards:
    if runs[r] is not None:
      print(f"refine {config.task} with {r}: finished by a previous run, reused ({_RESULT} in {workdir}/{r})",
            flush=True)
  fns = score_fns(config, env, pending)
  for reward in pending:
    rdir = os.path.join(workdir, reward)
    with distributed.primary_first(f"refine:{reward}:clear"):
      if distributed.is_primary() and os.path.exists(rdir):  # an interrupted run's TensorBoard events, checkpoints
        shutil.rmtree(rdir)
    runs[reward], after = refine_one(config, env, bc, before, reward, fns[reward], rdir)
    if jax.process_index() == 0:  # the video first, then the result that marks the run finished
      if after.get("frames") is not None:
        _write_video(after, os.path.join(workdir, "videos", reward))
      run_files.write_json(os.path.join(rdir, _RESULT), runs[reward])

  result = dict(task=config.task, bc=_summary(before), runs=runs, demos=int(config.demos.num),
                iterations=int(config.ppo.iterations), env_steps_per_iteration=ppo_lib.env_steps_per_iteration(
                    config.ppo), eval_episodes=int(eval_config.num_episodes),
                seconds={k: round(v, 1) for k, v in dict(timings, total=time.time() - t0).items()})
  if jax.process_index() != 0:  # multi-host: every process holds the same results; one writes them
    return result
  plots.plot_success_curves(os.path.join(workdir, "learning_curves.png"), _summary(before),
                            {r: v["checkpoints"] for r, v in runs.items()},
                            {r: [h.get("episode/sum_reward", np.nan) for h in v["history"]] for r, v in runs.items()},
                            f"PPO refinement on held-out task {config.task} (ground-truth success, 95% CI)")
  if before.get("frames") is not None:
    _write_video(before, os.path.join(workdir, "videos", "bc"))
  run_files.write_json(os.path.join(workdir, "refine.json"), result)
  return result


_RESULT = "result.json"


def _finished_run(rdir: str):
  """A previous run's result for this reward, or None when it did not finish."""
  path = os.path.join(rdir, _RESULT)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)
