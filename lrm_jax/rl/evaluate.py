"""Ground-truth success rate of a policy: many full episodes, success from the env's privileged `sparse` term.

`evaluate(env, make_policy, params, config)` runs `config.num_episodes` episodes of `env.episode_length` steps from
fresh resets (no auto-reset, no reward wrapper: the policy's reward never enters), in jitted chunks, and reports the
success rate with a 95% Wilson score interval (well-behaved at 0% and 100%, unlike the normal approximation).
An episode succeeds if `sparse` is 1 at its last step (`success="end"`, as datagen labels episodes) or at any step
(`success="any"`); an episode whose physics went unstable (`done`) fails from then on.
"""
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lrm_jax import sharding
from lrm_jax.datagen import rollout as rollout_lib


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      num_episodes=256,
      deterministic=True,    # True: the policy's mode (tanh of the mean); False: sampled actions, as in training
      success="end",         # "end": sparse at the last step; "any": sparse at any step
      video_episodes=0,      # render this many of the episodes (the first ones) for videos
      video_camera="front",
      video_size=64,
      chunk=0,               # episodes per jitted call; 0: all, or rollout.MAX_CPU_BATCH on CPU (XLA CPU hang)
      seed=0,
  ))


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
  """Wilson score interval for a binomial proportion (95% by default)."""
  if n <= 0:
    raise ValueError(f"Wilson interval needs n >= 1, got {n}")
  p = successes / n
  denom = 1.0 + z * z / n
  centre = (p + z * z / (2 * n)) / denom
  half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
  return max(0.0, centre - half), min(1.0, centre + half)


def _check_config(config):
  if config.success not in ("end", "any"):
    raise ValueError(f"eval.success must be 'end' or 'any', got {config.success!r}")
  if int(config.num_episodes) < 1:
    raise ValueError(f"eval.num_episodes must be >= 1, got {config.num_episodes}")


_ROLLOUTS = {}  # (id(env), id(make_policy), options) -> (env, make_policy, jitted rollout): one trace per process


def make_rollout(env, make_policy, *, deterministic: bool = True, success: str = "end", render: bool = False,
                 camera: str = "front", size: int = 64):
  """jit(batched episodes): (params, rngs [B, 2]) -> dict(success [B], final_oracle [B], frames [B, T+1, H, W, 3]?).

  The policy's params are an argument, not a constant of the program, and the jitted function is kept per (env,
  make_policy, options): evaluating the BC policy and every PPO checkpoint with the same `make_policy` traces and
  compiles one program (tracing an MJX episode alone takes seconds on CPU).
  """
  key = (id(env), id(make_policy), deterministic, success, render, camera, size)
  if key not in _ROLLOUTS:  # env and make_policy are stored too, so their ids stay theirs
    _ROLLOUTS[key] = (env, make_policy, _make_rollout(env, make_policy, deterministic=deterministic,
                                                      success=success, render=render, camera=camera, size=size))
  return _ROLLOUTS[key][2]


def _make_rollout(env, make_policy, *, deterministic, success, render, camera, size):
  length = int(env.episode_length)
  draw = lambda sim: env.render(sim, camera, size)["rgb"]

  def run(params, rngs):
    policy = make_policy(params, deterministic=deterministic)
    k_act = jax.random.fold_in(rngs[0], 1)
    state = jax.vmap(env.reset)(rngs)

    def step(carry, k):
      s, alive, ever = carry
      action, _ = policy(s.obs, k)
      s = jax.vmap(env.step)(s, action)
      alive = alive & (s.done == 0)
      sparse = jax.vmap(env.reward_terms)(s.pipeline_state)["sparse"] > 0
      out = jax.vmap(draw)(s.pipeline_state) if render else None
      return (s, alive, ever | (sparse & alive)), out

    b = rngs.shape[0]
    init = (state, jnp.ones((b,), bool), jnp.zeros((b,), bool))
    (last, alive, ever), frames = jax.lax.scan(step, init, jax.random.split(k_act, length))
    terms = jax.vmap(env.reward_terms)(last.pipeline_state)
    ok = ever if success == "any" else (terms["sparse"] > 0) & alive
    out = dict(success=ok, final_oracle=terms["oracle"])
    if render:
      first = jax.vmap(draw)(state.pipeline_state)
      out["frames"] = jnp.concatenate([first[None], frames]).swapaxes(0, 1)
    return out

  return jax.jit(run)


def evaluate(env, make_policy, params, config: ml_collections.ConfigDict | None = None) -> dict:
  """Success rate, its 95% Wilson interval, per-episode results and optional video frames (module docstring)."""
  config = config or default_config()
  _check_config(config)
  n = int(config.num_episodes)
  chunk = int(config.chunk) or (min(n, rollout_lib.MAX_CPU_BATCH) if jax.default_backend() == "cpu" else n)
  mesh = sharding.local_mesh()
  chunk = sharding.round_to_devices(chunk, mesh)  # each chunk's episodes are split over the local devices
  rngs = jax.random.split(jax.random.PRNGKey(int(config.seed)), n)
  run = make_rollout(env, make_policy, deterministic=bool(config.deterministic), success=config.success)
  # One canonical form for every caller's params: BC's arrays, brax's unpmapped ones (committed, with a sharding over
  # brax's internal pmap mesh) and host copies would each miss jit's cache and recompile the whole episode (~80 s a
  # time on CPU, measured: one checkpoint evaluation 130 s against 45 s for BC's). The explicit dtype drops weak
  # typing too (BC's normaliser holds a Python-float std_eps; brax's holds a strong float32 one).
  params = jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.asarray(x).dtype), jax.device_get(params))
  # Each chunk's policy noise comes from its first episode's key, so a chunk is reproducible on its own; the last
  # chunk is padded by repeating episodes (one compiled shape) and the padding is dropped.
  success, oracle = [], []
  for start in range(0, n, chunk):
    idx = np.minimum(np.arange(start, start + chunk), n - 1)
    out = jax.tree.map(np.asarray, run(params, sharding.shard_episodes(rngs[idx], mesh)))
    keep = min(chunk, n - start)
    success.append(out["success"][:keep])
    oracle.append(out["final_oracle"][:keep])
  success, oracle = np.concatenate(success), np.concatenate(oracle)
  k = int(success.sum())
  lo, hi = wilson_interval(k, n)
  result = dict(success_rate=k / n, ci_low=lo, ci_high=hi, successes=k, num_episodes=n, per_episode=success,
                final_oracle=float(oracle.mean()), deterministic=bool(config.deterministic))
  v = int(config.video_episodes)
  if v:
    # The first v episodes again, rendered: identical trajectories for a deterministic policy (sampled actions
    # depend on the batch shape, so a stochastic policy's video shows other samples from the same starts).
    video = make_rollout(env, make_policy, deterministic=bool(config.deterministic), success=config.success,
                         render=True, camera=config.video_camera, size=int(config.video_size))
    result["frames"] = np.asarray(video(params, rngs[:v])["frames"])
  return result
