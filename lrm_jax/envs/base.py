"""The LRM-Bench environments: mujoco_playground-style `reset` / `step` on MJX, brax `Env` compatible.

A *scene family* ("table", "drawer") is one MJCF shared by several tasks; `FamilyEnv` runs any of its tasks with the
task index as data (`reset(rng, task_id)`), so one compiled program steps a batch that mixes tasks (data generation,
tests). `LrmBenchEnv` fixes one task and implements `brax.envs.base.Env` for brax's wrappers and `ppo.train`.

Episodic task variables (roles, colours, latched button presses, camera/colour randomisation) live in
`SimState.task`, inside `State.pipeline_state`: brax's AutoResetWrapper restores `pipeline_state` wholesale, so they
reset together with the physics.

Actions are in [-1, 1]^4: a displacement of the end effector's position target (dx, dy, dz; `action_scale` metres
per control step) and a gripper command (-1 open, +1 closed).
"""
import copy
from typing import Any

from brax.envs import base as brax_base
from flax import struct
import jax
import jax.numpy as jnp
import ml_collections
import mujoco
from mujoco import mjx
import numpy as np

from lrm_jax.envs import language
from lrm_jax.envs import predicates as P
from lrm_jax.envs import scene as S
from lrm_jax.envs import tasks as tasks_lib
from lrm_jax.render import renderer
from lrm_jax.render import scene as render_scene_lib

State = brax_base.State


@struct.dataclass
class SimState:
  data: mjx.Data
  task: dict[str, Any]


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      embodiment="gripper",        # "gripper" or "hand": end-effector look (same kinematics and contacts)
      n_substeps=4,                # physics steps per control step (timestep 0.01 s -> 25 Hz control)
      action_scale=0.02,           # metres of target displacement per unit action
      episode_length=0,            # 0: the task's own default
      reward="oracle",             # privileged reward returned by `step`: "oracle" (dense) or "sparse"
      render_obs=False,            # put `pixels/<camera>` images in obs (pixel policies)
      obs_cameras=("front",),
      image_size=64,
      randomize_appearance=False,  # per-episode camera / light / colour randomisation
      appearance_strength=1.0,
  ))


def _name2id(m, kind, name):
  return mujoco.mj_name2id(m, kind, name)


# Semantic classes of `FamilyEnv.semantic_seg`, the same in every family: what a pretrained vision tower knows about
# a scene (objects by kind and colour, a button's state), with no notion of tasks or progress.
SEMANTIC_CLASSES = (("background", "scene", "end_effector")
                    + tuple(f"cube_{c}" for c in S.CUBE_COLORS) + ("plate", "mat")
                    + tuple(f"button_{c}" for c in S.BUTTON_COLORS) + tuple(f"button_{c}_lit" for c in S.BUTTON_COLORS)
                    + ("drawer", "handle"))
_SEM = {name: i for i, name in enumerate(SEMANTIC_CLASSES)}
# `FamilyEnv.scene_state` layout: the privileged scene state an image tower learns to read from pixels.
SCENE_STATE = (("ee_x", "ee_y", "ee_z", "closure")
               + tuple(f"cube_{c}_{a}" for c in S.CUBE_COLORS for a in "xyz")
               + tuple(f"cube_{c}_grasped" for c in S.CUBE_COLORS)
               + ("plate_x", "plate_y", "mat_x", "mat_y")
               + tuple(f"button_{c}_lit" for c in S.BUTTON_COLORS) + ("drawer_opening",))
_POS_SCALE = 10.0  # metres -> decimetres: the table spans about +-3, unit-scale regression targets


