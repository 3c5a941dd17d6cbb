"""PPO refinement of a behaviour-cloned policy: a thin `make_train` around `brax.training.agents.ppo.train`.

What this adds to brax's PPO (GAE, clipping, minibatching are all brax's):
- the start: `restore_params` = the BC params (`lrm_jax.rl.bc`), brax's `network_factory` = BC's, and the BC
  observation normaliser kept frozen (`BcResult.ppo_normalizer_kwargs`);
- the reward: `wrap_env_fn` = `lrm_jax.rewards.interval.wrap_for_training`, i.e. the env's reward replaced by the
  interval-held reward-model reward (or a privileged baseline) on the batched env;
- logging: `progress_fn` writes every metric brax reports to a clu metric writer (TensorBoard under `workdir`);
  checkpoints through brax's `save_checkpoint_path` (orbax, one per iteration, under `workdir/checkpoints`);
- optional ground-truth success (`lrm_jax.rl.evaluate`) every `eval_every` iterations via `policy_params_fn`.

An *iteration* is one brax eval interval: `ppo.train(num_evals=iterations + 1)` runs `iterations` training epochs,
each of `training_steps_per_iteration` brax training steps; a training step collects
`batch_size * num_minibatches / num_envs` unrolls of `unroll_length` steps in every env, then makes
`num_updates_per_batch` passes (epochs) of `num_minibatches` minibatch updates over them. With the default one
training step per iteration, an iteration is one rollout batch plus its update epochs, as in the paper
(30 iterations, 2 update epochs). After each iteration every env is reset to a fresh start state
(`reset_each_iteration`), so an iteration must cover at least one episode per env (checked).

Added to brax (its `train` takes one learning rate for one Adam over policy and value): separate actor and critic
learning rates, and a critic warm-up during which the policy is not updated. Why: PPO starts from a cloned policy
but an *untrained* value function, so its first advantages are noise; with one learning rate the policy is then
pushed around by that noise and unlearns what BC gave it (measured on press_buttons_in_order with the oracle
reward, 32 demos: deterministic success 14.5% -> 1.6% after 30 iterations at lr 3e-5, -> 9.0% at 1e-5). The paper
uses the same remedy, a critic learning rate 20x the actor's (5e-5 vs 2.5e-6). It is done by handing brax an Adam
that is really `optax.multi_transform` over `PPONetworkParams(policy, value)` (`_split_adam`), for the duration of
the `ppo.train` call; nothing else of brax changes.

Left out of brax's run: its `Evaluator`, when `ppo.run_brax_evals` is off (`_UnusedEvaluator`): brax builds it
anyway and its constructor compiles a reset of `num_eval_envs` envs that is never used (~36 s per run on CPU).

Not added: a penalty keeping the policy near the BC policy (brax's loss has none and takes no extra terms); the
small actor learning rate, PPO's clipping, the frozen normaliser and the cloned std (`bc.init_std`) play that role.
"""
import contextlib
import dataclasses
import functools
import logging
import os
import time
from typing import Any, Callable, Optional

from brax.training import acting as brax_acting
from brax.training.agents.ppo import train as brax_ppo
from clu import metric_writers
import jax
import ml_collections
import numpy as np
import optax

from lrm_jax.rewards import interval
from lrm_jax.rl import bc as bc_lib
from lrm_jax.rl import brax_compat
from lrm_jax.rl import evaluate as evaluate_lib

