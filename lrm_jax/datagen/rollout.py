"""Batched scripted-expert rollouts with pixels: one jitted program per scene family (tasks, failure modes and
end-effector looks are all data), returning numpy episodes ready for the RLDS builder.

An episode of T actions has T + 1 observations; following RLDS, step t holds observation t and action t, and the
last step holds the final observation with a zero action. Episodes end when the task's own episode length is reached
or a few steps after the expert's program finished (so clean episodes end on their success frame).
"""
import jax
import jax.numpy as jnp
import numpy as np

from lrm_jax.envs import base
from lrm_jax.envs import experts

TAIL_STEPS = 4  # observations kept after the expert finished, so the final frames show the settled result
# XLA's CPU runtime (jaxlib 0.10.2) hung for good -- every worker idle, the result never ready -- on batches of 64+
# environments while the scenes used MuJoCo's implicitfast integrator (its batched factorisation; scenes now use
# Euler, which runs batch 64). Chunking on CPU stays as a guard and bounds host memory.
MAX_CPU_BATCH = 32


class Rollout:
  """`Rollout(env)(rngs, task_ids, modes, arrays=None)` -> list of episode dicts (see `_episodes`)."""

  def __init__(self, env: base.FamilyEnv, *, camera: str = "front", image_size: int = 64, noise_std: float = 0.5,
               shadows: bool = True, semantic_seg: bool = False):
    """semantic_seg: also record `seg` uint8 [T+1, H, W], the frames' `base.SEMANTIC_CLASSES` (vision pretraining)."""
    self.env = env
    self.semantic_seg = semantic_seg
    self.programs = experts.ExpertPrograms(env)
    self.camera, self.image_size, self.noise_std, self.shadows = camera, image_size, noise_std, shadows
    self.length = env.max_episode_length
    self._run = jax.jit(jax.vmap(self._episode, in_axes=(None, 0, 0, 0)))

  def _episode(self, arrays, rng, task_id, mode):
    env = self.env.with_embodiment(arrays)
    programs = self.programs  # reads only ids and static specs, which all embodiments share
    k_reset, k_expert, k_steps = jax.random.split(rng, 3)
    state = env.reset(k_reset, task_id)
    es = programs.init(k_expert, state.pipeline_state, mode, self.noise_std)

    def observe(s):
      sim = s.pipeline_state
      stage = env.stage(sim)
      frame = env.render(sim, self.camera, self.image_size, self.shadows)
      out = dict(image=frame["rgb"], state=s.obs["state"], stage=stage, oracle=env.reward_terms(sim, stage)["oracle"])
      if self.semantic_seg:
        out["seg"] = env.semantic_seg(sim, frame["seg"])
      return out

    def step(carry, k):
      s, es = carry
      obs = observe(s)
      action, es_next = programs.act(s.pipeline_state, es, k)
      s_next = env.step(s, action)
      out = dict(obs, action=action, finished=programs.finished(es))
      return (s_next, es_next), out

    (last, _), traj = jax.lax.scan(step, (state, es), jax.random.split(k_steps, self.length))
    final = observe(last)
    traj = jax.tree.map(lambda xs, x: jnp.concatenate([xs, x[None]]), {k: traj[k] for k in final}, final) | {
        "action": traj["action"], "finished": traj["finished"]}
    return traj, state.pipeline_state.task

  def __call__(self, rngs, task_ids, modes, arrays=None) -> list[dict]:
    """Runs the episodes, on CPU in chunks of at most MAX_CPU_BATCH (the last chunk padded: one compiled shape)."""
    arrays = self.env.embodiment_arrays() if arrays is None else arrays
    rngs, task_ids, modes = np.asarray(rngs), np.asarray(task_ids, np.int32), np.asarray(modes, np.int32)
    n = len(task_ids)
    chunk = min(n, MAX_CPU_BATCH) if jax.default_backend() == "cpu" else n
    out = []
    for start in range(0, n, chunk):
      idx = np.minimum(np.arange(start, start + chunk), n - 1)  # pad by repeating the last episode
      traj, task_vars = self._run(arrays, rngs[idx], task_ids[idx], modes[idx])
      keep = min(chunk, n - start)
      out += self._episodes(jax.tree.map(lambda x: np.asarray(x)[:keep], traj),
                            jax.tree.map(lambda x: np.asarray(x)[:keep], task_vars), modes[idx][:keep])
    return out

  def _episodes(self, traj, task_vars, modes) -> list[dict]:
    """Host side: trims each episode, attaches instruction text and metadata."""
    out = []
    for b in range(traj["image"].shape[0]):
      tv = jax.tree.map(lambda x: x[b], task_vars)
      task = self.env.tasks[int(tv["task_id"])]
      finished = np.flatnonzero(traj["finished"][b])
      n_actions = task.episode_length
      if finished.size:
        n_actions = min(n_actions, int(finished[0]) + TAIL_STEPS)
      stage = traj["stage"][b, :n_actions + 1].astype(np.int32)
      action = np.concatenate([traj["action"][b, :n_actions], np.zeros((1, 4), np.float32)])
      success = bool(stage[-1] >= task.num_stages)
      out.append(dict(
          images=traj["image"][b, :n_actions + 1], state=traj["state"][b, :n_actions + 1], action=action,
          # RLDS reward of step t is received after action t: sparse success of the next observation.
          reward=np.concatenate([(stage[1:] >= task.num_stages).astype(np.float32), np.zeros(1, np.float32)]),
          oracle=traj["oracle"][b, :n_actions + 1], stage=stage, instruction=self.env.instruction(tv),
          task=task.name, success=success, num_stages=task.num_stages, noise=experts.MODES[int(modes[b])]))
      if "seg" in traj:
        out[-1]["seg"] = traj["seg"][b, :n_actions + 1]
    return out
