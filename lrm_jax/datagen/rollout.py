"""Batched scripted-expert rollouts with pixels: one jitted program per scene family (tasks, failure modes, cameras,
appearance randomisation and end-effector looks are all data), returning numpy episodes ready for the RLDS builder.

An episode of T actions has T + 1 observations; following RLDS, step t holds observation t and action t, and the
last step holds the final observation with a zero action. Episodes end when the task's own episode length is reached
or a few steps after the expert's program finished (so clean episodes end on their success frame).
"""
import jax
import jax.numpy as jnp
import numpy as np

from lrm_jax import sharding
from lrm_jax.envs import base
from lrm_jax.envs import experts

TAIL_STEPS = 4  # observations kept after the expert finished, so the final frames show the settled result
# XLA's CPU runtime (jaxlib 0.10.2) hung for good -- every worker idle, the result never ready -- on batches of 64+
# environments while the scenes used MuJoCo's implicitfast integrator (its batched factorisation; scenes now use
# Euler, which runs batch 64). Chunking on CPU stays as a guard and bounds host memory.
MAX_CPU_BATCH = 32


def looks(env: base.FamilyEnv, cameras, strengths, embodiment_arrays) -> dict[str, np.ndarray]:
  """Per-episode look data for `Rollout`: camera index, appearance-randomisation strength and the end-effector's
  model arrays (`env.embodiment_arrays()` of that episode's embodiment), each stacked over episodes. Looks are data,
  not program: one compiled rollout per scene family serves every camera, colour style and embodiment."""
  n = len(cameras)
  if not len(strengths) == len(embodiment_arrays) == n:
    raise ValueError(f"looks: {n} cameras, {len(strengths)} strengths and {len(embodiment_arrays)} embodiment "
                     "arrays; expected one of each per episode")
  out = {k: np.stack([a[k] for a in embodiment_arrays]) for k in env.VISUAL_FIELDS}
  out["camera"] = np.array([env.render_scene.camera_index(c) for c in cameras], np.int32)
  out["appearance_strength"] = np.asarray(strengths, np.float32)
  return out