brax_compat.install()


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      iterations=30,
      training_steps_per_iteration=1,
      num_envs=64,
      episode_length=0,              # 0: the env's own episode_length
      unroll_length=10,
      batch_size=64,                 # unrolls per minibatch
      num_minibatches=8,
      num_updates_per_batch=2,       # update epochs per training step (paper: 2)
      learning_rate=3e-5,            # the actor's (policy) learning rate
      critic_learning_rate=3e-4,     # the value function's; 0: the actor's (plain brax)
      critic_warmup_iterations=3,    # iterations in which only the value function learns
      entropy_cost=0.0,
      discounting=0.99,              # paper: gamma 0.99, lambda 0.95
      gae_lambda=0.95,
      clipping_epsilon=0.2,
      reward_scaling=1.0,
      max_grad_norm=1.0,
      normalize_advantage=True,
      seed=0,
      log_training_metrics=True,     # brax's per-episode training metrics (episode/sum_reward, episode/lrm/*, ...)
      run_brax_evals=False,          # brax's own eval each iteration (runs the reward model on eval envs too)
      num_eval_envs=128,
      checkpoint=True,
      eval_every=0,                  # ground-truth evaluate() every N iterations before the last (0: never)
      reset_each_iteration=True,     # fresh start states every iteration (see `make_train`)
  ))


def check_config(c: ml_collections.ConfigDict) -> None:
  """One-line errors for PPO configs brax would reject with an assert (or silently round)."""
  for k in ("iterations", "training_steps_per_iteration", "num_envs", "unroll_length", "batch_size",
            "num_minibatches", "num_updates_per_batch"):
    if int(c[k]) < 1:
      raise ValueError(f"ppo.{k} must be >= 1, got {c[k]}")
  if (c.batch_size * c.num_minibatches) % c.num_envs:
    raise ValueError(f"ppo.batch_size * ppo.num_minibatches ({c.batch_size} * {c.num_minibatches}) must be a "
                     f"multiple of ppo.num_envs ({c.num_envs})")


def check_episode_fits(c: ml_collections.ConfigDict, episode_length: int) -> None:
  """With a reset every iteration, an iteration must hold at least one whole episode per env."""
  per_env = env_steps_per_iteration(c) // int(c.num_envs)
  if c.reset_each_iteration and per_env < episode_length:
    raise ValueError(f"an iteration runs {per_env} steps per env (training_steps_per_iteration * batch_size * "
                     f"num_minibatches / num_envs * unroll_length) < episode_length {episode_length}: every "
                     f"episode would be cut short by the per-iteration reset")


def updates_per_iteration(c: ml_collections.ConfigDict) -> int:
  """Optimizer steps per iteration: brax makes num_minibatches updates per pass, num_updates_per_batch passes."""
  return int(c.training_steps_per_iteration * c.num_updates_per_batch * c.num_minibatches)


@contextlib.contextmanager
def _split_adam(c: ml_collections.ConfigDict):
  """While active, brax's `optax.adam(learning_rate)` is Adam at the actor's rate on the policy (zero for the warm-up
  iterations) and Adam at the critic's rate on the value function (module docstring)."""
  from brax.training.agents.ppo import losses as brax_losses
  warmup = int(c.critic_warmup_iterations) * updates_per_iteration(c)
  actor = optax.join_schedules([optax.constant_schedule(0.0), optax.constant_schedule(float(c.learning_rate))],
                               [warmup]) if warmup else float(c.learning_rate)
  critic = float(c.critic_learning_rate) or float(c.learning_rate)

  def labels(params):
    return brax_losses.PPONetworkParams(policy=jax.tree.map(lambda _: "policy", params.policy),
                                        value=jax.tree.map(lambda _: "value", params.value))

  class _Optax:  # brax's module-level `optax`, with `adam` replaced
    def __getattr__(self, name):
      return getattr(optax, name)

    @staticmethod
    def adam(learning_rate, **kw):
      del learning_rate  # brax's single rate (= the actor's), replaced by the two above
      return optax.multi_transform({"policy": optax.adam(actor, **kw), "value": optax.adam(critic, **kw)}, labels)

  with _replaced(brax_ppo, "optax", _Optax()):
    yield


@contextlib.contextmanager
def _replaced(module, name: str, value):
  original = getattr(module, name)
  setattr(module, name, value)
  try:
    yield
  finally:
    setattr(module, name, original)


