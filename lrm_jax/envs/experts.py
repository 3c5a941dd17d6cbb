"""Scripted experts: one jittable interpreter of the waypoint programs in `program.py`, on privileged state.

Failure knobs (for reward-model negatives), chosen per episode:
  clean        the program as written (>= 95% success)
  noise        Gaussian noise on the motion commands
  wrong_object the instruction's object swapped for another one (or buttons pressed in a different order)
  drop         the gripper opens at a random moment while carrying
  stall        the expert freezes at a random moment
  undo         after finishing, the last stage is undone (placed cube taken away, drawer re-opened or re-closed)
"""
from flax import struct
import jax
import jax.numpy as jnp
import numpy as np

from lrm_jax.envs import predicates as P
from lrm_jax.envs import program as prog
from lrm_jax.envs import scene as S

MODES = ("clean", "noise", "wrong_object", "drop", "stall", "undo")
MODE = {m: i for i, m in enumerate(MODES)}


@struct.dataclass
class ExpertState:
  program: jax.Array    # (P, F) ops of this episode
  phase: jax.Array      # index of the current op
  timer: jax.Array      # steps spent in the current op
  t: jax.Array          # steps since reset
  order: jax.Array      # cube roles the expert acts on (differs from the task's under wrong_object)
  border: jax.Array     # button roles the expert acts on
  mode: jax.Array
  noise_std: jax.Array
  fail_at: jax.Array    # step at which stall kicks in
  drop_after: jax.Array  # carrying steps after which `drop` opens the gripper
  carried: jax.Array    # steps spent carrying so far
  speed: jax.Array      # motion speed factor (diversity)
  away: jax.Array       # where `undo` puts a cube
  push_sign: jax.Array  # (2,) side of the cube the mat is on, per axis, fixed at reset


