"""The LRM-Bench tasks: named stages, stage predicates, oracle distances and expert programs.

Roles: `order[k]` is the cube playing role k of the instruction ({ck}); `border[k]` the button playing role k.
`stage(sim, env)` counts completed stages from the current state (it can go down when a stage is undone);
`distance(sim, env, stage)` is the shaped distance to the next stage's goal, used by the oracle reward.
"""
import dataclasses
from typing import Callable

import jax.numpy as jnp

from lrm_jax.envs import predicates as P
from lrm_jax.envs import program as prog
from lrm_jax.envs import scene as S


@dataclasses.dataclass(frozen=True)
class Task:
  name: str
  family: str
  stage_names: tuple[str, ...]
  episode_length: int
  stage: Callable
  distance: Callable
  expert: tuple
  undo: tuple = ()
  cube_roles: int = 0
  button_roles: int = 0
  drawer_start: tuple[float, float] = (0.0, 0.0)  # initial drawer opening range
  mat_near_first_cube: bool = False  # lay the mat out one row away from the role-0 cube (a clear, short push)

  @property
  def num_stages(self) -> int:
    return len(self.stage_names)


def _cube(sim, env, k):
  return P.cube_pos(sim, env, sim.task["order"][k])


def _select(stage, values):
  """values[stage] with a zero appended for the finished state."""
  return jnp.stack(list(values) + [jnp.zeros(())])[jnp.clip(stage, 0, len(values))]


def _count(*conds):
  """Stage = index of the most advanced condition that holds now (conditions listed from first to last)."""
  stage = jnp.zeros((), jnp.int32)
  for k, c in enumerate(conds):
    stage = jnp.where(c, k + 1, stage)
  return stage


def _dist(a, b):
  return jnp.linalg.norm(a - b)


def _top_of(pos):
  return pos + jnp.array([0.0, 0.0, 2 * S.CUBE_HALF])


# ---- table family ----------------------------------------------------------------------------------------------
def _pressed(sim, k=0):
  """Is the task's k-th button (in role order) pressed."""
  return sim.task["pressed"][sim.task["border"][k]]


def _button_dist(sim, env, k=0):
  """End effector to the top of the task's k-th button."""
  b = sim.task["border"][k]
  top = P.body_pos(sim, env.ids["button_body"][b]) + jnp.array([0, 0, S.BUTTON_TOP])
  return _dist(P.ee_pos(sim, env), top)


def _push_conds(sim, env):
  """(end effector at the cube, cube on the mat)."""
  c = _cube(sim, env, 0)
  mat = P.body_pos(sim, env.ids["mat_body"])
  near = _dist(P.ee_pos(sim, env)[:2], c[:2]) < 0.06
  on_mat = jnp.all(jnp.abs(c[:2] - mat[:2]) < S.MAT_HALF - 0.005) & (c[2] < 0.03)  # centre on the mat
  return near, on_mat


def _push_stage(sim, env):
  return _count(*_push_conds(sim, env))


def _push_dist(sim, env, stage):
  c = _cube(sim, env, 0)
  mat = P.body_pos(sim, env.ids["mat_body"])
  return _select(stage, [_dist(P.ee_pos(sim, env), c), _dist(c[:2], mat[:2])])


def _pick_stage(sim, env):
  i = sim.task["order"][0]
  return _count(P.grasped(sim, env, i), P.lifted(sim, env, i))


def _pick_dist(sim, env, stage):
  c = _cube(sim, env, 0)
  return _select(stage, [_dist(P.ee_pos(sim, env), c), jnp.maximum(0.08 - c[2], 0.0)])


def _plate_pos(sim, env):
  return P.body_pos(sim, env.ids["plate_body"])


def _carry_stages(sim, env, i, goal_xy, min_z, placed):
  """grasped -> above the goal -> placed (the usual three stages of a pick-and-place)."""
  return P.grasped(sim, env, i), P.grasped(sim, env, i) & P.above(sim, env, i, goal_xy, min_z), placed


def _place_stage(sim, env):
  i = sim.task["order"][0]
  return _count(*_carry_stages(sim, env, i, _plate_pos(sim, env)[:2], 0.04, P.on_plate(sim, env, i)))


