"""A tiny waypoint language for the scripted experts: each task's expert is a list of ops, stored as numbers.

An op moves the end-effector's position target towards a point given by a *reference* (a cube by role, the plate,
a button by role, ...) plus an offset, with the gripper open or closed, until the end effector is within `tol` of
it or `max_steps` control steps have passed; `wait` holds still for a number of steps (to close or open the
gripper). Programs are data (float arrays), so one jitted interpreter runs every task of a scene family, and a
batch can mix tasks.
"""
import numpy as np

# References an op can aim at (resolved in lrm_jax.envs.experts.reference_points).
REFS = ("cube", "plate", "button", "mat", "handle", "drawer", "home", "push_pre_x", "push_goal_x", "push_pre_y",
        "push_goal_y", "handle_open", "handle_closed", "away")
REF = {name: i for i, name in enumerate(REFS)}
MOVE, WAIT, END = 0, 1, 2
OPEN, CLOSED = -1.0, 1.0
# Op layout: kind, ref, role, dx, dy, dz, abs_z (1: dz is an absolute height), grip, tol, max_steps, carry.
FIELDS = ("kind", "ref", "role", "dx", "dy", "dz", "abs_z", "grip", "tol", "max_steps", "carry")
F = {name: i for i, name in enumerate(FIELDS)}

SAFE_Z = 0.11  # travel height with or without a cube


def move(ref, role=0, offset=(0.0, 0.0, 0.0), abs_z=False, grip=OPEN, tol=0.01, max_steps=40, carry=False):
  return (MOVE, REF[ref], role, *offset, float(abs_z), grip, tol, max_steps, float(carry))


def wait(grip, steps):
  return (WAIT, 0, 0, 0.0, 0.0, 0.0, 0.0, grip, 0.0, steps, 0.0)


END_OP = (END, 0, 0, 0.0, 0.0, 0.0, 0.0, OPEN, 0.0, 1, 0.0)


def grasp(ref="cube", role=0):
  """Approach from above, descend around the object, close."""
  return [move(ref, role, (0, 0, SAFE_Z), abs_z=True, tol=0.012),
          move(ref, role, (0, 0, 0.004), tol=0.006, max_steps=25),
          wait(CLOSED, 6)]


def lift(ref="cube", role=0):
  return [move(ref, role, (0, 0, SAFE_Z), abs_z=True, grip=CLOSED, tol=0.015, max_steps=25, carry=True)]


def place(ref, role=0, height=0.0, dxy=(0.0, 0.0)):
  """Carry the held object above `ref`, lower it to `height` above the reference point, release, retreat."""
  return [move(ref, role, (*dxy, SAFE_Z), abs_z=True, grip=CLOSED, tol=0.012, max_steps=50, carry=True),
          move(ref, role, (*dxy, height), grip=CLOSED, tol=0.007, max_steps=25, carry=True),
          wait(OPEN, 5),
          move(ref, role, (*dxy, SAFE_Z), abs_z=True, grip=OPEN, tol=0.02, max_steps=20)]


def pick_and_place(role, ref, ref_role=0, height=0.0, dxy=(0.0, 0.0)):
  return grasp("cube", role) + lift("cube", role) + place(ref, ref_role, height, dxy)


def press(role):
  """Point with closed fingers: above the button, down onto it, back up."""
  from lrm_jax.envs import scene
  tip = scene.FINGER_HALF[2]
  return [move("button", role, (0, 0, 0.08), abs_z=True, grip=CLOSED, tol=0.01),
          move("button", role, (0, 0, scene.BUTTON_TOP + tip - 0.004), abs_z=True, grip=CLOSED, tol=0.005,
               max_steps=20),
          move("button", role, (0, 0, 0.08), abs_z=True, grip=CLOSED, tol=0.02, max_steps=15)]


def drawer_move(target):
  """Hook the closed fingers on the handle bar (behind it to pull, in front of it to push) and slide."""
  side = 0.022 if target == "handle_open" else -0.024
  return [move("handle", 0, (0, side, 0.09), abs_z=True, grip=CLOSED, tol=0.012),
          move("handle", 0, (0, side, 0.0), grip=CLOSED, tol=0.007, max_steps=25),
          move(target, 0, (0, side, 0.0), grip=CLOSED, tol=0.008, max_steps=60),
          move(target, 0, (0, side, 0.09), abs_z=True, grip=CLOSED, tol=0.02, max_steps=15)]


def push(role=0):
  """Two straight pushes with the closed pads squarely behind the cube: along x to line up with the mat, then along
  y onto it (diagonal pushes slide off the narrow pads)."""
  ops = []
  for axis in ("x", "y"):
    ops += [move(f"push_pre_{axis}", role, (0, 0, 0.07), abs_z=True, grip=CLOSED, tol=0.012),
            move(f"push_pre_{axis}", role, (0, 0, 0.024), abs_z=True, grip=CLOSED, tol=0.008, max_steps=25),
            move(f"push_goal_{axis}", role, (0, 0, 0.024), abs_z=True, grip=CLOSED, tol=0.008, max_steps=40),
            move(f"push_goal_{axis}", role, (0, 0, 0.07), abs_z=True, grip=CLOSED, tol=0.02, max_steps=15)]
  return ops


def undo_place(role):
  """Take a placed cube back off its target and put it somewhere else on the table."""
  return grasp("cube", role) + lift("cube", role) + place("away", 0, 0.022)


def to_array(ops, length=None) -> np.ndarray:
  """Pads with END ops that hold the last op's gripper command (a lifted cube stays in hand)."""
  last_grip = ops[-1][F["grip"]] if ops else OPEN
  end = END_OP[:F["grip"]] + (last_grip,) + END_OP[F["grip"] + 1:]
  ops = list(ops) + [end]
  length = length or len(ops)
  if len(ops) > length:
    raise ValueError(f"program of {len(ops)} ops does not fit length {length}")
  ops += [end] * (length - len(ops))
  return np.asarray(ops, np.float32)