class ExpertPrograms:
  """The programs of a scene family's tasks, padded into one array so that the task can be data."""

  def __init__(self, family_env):
    self.env = family_env
    tasks = family_env.tasks
    length = max(len(t.expert) + len(t.undo) for t in tasks) + 1
    self.main = jnp.asarray(np.stack([prog.to_array(t.expert, length) for t in tasks]))
    self.with_undo = jnp.asarray(np.stack([prog.to_array(t.expert + t.undo, length) for t in tasks]))
    self.cube_roles = jnp.array([t.cube_roles for t in tasks])
    self.button_roles = jnp.array([t.button_roles for t in tasks])

  def init(self, rng, sim, mode, noise_std=0.5) -> ExpertState:
    task_id = sim.task["task_id"]
    k_fail, k_speed, k_away = jax.random.split(rng, 3)
    mode = jnp.asarray(mode, jnp.int32)
    order, border = sim.task["order"], sim.task["border"]
    wrong = mode == MODE["wrong_object"]
    order = jnp.where(wrong, _swap_last_used(order, self.cube_roles[task_id]), order)
    border = jnp.where(wrong, _swap_last_used(border, self.button_roles[task_id]), border)
    length = jnp.array([t.episode_length for t in self.env.tasks])[task_id]
    away = jnp.concatenate([jax.random.uniform(k_away, (2,), minval=jnp.array([-0.22, -0.24]),
                                               maxval=jnp.array([0.22, -0.16])), jnp.zeros(1)])
    env = self.env
    cube0 = sim.data.xpos[env.ids["cube_body"][order[0]]] if env.spec.n_cubes else jnp.zeros(3)
    mat = sim.data.xpos[env.ids["mat_body"]] if env.spec.mat else jnp.zeros(3)
    push_sign = jnp.where(mat[:2] >= cube0[:2], 1.0, -1.0)
    return ExpertState(
        program=jnp.where(mode == MODE["undo"], self.with_undo[task_id], self.main[task_id]),
        phase=jnp.zeros((), jnp.int32), timer=jnp.zeros((), jnp.int32), t=jnp.zeros((), jnp.int32),
        order=order, border=border, mode=mode,
        noise_std=jnp.where(mode == MODE["noise"], noise_std, 0.0),
        fail_at=jax.random.randint(k_fail, (), length // 8, (length * 2) // 3),
        drop_after=jax.random.randint(k_away, (), 2, 8), carried=jnp.zeros((), jnp.int32),
        speed=jax.random.uniform(k_speed, (), minval=0.75, maxval=1.0),
        away=away, push_sign=push_sign)

  def reference_points(self, sim, es: ExpertState, role) -> jax.Array:
    """(len(REFS), 3) candidate target points for an op with the given role."""
    env, d = self.env, sim.data
    zero = jnp.zeros(3)
    cube = d.xpos[env.ids["cube_body"][es.order[role]]] if env.spec.n_cubes else zero
    plate = d.xpos[env.ids["plate_body"]] if env.spec.plate else zero
    button = d.xpos[env.ids["button_body"][es.border[role]]] if env.spec.n_buttons else zero
    mat = d.xpos[env.ids["mat_body"]] if env.spec.mat else zero
    handle, drawer, q = zero, zero, jnp.zeros(())
    if env.spec.drawer:
      handle = d.geom_xpos[env.ids["handle_geom"]]
      drawer = P.drawer_inner_center(sim, env)
      q = P.drawer_opening(sim, env)
    # Pushing: the pre-push point sits behind the cube on the side away from the mat, per axis; the goal puts the
    # cube's centre on the mat's coordinate along that axis while following the cube's drift on the other axis.
    contact = S.CUBE_HALF + S.FINGER_HALF[0] * 2 + 0.002
    sx, sy = es.push_sign[0], es.push_sign[1]
    push_pre_x = cube - jnp.array([sx * (contact + 0.025), 0.0, 0.0])
    push_goal_x = jnp.array([mat[0] - sx * contact, cube[1], 0.0])
    push_pre_y = cube - jnp.array([0.0, sy * (contact + 0.025), 0.0])
    push_goal_y = jnp.array([cube[0], mat[1] - sy * contact, 0.0])
    return jnp.stack([
        cube, plate, button, mat, handle, drawer,
        jnp.array([0.0, -0.1, 0.15]),
        push_pre_x, push_goal_x, push_pre_y, push_goal_y,
        handle + jnp.array([0.0, -(S.DRAWER_TRAVEL - 0.008 - q), 0.0]),
        handle + jnp.array([0.0, q, 0.0]),
        es.away,
    ])

  def act(self, sim, es: ExpertState, rng) -> tuple[jax.Array, ExpertState]:
    """One control step of the expert: returns the action in [-1, 1]^4 and the next expert state."""
    env = self.env
    F = prog.F
    op = es.program[es.phase]
    kind, role = op[F["kind"]].astype(jnp.int32), op[F["role"]].astype(jnp.int32)
    ref = self.reference_points(sim, es, role)[op[F["ref"]].astype(jnp.int32)]
    target = ref + op[F["dx"]:F["dz"] + 1]
    target = target.at[2].set(jnp.where(op[F["abs_z"]] > 0, op[F["dz"]], target[2]))
    ee = P.ee_pos(sim, env)
    cmd = sim.data.ctrl[:3]
    motion = jnp.clip((target - cmd) / env.config.action_scale, -1.0, 1.0) * es.speed
    is_move = kind == prog.MOVE
    motion = jnp.where(is_move, motion, 0.0)
    motion = motion + es.noise_std * jax.random.normal(rng, (3,))
    grip = op[F["grip"]]
    failing = es.t >= es.fail_at
    carrying = op[F["carry"]] > 0
    grip = jnp.where((es.mode == MODE["drop"]) & carrying & (es.carried >= es.drop_after), prog.OPEN, grip)
    stalled = (es.mode == MODE["stall"]) & failing
    motion = jnp.where(stalled | (kind == prog.END), 0.0, motion)
    arrived = jnp.linalg.norm(ee - target) < op[F["tol"]]
    done_op = jnp.where(is_move, arrived, False) | (es.timer + 1 >= op[F["max_steps"]])
    done_op = done_op & (kind != prog.END) & ~stalled
    phase = jnp.where(done_op, es.phase + 1, es.phase)
    timer = jnp.where(done_op, 0, es.timer + 1)
    action = jnp.concatenate([motion, grip[None]])
    return jnp.clip(action, -1.0, 1.0), es.replace(phase=phase, timer=timer, t=es.t + 1,
                                                   carried=es.carried + carrying.astype(jnp.int32))

  def finished(self, es: ExpertState) -> jax.Array:
    return es.program[es.phase, prog.F["kind"]] == prog.END


def _swap_last_used(order, used):
  """Swap the last role the task uses with the next one (a distractor), or with the one before if none is left."""
  n = order.shape[0]
  if n < 2:
    return order
  i = jnp.clip(used - 1, 0, n - 1)
  j = jnp.where(used < n, used, used - 2)
  j = jnp.clip(j, 0, n - 1)
  oi, oj = order[i], order[j]
  return order.at[i].set(oj).at[j].set(oi)