def _place_dist(sim, env, stage, goal=None):
  c = _cube(sim, env, 0)
  goal = _plate_pos(sim, env) + jnp.array([0, 0, 0.03]) if goal is None else goal
  return _select(stage, [_dist(P.ee_pos(sim, env), c), _dist(c[:2], goal[:2]), _dist(c, goal)])


def _stack_two_stage(sim, env):
  a, b = sim.task["order"][0], sim.task["order"][1]
  pb = P.cube_pos(sim, env, b)
  return _count(*_carry_stages(sim, env, a, pb[:2], pb[2] + 0.035, P.on_cube(sim, env, a, b)))


def _stack_two_dist(sim, env, stage):
  return _place_dist(sim, env, stage, goal=_top_of(_cube(sim, env, 1)))


def _press_stage(sim, env):
  b = sim.task["border"][0]
  bpos = P.body_pos(sim, env.ids["button_body"][b])
  ee = P.ee_pos(sim, env)
  over = (_dist(ee[:2], bpos[:2]) < S.BUTTON_RADIUS) & (ee[2] < 0.1)
  return jnp.where(sim.task["pressed"][b], 2, jnp.where(over, 1, 0)).astype(jnp.int32)


def _press_dist(sim, env, stage):
  b = sim.task["border"][0]
  bpos = P.body_pos(sim, env.ids["button_body"][b])
  ee = P.ee_pos(sim, env)
  return _select(stage, [_dist(ee[:2], bpos[:2]) + jnp.maximum(ee[2] - 0.1, 0.0), ee[2] - S.BUTTON_TOP])


def _stack_three_stage(sim, env):
  a, b, c = sim.task["order"][0], sim.task["order"][1], sim.task["order"][2]
  b_on_a = P.on_cube(sim, env, b, a)
  return _count(P.grasped(sim, env, b), b_on_a, b_on_a & P.grasped(sim, env, c),
                b_on_a & P.on_cube(sim, env, c, b))


def _stack_three_dist(sim, env, stage):
  ee = P.ee_pos(sim, env)
  pa, pb, pc = (_cube(sim, env, k) for k in range(3))
  return _select(stage, [_dist(ee, pb), _dist(pb, _top_of(pa)), _dist(ee, pc), _dist(pc, _top_of(pb))])


def _in_order_stage(sim, env):
  """Number of buttons pressed so far in the instructed order; a wrong press stops the count for good."""
  border, pressed, rank = sim.task["border"], sim.task["pressed"], sim.task["press_rank"]
  ok = jnp.ones((), bool)
  stage = jnp.zeros((), jnp.int32)
  for k in range(3):
    ok = ok & pressed[border[k]] & (rank[border[k]] == k)
    stage = stage + ok.astype(jnp.int32)
  return stage


def _in_order_dist(sim, env, stage):
  return _select(stage, [_button_dist(sim, env, k) for k in range(3)])


def _two_on_plate_stage(sim, env):
  a, b = sim.task["order"][0], sim.task["order"][1]
  a_on = P.on_plate(sim, env, a)
  return _count(P.grasped(sim, env, a), a_on, a_on & P.grasped(sim, env, b), a_on & P.on_plate(sim, env, b))


def _two_on_plate_dist(sim, env, stage):
  ee = P.ee_pos(sim, env)
  pa, pb = _cube(sim, env, 0), _cube(sim, env, 1)
  plate = _plate_pos(sim, env)
  return _select(stage, [_dist(ee, pa), _dist(pa[:2], plate[:2] + jnp.array([-0.03, 0.0])), _dist(ee, pb),
                         _dist(pb[:2], plate[:2] + jnp.array([0.03, 0.0]))])


# Two-skill compositions of the training skills ("X, then Y"), training tasks only. They teach the reward model
# that an instruction can name several steps and that the first step alone is not "done", which single-skill
# tasks cannot (before them, stack_three was the only sequence in training). No drawer composition: every two-skill
# drawer sequence is either a piece of the held-out drawer_put_close or starts and ends in the same picture.
def _place_then_press_stage(sim, env):
  i = sim.task["order"][0]
  on = P.on_plate(sim, env, i)
  return _count(P.grasped(sim, env, i), on, on & _pressed(sim))


def _place_then_press_dist(sim, env, stage):
  c = _cube(sim, env, 0)
  return _select(stage, [_dist(P.ee_pos(sim, env), c), _dist(c, _plate_pos(sim, env) + jnp.array([0, 0, 0.03])),
                         _button_dist(sim, env)])


