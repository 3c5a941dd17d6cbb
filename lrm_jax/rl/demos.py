"""Scripted clean-expert demonstrations of one LRM-Bench task: (observation, action) pairs for behaviour cloning.

The expert interpreter runs exactly as in `lrm_jax.datagen.rollout` (reset, `ExpertPrograms.init` in mode `clean`,
`act` + `env.step` under `lax.scan`, episodes under `vmap`, one `jit`), but records the env's policy observation
(`state.obs`, i.e. the state vector, plus pixels only if the env renders them) instead of rendering frames.
"""
import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrm_jax import sharding
from lrm_jax.datagen import rollout as rollout_lib
from lrm_jax.envs import base
from lrm_jax.envs import experts


@dataclasses.dataclass
class Demos:
  """Host-side demonstrations: step t holds observation t and the action taken there."""
  obs: Any             # pytree like `state.obs`, leaves [N, T, ...]
  action: np.ndarray   # [N, T, A]
  mask: np.ndarray     # [N, T] bool: steps to learn from
  success: np.ndarray  # [N] bool

  @property
  def num_steps(self) -> int:
    return int(self.mask.sum())


def collect(env: base.LrmBenchEnv, num_demos: int, seed: int = 0, *, tail_steps: int = 10,
            only_successful: bool = True, max_attempts_factor: int = 3, action_noise: float = 0.0) -> Demos:
  """`num_demos` clean-expert episodes of `env`'s task (successful ones only by default).

  Each episode's steps are kept up to `tail_steps` after the expert's program finished, so the policy also learns
  to hold still once done without the demos being dominated by idle steps.
  `action_noise` > 0 executes the expert's action plus Gaussian noise of that std but records the clean action
  (DART, Laskey et al. 2017): the demos then also show how the expert recovers from the small deviations a cloned
  policy makes, which is what compounding errors in behaviour cloning need.
  """
  if num_demos < 1:
    raise ValueError(f"num_demos must be >= 1, got {num_demos}")
  programs = experts.ExpertPrograms(env.family_env)
  length = env.episode_length

  def episode(rng):
    k_reset, k_expert, k_steps = jax.random.split(rng, 3)
    state = env.reset(k_reset)
    es = programs.init(k_expert, state.pipeline_state, experts.MODE["clean"])

    def step(carry, k):
      s, es = carry
      k_act, k_noise = jax.random.split(k)
      action, es_next = programs.act(s.pipeline_state, es, k_act)
      executed = jnp.clip(action + action_noise * jax.random.normal(k_noise, action.shape), -1.0, 1.0)
      return (env.step(s, executed), es_next), (s.obs, action, programs.finished(es))

    (last, _), (obs, action, finished) = jax.lax.scan(step, (state, es), jax.random.split(k_steps, length))
    success = env.reward_terms(last.pipeline_state)["sparse"] > 0
    return obs, action, finished, success

  run = jax.jit(jax.vmap(episode))
  # Same CPU guard as datagen: batches of at most MAX_CPU_BATCH episodes (XLA CPU hang, see WORKSPACE.md).
  chunk = min(num_demos, rollout_lib.MAX_CPU_BATCH) if jax.default_backend() == "cpu" else num_demos
  keys = jax.random.split(jax.random.PRNGKey(seed), num_demos * max_attempts_factor)
  parts, kept = [], 0
  for start in range(0, len(keys), chunk):
    out = jax.tree.map(np.asarray, run(sharding.shard_episodes(keys[start:start + chunk])))
    keep = out[3] if only_successful else np.ones_like(out[3])
    parts.append(jax.tree.map(lambda x: x[keep], out))
    kept += int(keep.sum())
    if kept >= num_demos:
      break
  if kept < num_demos:
    raise RuntimeError(f"only {kept} of {len(keys)} clean expert episodes of {env.task.name} succeeded; "
                       f"wanted {num_demos}")
  obs, action, finished, success = jax.tree.map(lambda *xs: np.concatenate(xs)[:num_demos], *parts)
  t = np.arange(length)
  done_at = np.where(finished.any(1), finished.argmax(1), length)
  mask = t[None, :] <= done_at[:, None] + tail_steps
  return Demos(obs=obs, action=action.astype(np.float32), mask=mask, success=success)
