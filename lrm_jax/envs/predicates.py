"""Geometric predicates on the privileged simulator state, shared by task stages, oracle rewards and experts."""
import jax.numpy as jnp

from lrm_jax.envs import scene as S


def ee_pos(sim, env):
  return sim.data.qpos[env.ids["ee_qpos"]]


def closure(sim, env):
  """Mean finger closure in metres: 0 open, FINGER_OPEN - FINGER_HALF[0] fully closed on nothing."""
  return sim.data.qpos[env.ids["finger_qpos"]].mean()


def cube_pos(sim, env, i):
  return sim.data.xpos[env.ids["cube_body"][i]]


def body_pos(sim, body_id):
  return sim.data.xpos[body_id]


def grasped(sim, env, i):
  """Cube i is held between the finger pads: centred between them, pads closed on it (not on air)."""
  rel = cube_pos(sim, env, i) - ee_pos(sim, env)
  c = closure(sim, env)
  open_gap = S.FINGER_OPEN - S.FINGER_HALF[0] - S.CUBE_HALF  # closure at which pads touch the cube's faces
  return ((jnp.abs(rel[0]) < 0.012) & (jnp.abs(rel[1]) < 0.018) & (jnp.abs(rel[2]) < 0.025)
          & (c > open_gap - 0.006) & (c < open_gap + 0.008))


def lifted(sim, env, i, height=0.06):
  return grasped(sim, env, i) & (cube_pos(sim, env, i)[2] > height)


def resting_on(sim, env, i, surface_xy, surface_top, half_extent):
  """Cube i rests on a horizontal surface (top at `surface_top`) within `half_extent` of its centre, released."""
  p = cube_pos(sim, env, i)
  inside = jnp.all(jnp.abs(p[:2] - surface_xy) < half_extent)
  height_ok = jnp.abs(p[2] - (surface_top + S.CUBE_HALF)) < 0.012
  return inside & height_ok & ~grasped(sim, env, i)


def on_cube(sim, env, top, bottom):
  """Cube `top` sits on cube `bottom` (aligned within 1.8 cm), released."""
  pb = cube_pos(sim, env, bottom)
  return resting_on(sim, env, top, pb[:2], pb[2] + S.CUBE_HALF, 0.018)


def above(sim, env, i, xy, min_z, radius=0.03):
  p = cube_pos(sim, env, i)
  return (jnp.linalg.norm(p[:2] - xy) < radius) & (p[2] > min_z)


def on_plate(sim, env, i):
  plate = body_pos(sim, env.ids["plate_body"])
  half = S.PLATE_HALF[0] - 0.008
  return resting_on(sim, env, i, plate[:2], plate[2] + S.PLATE_HALF[2], half)


def drawer_opening(sim, env):
  return sim.data.qpos[env.ids["drawer_qpos"]]


def drawer_inner_center(sim, env):
  """World position of the middle of the drawer's floor."""
  cab = body_pos(sim, env.ids["cabinet_body"])
  ix, iy, iz = S.DRAWER_INNER
  return cab + jnp.array([0.0, -drawer_opening(sim, env), 0.006 + 0.006])


def in_drawer(sim, env, i):
  p = cube_pos(sim, env, i)
  c = drawer_inner_center(sim, env)
  ix, iy, _ = S.DRAWER_INNER
  inside = (jnp.abs(p[0] - c[0]) < ix) & (jnp.abs(p[1] - c[1]) < iy)
  return inside & (p[2] < c[2] + 2 * S.CUBE_HALF + 0.01) & ~grasped(sim, env, i)


def fingertip_pressing(sim, env, xy, top_z):
  """The pads' bottom is on a flat target at `xy` (within the button radius) and at most 8 mm above its top."""
  ee = ee_pos(sim, env)
  tip_z = ee[2] - S.FINGER_HALF[2]
  return (jnp.linalg.norm(ee[:2] - xy) < S.BUTTON_RADIUS) & (tip_z < top_z + 0.008)