def _push_then_press_stage(sim, env):
  near, on_mat = _push_conds(sim, env)
  return _count(near, on_mat, on_mat & _pressed(sim))


def _push_then_press_dist(sim, env, stage):
  return jnp.where(stage < 2, _push_dist(sim, env, stage), _select(stage - 2, [_button_dist(sim, env)]))


def _press_then_pick_stage(sim, env):
  i, pressed = sim.task["order"][0], _pressed(sim)
  return _count(pressed, pressed & P.grasped(sim, env, i), pressed & P.lifted(sim, env, i))


def _press_then_pick_dist(sim, env, stage):
  c = _cube(sim, env, 0)
  ee = P.ee_pos(sim, env)
  return _select(stage, [_button_dist(sim, env), _dist(ee, c), jnp.maximum(0.08 - c[2], 0.0)])


# A second set of compositions, each a different pair (or, once, a triple) of skills than the first set and than any
# held-out task: the button first and a manipulation after it, a stack before a press, and three skills in a row
# (RESULTS: "More compositions"). None presses twice, places on the plate twice, or touches the drawer.
def _stack_then_press_stage(sim, env):
  a, b = sim.task["order"][0], sim.task["order"][1]
  on = P.on_cube(sim, env, a, b)
  return _count(P.grasped(sim, env, a), on, on & _pressed(sim))


def _stack_then_press_dist(sim, env, stage):
  top = _cube(sim, env, 0)
  return _select(stage, [_dist(P.ee_pos(sim, env), top), _dist(top, _top_of(_cube(sim, env, 1))),
                         _button_dist(sim, env)])


def _press_then_place_stage(sim, env):
  i, pressed = sim.task["order"][0], _pressed(sim)
  return _count(pressed, pressed & P.grasped(sim, env, i), pressed & P.on_plate(sim, env, i))


def _press_then_place_dist(sim, env, stage):
  c = _cube(sim, env, 0)
  return _select(stage, [_button_dist(sim, env), _dist(P.ee_pos(sim, env), c),
                         _dist(c, _plate_pos(sim, env) + jnp.array([0, 0, 0.03]))])


def _press_then_push_stage(sim, env):
  near, on_mat = _push_conds(sim, env)
  pressed = _pressed(sim)
  return _count(pressed, pressed & near, pressed & on_mat)


def _press_then_push_dist(sim, env, stage):
  return jnp.where(stage < 1, _button_dist(sim, env), _push_dist(sim, env, stage - 1))


def _push_place_press_stage(sim, env):
  near, on_mat = _push_conds(sim, env)
  placed = on_mat & P.on_plate(sim, env, sim.task["order"][1])
  return _count(near, on_mat, placed, placed & _pressed(sim))


def _push_place_press_dist(sim, env, stage):
  second = _cube(sim, env, 1)
  plate = _plate_pos(sim, env) + jnp.array([0, 0, 0.03])
  place = _dist(P.ee_pos(sim, env), second) + _dist(second, plate)
  return jnp.where(stage < 2, _push_dist(sim, env, stage), _select(stage - 2, [place, _button_dist(sim, env)]))


# ---- drawer family ---------------------------------------------------------------------------------------------
OPEN_AT, CLOSED_AT = 0.09, 0.015


def _open_stage(sim, env):
  q = P.drawer_opening(sim, env)
  return _count(q > 0.03, q > OPEN_AT)


def _open_dist(sim, env, stage):
  q = P.drawer_opening(sim, env)
  handle = sim.data.geom_xpos[env.ids["handle_geom"]]
  return _select(stage, [_dist(P.ee_pos(sim, env), handle) + (OPEN_AT - q), OPEN_AT - q])


def _close_stage(sim, env):
  q = P.drawer_opening(sim, env)
  return _count(q < 0.06, q < CLOSED_AT)


def _close_dist(sim, env, stage):
  q = P.drawer_opening(sim, env)
  handle = sim.data.geom_xpos[env.ids["handle_geom"]]
  return _select(stage, [_dist(P.ee_pos(sim, env), handle) + q, q])


def _put_in_drawer_stage(sim, env):
  i = sim.task["order"][0]
  slot = P.drawer_inner_center(sim, env)
  return _count(*_carry_stages(sim, env, i, slot[:2], 0.07, P.in_drawer(sim, env, i)))