class FamilyEnv:
  """All tasks of one scene family, task chosen per episode by index (see `tasks.family_tasks`)."""

  def __init__(self, family: str, config: ml_collections.ConfigDict | None = None):
    if family not in S.FAMILIES:
      raise ValueError(f"unknown scene family {family!r}; expected one of {sorted(S.FAMILIES)}")
    self.family = family
    self.config = config = config or default_config()
    self.task_names = tasks_lib.family_tasks(family)
    self.tasks = tuple(tasks_lib.TASKS[n] for n in self.task_names)
    self.spec = spec = S.dataclasses.replace(S.FAMILIES[family], embodiment=config.embodiment)
    self.mj_model = m = mujoco.MjModel.from_xml_string(S.build_mjcf(spec))
    # This process's first device: MJX's default is jax.devices()[0], which with several processes (a multi-host
    # run) is process 0's device, and any jit closing over the model then fails on the other processes.
    self.mjx_model = mjx.put_model(m, device=jax.local_devices()[0])
    jnt = lambda n: int(m.jnt_qposadr[_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n)])
    body = lambda n: _name2id(m, mujoco.mjtObj.mjOBJ_BODY, n)
    geom = lambda n: _name2id(m, mujoco.mjtObj.mjOBJ_GEOM, n)
    self.ids = dict(
        ee_qpos=np.array([jnt(n) for n in ("ee_x", "ee_y", "ee_z")]),
        finger_qpos=np.array([jnt("left_finger"), jnt("right_finger")]),
        cube_qpos=np.array([jnt(f"cube{i}") for i in range(spec.n_cubes)], np.int32),
        # Indexed by traced roles inside jit, so these are jnp arrays.
        cube_body=jnp.array([body(f"cube{i}") for i in range(spec.n_cubes)], jnp.int32),
        cube_geom=jnp.array([geom(f"cube{i}") for i in range(spec.n_cubes)], jnp.int32),
        button_body=jnp.array([body(f"button{i}") for i in range(spec.n_buttons)], jnp.int32),
        button_geom=jnp.array([geom(f"button{i}") for i in range(spec.n_buttons)], jnp.int32),
        plate_body=body("plate"), mat_body=body("mat"), cabinet_body=body("cabinet"),
        handle_geom=geom("handle"),
        drawer_qpos=jnt("drawer") if spec.drawer else -1,
    )
    self._mocap = {name: int(m.body_mocapid[body(name)]) for name in
                   ["plate", "mat"] + [f"button{i}" for i in range(spec.n_buttons)] if body(name) >= 0}
    self.max_episode_length = max(t.episode_length for t in self.tasks)
    self.render_scene = render_scene_lib.make_scene(m)
    # Cube and button colours are task-defining ("the red cube"): appearance randomisation never recolours them.
    task_coloured = np.zeros(m.ngeom, bool)
    task_coloured[np.asarray(self.ids["cube_geom"])] = True
    task_coloured[np.asarray(self.ids["button_geom"])] = True
    self._task_coloured = jnp.asarray(task_coloured[np.asarray(self.render_scene.geom_id)])
    self._static_semantics = jnp.asarray(self._geom_semantics(m))
    self.appearance_strength = config.appearance_strength if config.randomize_appearance else 0.0

  def _geom_semantics(self, m) -> np.ndarray:
    """Per MjModel geom: its semantic class, for everything whose class does not depend on the episode."""
    out = np.full(m.ngeom, _SEM["scene"], np.int32)
    for g in range(m.ngeom):
      body = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, int(m.geom_bodyid[g])) or ""
      name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g) or ""
      if body in ("ee", "left_finger", "right_finger"):
        out[g] = _SEM["end_effector"]
      elif name in ("plate", "mat"):
        out[g] = _SEM[name]
      elif name.startswith("handle"):
        out[g] = _SEM["handle"]
      elif name.startswith("drawer"):
        out[g] = _SEM["drawer"]
    return out
  # ---- embodiments share one compiled program ---------------------------------------------------------------------
  VISUAL_FIELDS = ("geom_pos", "geom_quat", "geom_size", "geom_rgba")

  def embodiment_arrays(self) -> dict[str, np.ndarray]:
    """The model arrays in which the end-effector looks differ (visual geoms only; physics is identical)."""
    return {k: np.asarray(getattr(self.mj_model, k), np.float32) for k in self.VISUAL_FIELDS}

  def with_embodiment(self, arrays: dict[str, jax.Array]) -> "FamilyEnv":
    """A shallow copy whose model and render scene use `arrays` (possibly traced): call it inside `jit` with
    another embodiment's `embodiment_arrays()` to reuse one compiled program for both looks."""
    env = copy.copy(self)
    env.mjx_model = self.mjx_model.replace(**arrays)
    gid = self.render_scene.geom_id
    env.render_scene = self.render_scene.replace(geom_size=arrays["geom_size"][gid],
                                                 geom_rgba=arrays["geom_rgba"][gid])
    return env

  # ---- reset ----------------------------------------------------------------------------------------------------
  def task_index(self, name: str) -> int:
    if name not in self.task_names:
      raise ValueError(f"task {name!r} is not in scene family {self.family!r}; it has {list(self.task_names)}")
    return self.task_names.index(name)

  def _switch(self, task_id, fn_name, *args):
    """Calls the task's `fn_name(*args, env)`; the env itself is closed over (it is not a JAX type)."""
    branches = [lambda *a, t=t: getattr(t, fn_name)(a[0], self, *a[1:]) for t in self.tasks]
    return jax.lax.switch(task_id, branches, *args)

  def _sample_layout(self, rng, task_id, order):
    """Object poses: cubes (and the mat) in jittered slots without overlap; plate and buttons behind them."""
    spec, m = self.spec, self.mj_model
    k_slots, k_jit, k_yaw, k_ee, k_plate, k_btn, k_drawer = jax.random.split(rng, 7)
    xs, ys = (jnp.array([-0.2, -0.1, 0.0, 0.1, 0.2]), jnp.array([-0.21, -0.11])) if self.family == "table" else (
        jnp.array([-0.15, -0.05, 0.05, 0.15]), jnp.array([-0.2, -0.1]))
    slots = jnp.stack(jnp.meshgrid(xs, ys), -1).reshape(-1, 2)
    n_place = spec.n_cubes + int(spec.mat)
    chosen = jax.random.permutation(k_slots, slots.shape[0])[:n_place]
    pos = slots[chosen] + jax.random.uniform(k_jit, (n_place, 2), minval=-0.015, maxval=0.015)
    qpos = jnp.array(m.qpos0)
    yaw = jax.random.uniform(k_yaw, (spec.n_cubes,), minval=-0.2, maxval=0.2)
    for i in range(spec.n_cubes):
      a = int(self.ids["cube_qpos"][i])
      quat = jnp.array([jnp.cos(yaw[i] / 2), 0.0, 0.0, jnp.sin(yaw[i] / 2)])
      qpos = qpos.at[a:a + 7].set(jnp.concatenate([pos[i], jnp.array([S.CUBE_HALF]), quat]))
    ee = jax.random.uniform(k_ee, (3,), minval=jnp.array([-0.1, -0.12, 0.12]), maxval=jnp.array([0.1, 0.0, 0.2]))
    qpos = qpos.at[self.ids["ee_qpos"]].set(ee)
    mocap = jnp.zeros((m.nmocap, 3))
    for name, mid in self._mocap.items():
      mocap = mocap.at[mid].set(jnp.array(m.body_pos[_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name)]))
    if spec.mat:
      mat = pos[-1]
      # Pushing tasks: the mat goes one row in front of / behind the role-0 cube; a distractor there swaps places
      # with the mat's sampled spot, so the push path is clear.
      near = jnp.array([t.mat_near_first_cube for t in self.tasks])[task_id]
      c = pos[order[0]]
      beside = jnp.array([c[0], jnp.where(c[1] > ys.mean(), ys.min(), ys.max())])
      blocking = jnp.linalg.norm(pos[:spec.n_cubes] - beside, axis=-1) < 0.07
      cubes = jnp.where((near & blocking)[:, None], mat, pos[:spec.n_cubes])
      mat = jnp.where(near, beside, mat)
      for i in range(spec.n_cubes):
        a = int(self.ids["cube_qpos"][i])
        qpos = qpos.at[a:a + 2].set(cubes[i])
      mocap = mocap.at[self._mocap["mat"]].set(jnp.array([mat[0], mat[1], 0.0005]))
    if spec.plate:
      p = jax.random.uniform(k_plate, (2,), minval=jnp.array([-0.14, -0.005]), maxval=jnp.array([0.14, 0.035]))
      mocap = mocap.at[self._mocap["plate"]].set(jnp.array([p[0], p[1], S.PLATE_HALF[2]]))
    if spec.n_buttons:
      bx = jnp.array([-0.17, 0.0, 0.17]) + jax.random.uniform(k_btn, (3,), minval=-0.015, maxval=0.015)
      for i in range(spec.n_buttons):
        mocap = mocap.at[self._mocap[f"button{i}"]].set(jnp.array([bx[i], 0.18, 0.0]))
    if spec.drawer:
      lo = jnp.array([t.drawer_start[0] for t in self.tasks])[task_id]
      hi = jnp.array([t.drawer_start[1] for t in self.tasks])[task_id]
      qpos = qpos.at[self.ids["drawer_qpos"]].set(jax.random.uniform(k_drawer, (), minval=lo, maxval=hi))
    return qpos, mocap

  def reset(self, rng: jax.Array, task_id) -> State:
    task_id = jnp.asarray(task_id, jnp.int32)
    rng, k_layout, k_col, k_bcol, k_ord, k_bord, k_tmpl, k_app = jax.random.split(rng, 8)
    order = jax.random.permutation(k_ord, self.spec.n_cubes).astype(jnp.int32)
    qpos, mocap = self._sample_layout(k_layout, task_id, order)
    n_b = self.spec.n_buttons
    task = dict(
        task_id=task_id,
        template=jax.random.randint(k_tmpl, (), 0, language.NUM_TEMPLATES),
        cube_colors=jax.random.permutation(k_col, len(S.CUBE_COLORS))[:self.spec.n_cubes].astype(jnp.int32),
        button_colors=jax.random.permutation(k_bcol, len(S.BUTTON_COLORS))[:n_b].astype(jnp.int32),
        order=order,
        border=jax.random.permutation(k_bord, n_b).astype(jnp.int32),
        pressed=jnp.zeros((n_b,), bool),
        press_rank=jnp.full((n_b,), -1, jnp.int32),
        press_count=jnp.zeros((), jnp.int32),
    )
    task["appearance"] = self._appearance(k_app)
    data = mjx.make_data(self.mjx_model)
    ctrl = jnp.concatenate([qpos[self.ids["ee_qpos"]], jnp.zeros(2)])
    data = data.replace(qpos=qpos, mocap_pos=mocap, ctrl=ctrl)
    data = mjx.forward(self.mjx_model, data)
    sim = SimState(data=data, task=task)
    stage = self.stage(sim)
    metrics = dict(stage=stage.astype(jnp.float32), success=(stage >= self.num_stages(sim)).astype(jnp.float32))
    info = dict(rng=rng, best_stage=stage)
    return State(pipeline_state=sim, obs=self._obs(sim), reward=jnp.zeros(()), done=jnp.zeros(()),
                 metrics=metrics, info=info)

  # ---- step -----------------------------------------------------------------------------------------------------
  def step(self, state: State, action: jax.Array) -> State:
    sim = state.pipeline_state
    data = sim.data
    action = jnp.clip(action, -1.0, 1.0)
    target = data.ctrl[:3] + self.config.action_scale * action[:3]
    target = jnp.clip(target, jnp.array(S.WORKSPACE_LOW), jnp.array(S.WORKSPACE_HIGH))
    closure = (action[3] + 1.0) / 2.0 * S.FINGER_OPEN
    data = data.replace(ctrl=jnp.concatenate([target, jnp.stack([closure, closure])]))
    data = jax.lax.fori_loop(0, self.config.n_substeps, lambda _, d: mjx.step(self.mjx_model, d), data)
    sim = sim.replace(data=data)
    sim = sim.replace(task=self._update_latches(sim))
    stage = self.stage(sim)
    terms = self.reward_terms(sim, stage)
    unstable = jnp.isnan(data.qpos).any() | jnp.isnan(data.qvel).any()
    metrics = dict(state.metrics, stage=stage.astype(jnp.float32), success=terms["sparse"])
    info = dict(state.info, best_stage=jnp.maximum(state.info["best_stage"], stage))
    return state.replace(pipeline_state=sim, obs=self._obs(sim), reward=terms[self.config.reward],
                         done=unstable.astype(jnp.float32), metrics=metrics, info=info)

  def _update_latches(self, sim: SimState):
    """Buttons latch on when a fingertip presses them; the press order is recorded for ordered tasks."""
    task = sim.task
    if not self.spec.n_buttons:
      return task
    bpos = sim.data.xpos[self.ids["button_body"]]
    now = jax.vmap(lambda p: P.fingertip_pressing(sim, self, p[:2], S.BUTTON_TOP))(bpos)
    new = now & ~task["pressed"]
    # Simultaneous presses (not reachable with one end effector) would share a rank; that is fine.
    rank = jnp.where(new, task["press_count"], task["press_rank"])
    return dict(task, pressed=task["pressed"] | now, press_rank=rank,
                press_count=task["press_count"] + new.any().astype(jnp.int32))

  # ---- task semantics -------------------------------------------------------------------------------------------
  def stage(self, sim: SimState) -> jax.Array:
    return self._switch(sim.task["task_id"], "stage", sim).astype(jnp.int32)

  def num_stages(self, sim: SimState) -> jax.Array:
    return jnp.array([t.num_stages for t in self.tasks])[sim.task["task_id"]]

  def reward_terms(self, sim: SimState, stage: jax.Array | None = None) -> dict[str, jax.Array]:
    """Privileged reward terms, for baselines and evaluation only (never the reward model's inputs):
    `sparse` success and `oracle` = (stage + shaped progress towards the next stage) / (num_stages + 1)."""
    stage = self.stage(sim) if stage is None else stage
    n = self.num_stages(sim)
    dist = self._switch(sim.task["task_id"], "distance", sim, stage)
    shaped = jnp.where(stage >= n, 1.0, 1.0 - jnp.tanh(10.0 * jnp.maximum(dist, 0.0)))
    return dict(sparse=(stage >= n).astype(jnp.float32), oracle=(stage + shaped) / (n + 1.0))

  def instruction(self, task_vars) -> str:
    """Host-side: the episode's instruction text from its (numpy) task variables."""
    t = jax.tree.map(np.asarray, task_vars)
    return language.instruction(self.task_names[int(t["task_id"])], int(t["template"]), t["cube_colors"],
                                t["button_colors"], t["order"], t["border"])

  # ---- observations and pixels ----------------------------------------------------------------------------------
  def state_vector(self, sim: SimState) -> jax.Array:
    """Proprioception, object poses and the task variables a state-based policy needs."""
    d = sim.data
    ee = d.qpos[self.ids["ee_qpos"]]
    parts = [ee, d.ctrl[:3] - ee, d.qpos[self.ids["finger_qpos"]], d.qvel[:3]]
    if self.spec.n_cubes:
      cubes = d.xpos[self.ids["cube_body"]][sim.task["order"]]  # in role order: role 0 first
      parts += [cubes - ee, cubes]
    for name in ("plate", "mat"):
      if name in self._mocap:
        parts.append(d.mocap_pos[self._mocap[name]] - ee)
    if self.spec.n_buttons:
      buttons = d.xpos[self.ids["button_body"]][sim.task["border"]]
      parts += [buttons - ee, sim.task["pressed"][sim.task["border"]]]
    if self.spec.drawer:
      parts += [d.qpos[self.ids["drawer_qpos"]], d.geom_xpos[self.ids["handle_geom"]] - ee]
    parts.append(jax.nn.one_hot(sim.task["task_id"], len(self.tasks)))
    return jnp.concatenate([jnp.ravel(jnp.asarray(p, jnp.float32)) for p in parts])

  def scene_state(self, sim: SimState) -> tuple[jax.Array, jax.Array]:
    """(values, mask) float32 [len(SCENE_STATE)] each: what is where, in one layout for every family, roughly unit
    scale. Objects are indexed by colour (what a camera can tell apart), not by task role; the mask is 0 for what
    this family has not (a table has no drawer) and for colours absent from the episode. No task variable is in it:
    the image tower's pretraining target (`lrm_jax/train/tower_pretrain.py`), never anything about progress."""
    d = sim.data
    n_col, n_btn = len(S.CUBE_COLORS), len(S.BUTTON_COLORS)
    vals, mask = [], []

    def put(v, m):
      v = jnp.ravel(jnp.asarray(v, jnp.float32))
      vals.append(v)
      mask.append(jnp.broadcast_to(jnp.asarray(m, jnp.float32), v.shape))

    put(d.qpos[self.ids["ee_qpos"]] * _POS_SCALE, 1.0)
    put(P.closure(sim, self) / S.FINGER_OPEN, 1.0)
    cube_xyz, cube_grip, cube_on = jnp.zeros((n_col, 3)), jnp.zeros(n_col), jnp.zeros(n_col)
    if self.spec.n_cubes:
      col = sim.task["cube_colors"]
      grip = jnp.stack([P.grasped(sim, self, i) for i in range(self.spec.n_cubes)]).astype(jnp.float32)
      cube_xyz = cube_xyz.at[col].set(d.xpos[self.ids["cube_body"]] * _POS_SCALE)
      cube_grip = cube_grip.at[col].set(grip)
      cube_on = cube_on.at[col].set(1.0)
    put(cube_xyz, jnp.repeat(cube_on, 3))
    put(cube_grip, cube_on)
    for name in ("plate", "mat"):
      has = name in self._mocap
      put(d.mocap_pos[self._mocap[name], :2] * _POS_SCALE if has else jnp.zeros(2), float(has))
    lit, btn_on = jnp.zeros(n_btn), jnp.zeros(n_btn)
    if self.spec.n_buttons:
      lit = lit.at[sim.task["button_colors"]].set(sim.task["pressed"].astype(jnp.float32))
      btn_on = btn_on.at[sim.task["button_colors"]].set(1.0)
    put(lit, btn_on)
    put(P.drawer_opening(sim, self) / S.DRAWER_TRAVEL if self.spec.drawer else 0.0, float(self.spec.drawer))
    return jnp.concatenate(vals), jnp.concatenate(mask)

  def _obs(self, sim: SimState):
    obs = {"state": self.state_vector(sim)}
    if self.config.render_obs:
      for cam in self.config.obs_cameras:
        obs[f"pixels/{cam}"] = self.render(sim, cam)["rgb"]
    return obs

  def geom_rgba(self, sim: SimState) -> jax.Array:
    """Per-geom colours of this episode: cube and button colours from the task variables; lit when pressed."""
    rgba = jnp.asarray(self.mjx_model.geom_rgba)
    cube_rgb = jnp.array([S.COLORS[c] for c in S.CUBE_COLORS])
    if self.spec.n_cubes:
      rgba = rgba.at[self.ids["cube_geom"], :3].set(cube_rgb[sim.task["cube_colors"]])
    if self.spec.n_buttons:
      btn_rgb = jnp.array([S.COLORS[c] for c in S.BUTTON_COLORS])[sim.task["button_colors"]]
      lit = jnp.where(sim.task["pressed"][:, None], jnp.minimum(btn_rgb * 0.5 + 0.55, 1.0), btn_rgb * 0.45)
      rgba = rgba.at[self.ids["button_geom"], :3].set(lit)
    return rgba

  def semantic_seg(self, sim: SimState, seg: jax.Array) -> jax.Array:
    """Renderer geom ids [H, W] (-1 = background) -> `SEMANTIC_CLASSES` indices (uint8), this episode's cube and
    button colours and button states included. For pretraining a vision tower on rendered scenes."""
    table = self._static_semantics
    if self.spec.n_cubes:
      table = table.at[self.ids["cube_geom"]].set(_SEM["cube_red"] + sim.task["cube_colors"])
    if self.spec.n_buttons:
      lit = jnp.where(sim.task["pressed"], len(S.BUTTON_COLORS), 0)
      table = table.at[self.ids["button_geom"]].set(_SEM["button_red"] + sim.task["button_colors"] + lit)
    return jnp.where(seg >= 0, table[jnp.maximum(seg, 0)], _SEM["background"]).astype(jnp.uint8)

  def with_appearance_strength(self, strength) -> "FamilyEnv":
    """A shallow copy whose resets randomise appearance with `strength` (possibly traced, 0 = none): datagen keeps
    one compiled program for sources that differ only in how strongly their looks vary."""
    env = copy.copy(self)
    env.appearance_strength = strength
    return env

  def _appearance(self, rng) -> renderer.Appearance:
    """Camera pose, lighting and non-task colours of an episode (the defaults unless randomisation is on)."""
    return renderer.random_appearance(rng, self.render_scene, self.appearance_strength,
                                      recolor_mask=~self._task_coloured)

  def render(self, sim: SimState, camera="front", size: int | None = None, shadows: bool = True):
    """RGB / depth / segmentation of one camera through the pure-JAX renderer (jit- and vmap-able). `camera`: a
    name, or an index into `render_scene.cam_name` (an int32 array may be traced: one program, any camera)."""
    cam = self.render_scene.camera_index(camera) if isinstance(camera, str) else camera
    size = size or self.config.image_size
    app = sim.task["appearance"]
    task_rgba = self.geom_rgba(sim)[self.render_scene.geom_id]
    app = app.replace(rgba=jnp.where(self._task_coloured[:, None], task_rgba, app.rgba))
    return renderer.render_mjx(self.render_scene, sim.data, camera=cam, height=size, width=size, appearance=app,
                               shadows=shadows)


