"""Frames/s of the pure-JAX renderer on a ~25-geom tabletop scene, vmapped over a batch of environments.

  python -m bench.render_throughput            # 64x64 at batch 1/16/64, 224x224 at batch 1/16, shadows off/on
  python -m bench.render_throughput --quick    # a few seconds: checks the script runs

Each configuration is compiled once (not timed), then timed over --iters calls with block_until_ready. Record the
numbers with the machine in bench/RESULTS.md.
"""
import argparse
import time

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from lrm_jax.render import renderer
from lrm_jax.render import scene as scene_lib


def tabletop_xml() -> str:
  """25 drawn primitives: floor, table, gripper, cubes, plates, drawer, buttons, a ball."""
  geoms = [
      '<geom name="floor" type="plane" size="0 0 0.1" rgba="0.5 0.5 0.5 1"/>',
      '<geom name="table" type="box" size="0.6 0.4 0.02" pos="0 0 0.74" rgba="0.6 0.45 0.3 1"/>',
  ]
  geoms += [f'<geom name="leg{i}" type="cylinder" size="0.03 0.36" pos="{x} {y} 0.36" rgba="0.4 0.3 0.2 1"/>'
            for i, (x, y) in enumerate([(0.55, 0.35), (-0.55, 0.35), (0.55, -0.35), (-0.55, -0.35)])]
  geoms += [
      '<geom name="palm" type="box" size="0.05 0.02 0.015" pos="0 0 1.05" rgba="0.2 0.2 0.2 1"/>',
      '<geom name="finger_l" type="box" size="0.008 0.015 0.04" pos="0.035 0 1.0" rgba="0.3 0.3 0.3 1"/>',
      '<geom name="finger_r" type="box" size="0.008 0.015 0.04" pos="-0.035 0 1.0" rgba="0.3 0.3 0.3 1"/>',
      '<geom name="wrist" type="capsule" size="0.02 0.05" pos="0 0 1.12" rgba="0.25 0.25 0.25 1"/>',
  ]
  geoms += [f'<geom name="cube{i}" type="box" size="0.025 0.025 0.025" pos="{x} {y} 0.785" euler="0 0 {a}" '
            f'rgba="{c}"/>' for i, (x, y, a, c) in enumerate(
                [(0.1, 0.05, 10, "1 0 0 1"), (-0.1, 0.1, 40, "0 1 0 1"), (0.0, -0.15, 70, "0 0 1 1")])]
  geoms += [f'<geom name="plate{i}" type="cylinder" size="0.07 0.005" pos="{x} {y} 0.765" rgba="0.9 0.9 0.85 1"/>'
            for i, (x, y) in enumerate([(0.3, -0.1), (-0.3, -0.15)])]
  geoms += [
      '<geom name="drawer_bottom" type="box" size="0.12 0.1 0.005" pos="-0.35 0.25 0.77" rgba="0.5 0.35 0.2 1"/>',
      '<geom name="drawer_back" type="box" size="0.12 0.005 0.05" pos="-0.35 0.35 0.82" rgba="0.5 0.35 0.2 1"/>',
      '<geom name="drawer_front" type="box" size="0.12 0.005 0.05" pos="-0.35 0.15 0.82" rgba="0.5 0.35 0.2 1"/>',
      '<geom name="drawer_left" type="box" size="0.005 0.1 0.05" pos="-0.47 0.25 0.82" rgba="0.5 0.35 0.2 1"/>',
      '<geom name="drawer_right" type="box" size="0.005 0.1 0.05" pos="-0.23 0.25 0.82" rgba="0.5 0.35 0.2 1"/>',
      '<geom name="handle" type="capsule" size="0.008 0.04" pos="-0.35 0.135 0.82" euler="0 90 0" '
      'rgba="0.8 0.8 0.8 1"/>',
  ]
  geoms += [f'<geom name="button{i}" type="cylinder" size="0.03 0.008" pos="{x} 0.3 0.768" rgba="{c}"/>'
            for i, (x, c) in enumerate([(0.15, "1 0.2 0.2 1"), (0.25, "0.2 1 0.2 1"), (0.35, "0.2 0.2 1 1")])]
  geoms += ['<geom name="ball" type="sphere" size="0.03" pos="0.2 0.15 0.79" rgba="1 1 0 1"/>']
  camera = '<camera name="front" pos="0 -0.9 1.3" xyaxes="1 0 0 0 0.6 0.8" fovy="55"/>'
  return f"<mujoco><worldbody>{''.join(geoms)}{camera}</worldbody></mujoco>"


def _batched_poses(m, d, batch, rng):
  """A batch of poses: every non-floor geom jittered by a few centimetres, as different environments would be."""
  xpos = np.repeat(d.geom_xpos[None], batch, 0)
  xpos[:, 1:] += rng.uniform(-0.02, 0.02, xpos[:, 1:].shape)
  rep = lambda x: jnp.asarray(np.repeat(np.asarray(x)[None], batch, 0), jnp.float32)
  return jnp.asarray(xpos, jnp.float32), rep(d.geom_xmat), rep(d.cam_xpos), rep(d.cam_xmat)


def bench(scene, m, d, size, batch, shadows, iters):
  poses = _batched_poses(m, d, batch, np.random.default_rng(0))
  apps = jax.vmap(lambda k: renderer.random_appearance(k, scene, 0.5))(jax.random.split(jax.random.key(0), batch))
  fn = jax.jit(jax.vmap(lambda a, b, c, e, app: renderer.render(
      scene, a, b, c, e, camera=0, height=size, width=size, appearance=app, shadows=shadows)))
  t0 = time.perf_counter()
  jax.block_until_ready(fn(*poses, apps))
  compile_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  for _ in range(iters):
    out = fn(*poses, apps)
  jax.block_until_ready(out)
  dt = (time.perf_counter() - t0) / iters
  print(f"{size:4d}x{size:<4d} batch {batch:3d} shadows {int(shadows)}: {batch / dt:9.1f} frames/s "
        f"({1e3 * dt:8.2f} ms/call, first call incl. compile {compile_s:5.1f} s)", flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="32x32, batch 1 and 4, one timed call")
  parser.add_argument("--iters", type=int, default=10)
  args = parser.parse_args()
  m = mujoco.MjModel.from_xml_string(tabletop_xml())
  d = mujoco.MjData(m)
  mujoco.mj_forward(m, d)
  scene = scene_lib.make_scene(m)
  print(f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}), {scene.ngeom} drawn geoms", flush=True)
  if args.quick:
    configs, iters = [(32, 1), (32, 4)], 1
  else:
    configs, iters = [(64, 1), (64, 16), (64, 64), (224, 1), (224, 16)], args.iters
  for size, batch in configs:
    for shadows in (False, True):
      bench(scene, m, d, size, batch, shadows, iters)


if __name__ == "__main__":
  main()