def _put_in_drawer_dist(sim, env, stage):
  return _place_dist(sim, env, stage, goal=P.drawer_inner_center(sim, env) + jnp.array([0, 0, S.CUBE_HALF]))


def _drawer_put_close_stage(sim, env):
  # "cube in the drawer" holds however far the drawer is open: closing it is the next stage's progress. (It used to
  # require an open drawer too, so while the drawer closed no stage held and the oracle fell from ~0.55 to ~0.02
  # one step before success: a reward punishing the step before success. Test: tests/test_envs.py.)
  i = sim.task["order"][0]
  q = P.drawer_opening(sim, env)
  inside = P.in_drawer(sim, env, i)
  return _count(q > OPEN_AT, inside, inside & (q < CLOSED_AT))


def _drawer_put_close_dist(sim, env, stage):
  q = P.drawer_opening(sim, env)
  c = _cube(sim, env, 0)
  slot = P.drawer_inner_center(sim, env) + jnp.array([0, 0, S.CUBE_HALF])
  return _select(stage, [OPEN_AT - q + 0.1, _dist(c, slot), q])


_PLATE_H = S.PLATE_HALF[2] + S.CUBE_HALF + 0.004  # cube centre above the plate's centre when placed
_STACK_H = 2 * S.CUBE_HALF + 0.004
_DRAWER_H = S.CUBE_HALF + 0.006