class LrmBenchEnv(brax_base.Env):
  """One task of the suite as a `brax.envs.base.Env`. Make it with `lrm_jax.envs.registry.make(name)`."""

  def __init__(self, task: str, config: ml_collections.ConfigDict | None = None):
    t = tasks_lib.TASKS.get(task)
    if t is None:
      raise ValueError(f"unknown task {task!r}; expected one of {sorted(tasks_lib.TASKS)}")
    self.family_env = FamilyEnv(t.family, config)
    self.task = t
    self.task_id = self.family_env.task_index(task)
    self.config = self.family_env.config
    self.episode_length = self.config.episode_length or t.episode_length

  def reset(self, rng: jax.Array) -> State:
    return self.family_env.reset(rng, self.task_id)

  def step(self, state: State, action: jax.Array) -> State:
    return self.family_env.step(state, action)

  @property
  def observation_size(self):
    obs = jax.eval_shape(self.reset, jax.random.PRNGKey(0)).obs
    return {k: v.shape for k, v in obs.items()}

  @property
  def action_size(self) -> int:
    return 4

  @property
  def backend(self) -> str:
    return "mjx"

  @property
  def dt(self) -> float:
    return float(self.family_env.mj_model.opt.timestep * self.config.n_substeps)

  def render(self, sim: SimState, camera: str = "front", size: int | None = None):
    return self.family_env.render(sim, camera, size)

  def reward_terms(self, sim: SimState) -> dict[str, jax.Array]:
    """Privileged `sparse` / `oracle` terms of one (unbatched) state: RL baselines and ground-truth evaluation."""
    return self.family_env.reward_terms(sim)

  def instruction(self, state: State) -> str:
    return self.family_env.instruction(state.pipeline_state.task)

  # Instructions inside jit: every phrasing and colour assignment of this task, indexed by a jittable function of
  # the episode's task variables, so a reward model can look up each env's (pre-tokenised) instruction per step.
  def _role_radices(self) -> list[int]:
    return ([language.NUM_TEMPLATES] + [len(S.CUBE_COLORS)] * self.task.cube_roles
            + [len(S.BUTTON_COLORS)] * self.task.button_roles)

  def instruction_index(self, sim: SimState) -> jax.Array:
    """int32 index of this episode's instruction in `instruction_table()` (jit- and vmap-able)."""
    t = sim.task
    digits = [t["template"]]
    digits += [t["cube_colors"][t["order"][k]] for k in range(self.task.cube_roles)]
    digits += [t["button_colors"][t["border"][k]] for k in range(self.task.button_roles)]
    index, mult = jnp.zeros((), jnp.int32), 1
    for d, radix in zip(digits, self._role_radices()):
      index, mult = index + mult * d.astype(jnp.int32), mult * radix
    return index

  def instruction_table(self) -> list[str]:
    """Every instruction this task can draw, in `instruction_index` order (repeated colours fill unused slots)."""
    out = []
    for flat in range(int(np.prod(self._role_radices()))):
      digits = []
      for radix in self._role_radices():
        digits.append(flat % radix)
        flat //= radix
      cubes = digits[1:1 + self.task.cube_roles]
      buttons = digits[1 + self.task.cube_roles:]
      out.append(language.instruction(self.task.name, digits[0], cubes, buttons, range(len(cubes)),
                                      range(len(buttons))))
    return out