class _UnusedEvaluator:
  """Stands in for brax's `acting.Evaluator` when `run_brax_evals` is off.

  Why: brax builds its Evaluator even with `run_evals=False`, and the constructor compiles the eval env's reset
  (one MJX reset over `num_eval_envs` envs, plus our reward wrapper's: ~36 s per PPO run on CPU, measured) for an
  evaluation that never runs. brax only calls `run_evaluation` when `run_evals` is set.
  """

  def __init__(self, *args, **kwargs):
    del args, kwargs

  def run_evaluation(self, *args, **kwargs):
    raise RuntimeError("brax evaluation is off (ppo.run_brax_evals=False)")


class _ActingWithoutEvaluator:  # brax's module-level `acting`, with `Evaluator` replaced
  def __getattr__(self, name):
    return _UnusedEvaluator if name == "Evaluator" else getattr(brax_acting, name)


def env_steps_per_iteration(c: ml_collections.ConfigDict) -> int:
  return int(c.training_steps_per_iteration * c.batch_size * c.num_minibatches * c.unroll_length)


@dataclasses.dataclass
class PpoResult:
  make_policy: Callable[..., Any]
  params: tuple                    # (normalizer, policy, value) after the last iteration
  initial_params: tuple            # what brax started from (the BC params, as brax restored them)
  metrics: dict                    # brax's last metrics
  history: list                    # one dict per iteration: step, wall_s, brax's training metrics (+ gt/*)
  compile_and_first_iteration_s: float


def _scalars(metrics: dict) -> dict[str, float]:
  out = {}
  for k, v in metrics.items():
    a = np.asarray(v)
    if a.size == 1 and np.issubdtype(a.dtype, np.number):
      out[k] = float(a)
  return out


def make_train(config: ml_collections.ConfigDict, *, score_fn: Optional[interval.ScoreFn] = None,
               workdir: Optional[str] = None) -> Callable[..., PpoResult]:
  """`train = make_train(config)`; `train(env, bc_result)` -> PpoResult.

  `config` has `ppo` (`default_config()`), `reward` (`interval.default_config()`) and `eval`
  (`evaluate.default_config()`, used when `ppo.eval_every` > 0).
  """
  c = config.ppo
  check_config(c)
  reward_config = config.reward.copy_and_resolve_references()
  reward_config.gamma = float(c.discounting)  # the shaping potential must be discounted like the return
  interval.check_config(reward_config, score_fn)

  def train(env, bc_result: bc_lib.BcResult) -> PpoResult:
    episode_length = int(c.episode_length) or int(env.episode_length)
    check_episode_fits(c, episode_length)
    per_iteration = env_steps_per_iteration(c)
    writer = (metric_writers.create_default_writer(workdir, asynchronous=False) if workdir
              else metric_writers.create_default_writer(just_logging=True, asynchronous=False))
    history, captured = [], {}
    clock = {"start": time.time(), "last": time.time(), "calls": 0}

    def progress_fn(step, metrics):
      scalars = _scalars(metrics)
      writer.write_scalars(int(step), scalars)
      if "training/walltime" not in scalars:
        # brax's episode-metrics logger reports episode/* (sum_reward, lrm/*, privileged/*) in calls of its own,
        # from inside the training step: keep the latest for the iteration's history row.
        captured["episode"] = {k: v for k, v in scalars.items() if k.startswith("episode/")}
      else:  # an iteration ended
        now = time.time()
        history.append(dict(step=int(step), wall_s=now - clock["last"], **captured.pop("episode", {}), **scalars,
                            **captured.pop("gt", {})))
        clock["last"] = now
        logging.info("ppo iteration %d: step %d, %.1f s", len(history), step, history[-1]["wall_s"])
      writer.flush()

    checkpoint_eval = config.eval.copy_and_resolve_references()
    checkpoint_eval.video_episodes = 0  # videos only of the final policy (the caller's evaluation)

    def policy_params_fn(step, make_policy, params):
      del make_policy  # brax's inference fn of BC's networks: BC's own is used, one compiled rollout for all
      i = clock["calls"]
      clock["calls"] += 1
      if i == 0:
        captured["initial"] = params
      # Checkpoints in between; the caller evaluates the final params itself (with videos), not twice.
      if c.eval_every and 0 < i < int(c.iterations) and i % int(c.eval_every) == 0:
        r = evaluate_lib.evaluate(env, bc_result.make_policy, params, checkpoint_eval)
        captured["gt"] = {"gt/success_rate": r["success_rate"], "gt/ci_low": r["ci_low"],
                          "gt/ci_high": r["ci_high"], "gt/final_oracle": r["final_oracle"]}
        writer.write_scalars(int(step), captured["gt"])

    no_evaluator = (contextlib.nullcontext() if c.run_brax_evals
                    else _replaced(brax_ppo, "acting", _ActingWithoutEvaluator()))
    with _split_adam(c), no_evaluator:
      make_policy, params, metrics = _train(c, env, bc_result, reward_config, score_fn, episode_length, per_iteration,
                                            progress_fn, policy_params_fn, workdir)
    writer.close()
    first = history[0]["wall_s"] if history else float("nan")
    return PpoResult(make_policy=make_policy, params=jax.device_get(params),
                     initial_params=captured.get("initial"), metrics=metrics, history=history,
                     compile_and_first_iteration_s=first)

  return train