TASKS = {t.name: t for t in [
    Task("push_cube", "table", ("reached the cube", "cube on the mat"), 90, _push_stage, _push_dist,
         expert=tuple(prog.push(0)), cube_roles=1, mat_near_first_cube=True),
    Task("pick_cube", "table", ("cube grasped", "cube lifted"), 70, _pick_stage, _pick_dist,
         expert=tuple(prog.grasp("cube", 0) + prog.lift("cube", 0)),
         undo=tuple([prog.wait(prog.OPEN, 6)]), cube_roles=1),
    Task("place_on_plate", "table", ("cube grasped", "cube above the plate", "cube on the plate"), 120,
         _place_stage, _place_dist, expert=tuple(prog.pick_and_place(0, "plate", height=_PLATE_H)),
         undo=tuple(prog.undo_place(0)), cube_roles=1),
    Task("stack_two", "table", ("top cube grasped", "top cube above the bottom cube", "cubes stacked"), 120,
         _stack_two_stage, _stack_two_dist, expert=tuple(prog.pick_and_place(0, "cube", 1, height=_STACK_H)),
         undo=tuple(prog.undo_place(0)), cube_roles=2),
    Task("press_button", "table", ("finger above the button", "button pressed"), 50, _press_stage, _press_dist,
         expert=tuple(prog.press(0)), button_roles=1),
    Task("stack_three", "table", ("second cube grasped", "second cube on the base", "third cube grasped",
                                  "tower of three"), 220, _stack_three_stage, _stack_three_dist,
         expert=tuple(prog.pick_and_place(1, "cube", 0, height=_STACK_H)
                      + prog.pick_and_place(2, "cube", 1, height=_STACK_H)),
         undo=tuple(prog.undo_place(2)), cube_roles=3),
    Task("press_buttons_in_order", "table", ("first button pressed", "second button pressed",
                                             "third button pressed"), 110, _in_order_stage, _in_order_dist,
         expert=tuple(prog.press(0) + prog.press(1) + prog.press(2)), button_roles=3),
    Task("two_on_plate", "table", ("first cube grasped", "first cube on the plate", "second cube grasped",
                                   "both cubes on the plate"), 220, _two_on_plate_stage, _two_on_plate_dist,
         expert=tuple(prog.pick_and_place(0, "plate", height=_PLATE_H, dxy=(-0.03, 0.0))
                      + prog.pick_and_place(1, "plate", height=_PLATE_H, dxy=(0.03, 0.0))),
         undo=tuple(prog.undo_place(1)), cube_roles=2),
    Task("place_then_press", "table", ("cube grasped", "cube on the plate", "cube on the plate and button pressed"),
         170, _place_then_press_stage, _place_then_press_dist,
         expert=tuple(prog.pick_and_place(0, "plate", height=_PLATE_H) + prog.press(0)),
         undo=tuple(prog.undo_place(0)), cube_roles=1, button_roles=1),
    Task("push_then_press", "table", ("reached the cube", "cube on the mat", "cube on the mat and button pressed"),
         140, _push_then_press_stage, _push_then_press_dist, expert=tuple(prog.push(0) + prog.press(0)),
         cube_roles=1, button_roles=1, mat_near_first_cube=True),
    Task("press_then_pick", "table", ("button pressed", "cube grasped, button pressed", "cube lifted"), 120,
         _press_then_pick_stage, _press_then_pick_dist,
         expert=tuple(prog.press(0) + prog.grasp("cube", 0) + prog.lift("cube", 0)),
         undo=tuple([prog.wait(prog.OPEN, 6)]), cube_roles=1, button_roles=1),
    Task("stack_then_press", "table", ("top cube grasped", "cubes stacked", "cubes stacked and button pressed"),
         170, _stack_then_press_stage, _stack_then_press_dist,
         # Over to the button at travel height first: press's own approach descends diagonally to 8 cm and would
         # sweep the fingers through the fresh tower.
         expert=tuple(prog.pick_and_place(0, "cube", 1, height=_STACK_H)
                      + [prog.move("button", 0, (0, 0, prog.SAFE_Z), abs_z=True, tol=0.015)] + prog.press(0)),
         undo=tuple(prog.undo_place(0)), cube_roles=2, button_roles=1),
    Task("press_then_place", "table", ("button pressed", "cube grasped, button pressed",
                                       "cube on the plate, button pressed"), 170,
         _press_then_place_stage, _press_then_place_dist,
         expert=tuple(prog.press(0) + prog.pick_and_place(0, "plate", height=_PLATE_H)),
         undo=tuple(prog.undo_place(0)), cube_roles=1, button_roles=1),
    Task("press_then_push", "table", ("button pressed", "reached the cube, button pressed",
                                      "cube on the mat, button pressed"), 140, _press_then_push_stage,
         _press_then_push_dist, expert=tuple(prog.press(0) + prog.push(0)), cube_roles=1, button_roles=1,
         mat_near_first_cube=True),
    Task("push_place_press", "table", ("reached the first cube", "first cube on the mat", "second cube on the plate",
                                       "both cubes placed and button pressed"), 220, _push_place_press_stage,
         _push_place_press_dist,
         expert=tuple(prog.push(0) + prog.pick_and_place(1, "plate", height=_PLATE_H) + prog.press(0)),
         undo=tuple(prog.undo_place(1)), cube_roles=2, button_roles=1, mat_near_first_cube=True),
    Task("open_drawer", "drawer", ("drawer moving", "drawer open"), 80, _open_stage, _open_dist,
         expert=tuple(prog.drawer_move("handle_open")), undo=tuple(prog.drawer_move("handle_closed"))),
    Task("close_drawer", "drawer", ("drawer half closed", "drawer closed"), 80, _close_stage, _close_dist,
         expert=tuple(prog.drawer_move("handle_closed")), undo=tuple(prog.drawer_move("handle_open")),
         drawer_start=(0.09, S.DRAWER_TRAVEL)),
    Task("put_in_drawer", "drawer", ("cube grasped", "cube above the drawer", "cube in the drawer"), 110,
         _put_in_drawer_stage, _put_in_drawer_dist,
         expert=tuple(prog.pick_and_place(0, "drawer", height=_DRAWER_H)), undo=tuple(prog.undo_place(0)),
         cube_roles=1, drawer_start=(S.DRAWER_TRAVEL - 0.005, S.DRAWER_TRAVEL)),
    Task("drawer_put_close", "drawer", ("drawer open", "cube in the drawer", "drawer closed with the cube"), 220,
         _drawer_put_close_stage, _drawer_put_close_dist,
         expert=tuple(prog.drawer_move("handle_open") + prog.pick_and_place(0, "drawer", height=_DRAWER_H)
                      + prog.drawer_move("handle_closed")),
         undo=tuple(prog.drawer_move("handle_open")), cube_roles=1),
]}


def family_tasks(family: str) -> tuple[str, ...]:
  """Task names of a scene family in a fixed order (the task index used inside jitted code)."""
  names = tuple(sorted(n for n, t in TASKS.items() if t.family == family))
  if not names:
    raise ValueError(f"unknown scene family {family!r}; expected one of {sorted(S.FAMILIES)}")
  return names