class Rollout:
  """`Rollout(env)(rngs, task_ids, modes, looks=None)` -> list of episode dicts (see `_episodes`)."""

  def __init__(self, env: base.FamilyEnv, *, image_size: int = 64, noise_std: float = 0.5, shadows: bool = True):
    """Everything here is compiled in; per-episode looks are arguments (`looks`)."""
    self.env = env
    self.programs = experts.ExpertPrograms(env)
    self.image_size, self.noise_std, self.shadows = image_size, noise_std, shadows
    self.length = env.max_episode_length
    # Steps each task keeps at most; a chunk stops simulating and rendering once all its episodes are past theirs.
    self._task_lengths = np.array([t.episode_length for t in env.tasks], np.int32)
    self._run = jax.jit(self._batch)

  def _batch(self, look, rngs, task_ids, modes):
    """A chunk of episodes: one `lax.scan` over steps of the vmapped env. The scan runs to the family's longest
    task, but a scalar `lax.cond` skips physics and rendering on steps where every episode of the chunk is already
    past what `_episodes` keeps (its task's length, or TAIL_STEPS after its expert finished). Under a per-episode
    vmap that cond would become a select that runs both branches; hence the scan outside the vmap. Chunks hold
    tasks of similar length (`__call__` sorts them), so short tasks no longer pay for the longest one."""
    programs = self.programs  # reads only ids and static specs, which all embodiments share

    def env_of(lk):  # this episode's look: end-effector arrays and appearance strength (traced, per lane)
      return self.env.with_embodiment({k: lk[k] for k in self.env.VISUAL_FIELDS}).with_appearance_strength(
          lk["appearance_strength"])

    def start(lk, rng, task_id, mode):
      k_reset, k_expert, k_steps = jax.random.split(rng, 3)
      state = env_of(lk).reset(k_reset, task_id)
      es = programs.init(k_expert, state.pipeline_state, mode, self.noise_std)
      return state, es, jax.random.split(k_steps, self.length)

    def observe(lk, s):
      env, sim = env_of(lk), s.pipeline_state
      stage = env.stage(sim)
      frame = env.render(sim, lk["camera"], self.image_size, self.shadows)
      scene, scene_mask = env.scene_state(sim)
      # Semantic classes and the scene state are cheap: always computed, so asking for them is not another program.
      return dict(image=frame["rgb"], state=s.obs["state"], stage=stage, seg=env.semantic_seg(sim, frame["seg"]),
                  oracle=env.reward_terms(sim, stage)["oracle"], scene=scene, scene_mask=scene_mask)

    def step_one(lk, s, es, k):
      obs = observe(lk, s)
      action, es_next = programs.act(s.pipeline_state, es, k)
      s_next = env_of(lk).step(s, action)
      return (s_next, es_next), dict(obs, action=action, finished=programs.finished(es))

    state, es, keys = jax.vmap(start)(look, rngs, task_ids, modes)
    limit = jnp.asarray(self._task_lengths)[task_ids]  # last observation index `_episodes` may keep
    step_all = jax.vmap(step_one)
    _, out_shape = jax.eval_shape(step_all, look, state, es, keys[:, 0])

    def step(carry, t):
      s, es, end = carry

      def run(_):
        return step_all(look, s, es, keys[:, t])

      def skip(_):
        return (s, es), jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), out_shape)

      (s_next, es_next), out = jax.lax.cond(jnp.any(t <= end), run, skip, None)
      # `end` only shrinks, so updating it from this step's `finished` after the check skips the same steps.
      end = jnp.minimum(end, jnp.where(out["finished"], t + TAIL_STEPS, end))
      return (s_next, es_next, end), out

    (last, _, _), traj = jax.lax.scan(step, (state, es, limit), jnp.arange(self.length))
    final = jax.vmap(observe)(look, last)
    traj = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), traj)  # [T, B, ...] -> [B, T, ...]
    traj = jax.tree.map(lambda xs, x: jnp.concatenate([xs, x[:, None]], axis=1), {k: traj[k] for k in final},
                        final) | {"action": traj["action"], "finished": traj["finished"]}
    return traj, state.pipeline_state.task

  def default_looks(self, n: int, camera: str = "front") -> dict[str, np.ndarray]:
    """n episodes seen through `camera`, with the env's own embodiment and appearance strength."""
    return looks(self.env, [camera] * n, [self.env.appearance_strength] * n, [self.env.embodiment_arrays()] * n)

  def __call__(self, rngs, task_ids, modes, look=None, batch_size: int | None = None,
               semantic_seg: bool = False, on_chunk=None, cache=None) -> list[dict]:
    """Runs the episodes in chunks of `batch_size` (default: all of them; on CPU at most MAX_CPU_BATCH), the last
    chunk padded so every call has one compiled shape, grouped by task length; returns them in the order given.
    look: from `looks` (default `default_looks`). semantic_seg: also return `seg` uint8 [T+1, H, W] per episode,
    the frames' `base.SEMANTIC_CLASSES`, and `scene` / `scene_mask` float32 [T+1, len(base.SCENE_STATE)] (vision
    pretraining labels). on_chunk: called with each chunk's episode count. cache: an `episode_cache.EpisodeCache`;
    chunks found there are loaded instead of simulated, simulated ones are saved (resume after a kill)."""
    rngs, task_ids, modes = np.asarray(rngs), np.asarray(task_ids, np.int32), np.asarray(modes, np.int32)
    n = len(task_ids)
    look = self.default_looks(n) if look is None else look
    chunk = batch_size or n
    if jax.default_backend() == "cpu":
      chunk = min(chunk, MAX_CPU_BATCH)
    mesh = sharding.local_mesh()
    chunk = sharding.round_to_devices(chunk, mesh)  # each chunk's episodes are split over the local devices
    order = np.argsort(self._task_lengths[task_ids], kind="stable")
    out = [None] * n
    for start in range(0, n, chunk):
      idx = order[np.minimum(np.arange(start, start + chunk), n - 1)]  # pad by repeating the last episode
      inputs = (jax.tree.map(lambda x: x[idx], look), rngs[idx], task_ids[idx], modes[idx])
      keep = min(chunk, n - start)
      key = episodes = None
      if cache is not None:
        key = cache.key(self._settings(semantic_seg, chunk, keep),
                        dict({f"look/{k}": v for k, v in inputs[0].items()}, rngs=inputs[1], task_ids=inputs[2],
                             modes=inputs[3]))
        episodes = cache.load(key)
      if episodes is None:
        traj, task_vars = self._run(*sharding.shard_episodes(inputs, mesh))
        if not semantic_seg:
          for k in ("seg", "scene", "scene_mask"):
            traj.pop(k)
        episodes = self._episodes(jax.tree.map(lambda x: np.asarray(x)[:keep], traj),
                                  jax.tree.map(lambda x: np.asarray(x)[:keep], task_vars), modes[idx][:keep])
        if cache is not None:
          cache.save(key, episodes)
      for i, e in zip(idx[:keep], episodes):
        out[i] = e
      if on_chunk:
        on_chunk(keep)
    return out

  def _settings(self, semantic_seg: bool, chunk: int, keep: int) -> dict:
    """What besides the chunk's inputs decides its episodes (the cache key's other half)."""
    return dict(family=self.env.family, env_config=self.env.config.to_dict(), image_size=self.image_size,
                noise_std=self.noise_std, shadows=self.shadows, length=self.length, semantic_seg=semantic_seg,
                chunk=chunk, keep=keep, tail_steps=TAIL_STEPS)

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
      for k in ("seg", "scene", "scene_mask"):  # vision pretraining labels (`semantic_seg=True`)
        if k in traj:
          out[-1][k] = traj[k][b, :n_actions + 1]
    return out
