"""LRM-Bench env throughput: control steps/s of the jitted MJX env (with and without 64x64 pure-JAX pixels), side by
side with MuJoCo's C simulator (`mujoco.rollout`, all cores) on the same MJCF, and MJX's Warp renderer where
installed. One control step = `n_substeps` physics steps; the C column runs the same number of physics steps.

  python -m bench.env_throughput                    # batches 1,16,64,256, family "table"
  python -m bench.env_throughput --batches=1,16 --steps=10 --family=drawer
"""
import argparse
import os
import time

import jax
import jax.numpy as jnp
import mujoco
from mujoco import rollout as mj_rollout
import numpy as np

from lrm_jax.envs import base
from lrm_jax.render import warp_backend
from lrm_jax.utils import compile_cache
from lrm_jax.utils import timing


def _time(fn, *args):
  return timing.best_time(fn, *args, repeats=2)


def jax_steps_per_s(env, batch, steps, image_size):
  rngs = jax.random.split(jax.random.PRNGKey(0), batch)
  states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(rngs, 0)
  actions = jax.random.uniform(jax.random.PRNGKey(1), (steps, batch, 4), minval=-1, maxval=1)

  def run(states, actions):
    def body(s, a):
      s = jax.vmap(env.step)(s, a)
      if image_size:
        img = jax.vmap(lambda sim: env.render(sim, "front", image_size)["rgb"])(s.pipeline_state)
        return s, img.mean()
      return s, s.reward.mean()
    return jax.lax.scan(body, states, actions)

  return batch * steps / _time(jax.jit(run), states, actions), states


def c_steps_per_s(env, states, batch, steps):
  """The same physics in MuJoCo C: `batch` rollouts of steps * n_substeps physics steps, constant controls."""
  m = env.mj_model
  d = mujoco.MjData(m)
  d.qpos[:] = np.asarray(states.pipeline_state.data.qpos[0])
  d.mocap_pos[:] = np.asarray(states.pipeline_state.data.mocap_pos[0])
  d.ctrl[:] = np.asarray(states.pipeline_state.data.ctrl[0])
  mujoco.mj_forward(m, d)
  spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
  state0 = np.zeros(mujoco.mj_stateSize(m, spec))
  mujoco.mj_getState(m, d, state0, spec)
  init = np.tile(state0, (batch, 1))
  nstep = steps * env.config.n_substeps
  ctrl = np.tile(d.ctrl, (batch, nstep, 1))
  nthread = os.cpu_count()
  datas = [mujoco.MjData(m) for _ in range(nthread)]
  with mj_rollout.Rollout(nthread=nthread) as r:
    r.rollout([m] * batch, datas, init, ctrl, nstep=nstep)  # warm-up
    t = time.perf_counter()
    r.rollout([m] * batch, datas, init, ctrl, nstep=nstep)
    dt = time.perf_counter() - t
  return batch * steps / dt


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--batches", default="1,16,64,256")
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--family", default="table")
  p.add_argument("--image_size", type=int, default=64)
  a = p.parse_args()
  compile_cache.enable()
  env = base.FamilyEnv(a.family)
  print(f"# env throughput, family={a.family} ({env.mj_model.ngeom} geoms, {env.config.n_substeps} physics "
        f"steps per control step), device={jax.devices()[0].device_kind}, cpus={os.cpu_count()}")
  print(f"| batch | MJX state-only | MJX + {a.image_size}x{a.image_size} pixels | MuJoCo C (rollout) | "
        f"MJX/C | Warp pixels |")
  print("|---|---|---|---|---|---|")
  warp = "n/a (mujoco_warp not installed)" if not warp_backend.warp_available() else "see warp bench"
  for batch in [int(b) for b in a.batches.split(",")]:
    sps, states = jax_steps_per_s(env, batch, a.steps, 0)
    pps, _ = jax_steps_per_s(env, batch, a.steps, a.image_size)
    cps = c_steps_per_s(env, states, batch, a.steps)
    print(f"| {batch} | {sps:,.0f} | {pps:,.0f} | {cps:,.0f} | {sps / cps:.2f} | {warp} |", flush=True)
  print("(control steps per second; higher is better)")


if __name__ == "__main__":
  main()