def _train(c, env, bc_result, reward_config, score_fn, episode_length, per_iteration, progress_fn, policy_params_fn,
           workdir):
  """brax's `ppo.train` with this module's settings (see `make_train`)."""
  return brax_ppo.train(
      environment=env,
      num_timesteps=int(c.iterations) * per_iteration,
      wrap_env_fn=functools.partial(interval.wrap_for_training, config=reward_config, score_fn=score_fn),
      num_envs=int(c.num_envs),
      episode_length=episode_length,
      learning_rate=float(c.learning_rate),
      entropy_cost=float(c.entropy_cost),
      discounting=float(c.discounting),
      gae_lambda=float(c.gae_lambda),
      unroll_length=int(c.unroll_length),
      batch_size=int(c.batch_size),
      num_minibatches=int(c.num_minibatches),
      num_updates_per_batch=int(c.num_updates_per_batch),
      clipping_epsilon=float(c.clipping_epsilon),
      reward_scaling=float(c.reward_scaling),
      max_grad_norm=float(c.max_grad_norm) if c.max_grad_norm else None,
      normalize_advantage=bool(c.normalize_advantage),
      network_factory=bc_result.network_factory,
      restore_params=bc_result.params,
      restore_value_fn=True,
      num_evals=int(c.iterations) + 1,
      # brax's AutoResetWrapper restarts every env from the *same* first state forever; without a real reset
      # PPO trains on num_envs fixed starts and overfits them (seen on the toy task: training reward up,
      # success from fresh starts down to ~0). One reset per iteration (after its epoch) gives new starts.
      num_resets_per_eval=1 if c.reset_each_iteration else 0,
      run_evals=bool(c.run_brax_evals),
      num_eval_envs=int(c.num_eval_envs),
      deterministic_eval=True,
      log_training_metrics=bool(c.log_training_metrics),
      progress_fn=progress_fn,
      policy_params_fn=policy_params_fn,
      # brax saves from process 0 alone while orbax's save waits for every process: with several processes it
      # deadlocks ("sync_global_devices name mismatch"), so multi-host runs keep no brax checkpoints.
      save_checkpoint_path=(os.path.join(workdir, "checkpoints")
                            if (workdir and c.checkpoint and jax.process_count() == 1) else None),
      seed=int(c.seed),
      **bc_result.ppo_normalizer_kwargs(),
  )
