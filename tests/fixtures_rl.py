"""A toy task for the RL tests: 2-D point-mass reaching, pure JAX, with a few-pixel rendered frame.

The point starts at a random spot, the goal at another; the action moves it by up to `STEP` per axis. The scripted
expert is deliberately slow (`EXPERT_SPEED` of full speed), so it reaches only nearby goals within the episode:
behaviour cloning inherits that, and PPO can improve on it by learning to move faster. The frame shows the point as
a red blob and the goal as a green blob; `score_fn` reads their distance back from the pixels, as a reward model
would, so the whole reward path (render -> score_fn -> interval-hold) is exercised without privileged state.
"""
from brax.envs import base as brax_base
from flax import struct
import jax
import jax.numpy as jnp
import numpy as np

from lrm_jax.rl import demos as demos_lib

STEP = 0.15
SUCCESS_RADIUS = 0.15
EPISODE_LENGTH = 10
EXPERT_SPEED = 0.3
IMAGE = 12
MAX_DIST = 2.0 * np.sqrt(2.0)


@struct.dataclass
class ToySim:
  pos: jax.Array
  goal: jax.Array


class PointReach(brax_base.Env):
  """brax Env with the LrmBenchEnv extras the RL code uses: `render`, `reward_terms`, `episode_length`."""

  def __init__(self, render_obs: bool = False):
    self.render_obs = render_obs
    self.episode_length = EPISODE_LENGTH

  def reset(self, rng):
    k_pos, k_goal = jax.random.split(rng)
    sim = ToySim(pos=jax.random.uniform(k_pos, (2,), minval=-0.8, maxval=0.8),
                 goal=jax.random.uniform(k_goal, (2,), minval=-0.8, maxval=0.8))
    terms = self.reward_terms(sim)
    return brax_base.State(pipeline_state=sim, obs=self._obs(sim), reward=jnp.zeros(()), done=jnp.zeros(()),
                           metrics=dict(success=terms["sparse"]), info={})

  def step(self, state, action):
    sim = state.pipeline_state
    sim = sim.replace(pos=jnp.clip(sim.pos + STEP * jnp.clip(action, -1.0, 1.0), -1.0, 1.0))
    terms = self.reward_terms(sim)
    return state.replace(pipeline_state=sim, obs=self._obs(sim), reward=terms["oracle"],
                         metrics=dict(state.metrics, success=terms["sparse"]))

  def reward_terms(self, sim):
    d = jnp.linalg.norm(sim.pos - sim.goal)
    return dict(sparse=(d < SUCCESS_RADIUS).astype(jnp.float32), oracle=1.0 - d / MAX_DIST)

  def _obs(self, sim):
    obs = {"state": jnp.concatenate([sim.pos, sim.goal - sim.pos])}
    if self.render_obs:
      obs["pixels/front"] = self.render(sim)["rgb"]
    return obs

  def render(self, sim, camera: str = "front", size: int | None = None):
    del camera
    size = size or IMAGE
    centres = (jnp.arange(size) + 0.5) / size * 2.0 - 1.0   # pixel centres over [-1, 1]
    sigma = 2.0 / size

    def blob(p):
      gx = jnp.exp(-0.5 * ((centres - p[0]) / sigma) ** 2)
      gy = jnp.exp(-0.5 * ((centres - p[1]) / sigma) ** 2)
      return gy[:, None] * gx[None, :]

    rgb = jnp.stack([blob(sim.pos), blob(sim.goal), jnp.zeros((size, size))], -1)
    return {"rgb": jnp.round(255.0 * rgb).astype(jnp.uint8)}

  @property
  def observation_size(self):
    return {k: v.shape for k, v in jax.eval_shape(self.reset, jax.random.PRNGKey(0)).obs.items()}

  @property
  def action_size(self):
    return 2

  @property
  def backend(self):
    return "toy"


def _centroid(channel):
  size = channel.shape[-1]
  centres = (jnp.arange(size) + 0.5) / size * 2.0 - 1.0
  w = channel.astype(jnp.float32)
  total = w.sum((-2, -1)) + 1e-6
  return jnp.stack([(w.sum(-2) * centres).sum(-1) / total, (w.sum(-1) * centres).sum(-1) / total], -1)


def red_x(frames):
  """The point's x coordinate read from uint8 [..., H, W, 3] frames."""
  return _centroid(frames[..., 0])[..., 0]


def pixel_distance(frames):
  """Point-goal distance read from uint8 [..., H, W, 3] frames (red and green blob centroids)."""
  return jnp.linalg.norm(_centroid(frames[..., 0]) - _centroid(frames[..., 1]), axis=-1)


def score_fn(prev, cur, instruction_ids=None):
  """A stand-in reward model on frames: progress, completion and contrastive from the pixel distance."""
  del instruction_ids  # one task, one instruction
  d_prev, d_cur = pixel_distance(prev), pixel_distance(cur)
  return dict(progress=jnp.clip(1.0 - d_cur / MAX_DIST, 0.0, 1.0),
              completion=(d_cur < SUCCESS_RADIUS).astype(jnp.float32),
              contrastive=jnp.tanh(10.0 * (d_prev - d_cur)))


def expert_action(sim):
  delta = sim.goal - sim.pos
  return EXPERT_SPEED * jnp.clip(delta / STEP, -1.0, 1.0)


def collect_demos(env: PointReach, num: int, seed: int = 0) -> demos_lib.Demos:
  """Slow-expert demonstrations, in the layout `lrm_jax.rl.demos.collect` returns."""

  def episode(rng):
    state = env.reset(rng)

    def step(s, _):
      a = expert_action(s.pipeline_state)
      s2 = env.step(s, a)
      return s2, (s.obs, a)

    last, (obs, actions) = jax.lax.scan(step, state, None, length=env.episode_length)
    return obs, actions, env.reward_terms(last.pipeline_state)["sparse"] > 0

  obs, actions, success = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.PRNGKey(seed), num))
  return demos_lib.Demos(obs=jax.tree.map(np.asarray, obs), action=np.asarray(actions),
                         mask=np.ones(actions.shape[:2], bool), success=np.asarray(success))
