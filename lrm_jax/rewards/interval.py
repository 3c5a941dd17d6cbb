"""Rewards for RL from rendered frames, queried every K env steps and held in between ("interval-hold").

`IntervalReward` is a brax `Wrapper` that replaces the environment's reward by one computed from the env's pure-JAX
renderer and a `score_fn` (the reward model, plugged in by `lrm_jax.rewards.scoring` later):

    score_fn(prev_frames uint8[B, H, W, 3], cur_frames uint8[B, H, W, 3], instruction_ids int32[B]) -> {key: f32[B]}

with keys among `progress` (in [0, 1]), `completion` (in [0, 1]) and `contrastive` (in [-1, 1], > 0 when the
current frame is closer to completion than the previous one), or `similarity` for the VLM-RM baseline.
`prev_frames` is each env's frame at its previous query (its episode's first frame at the first query).
`instruction_ids` index each env's instruction in `base_env.instruction_table()` (`base_env.instruction_index`;
zeros for an env without one): instructions vary per episode (colours, order, phrasing), so the reward model looks
up each env's pre-tokenised instruction inside the jitted step (`scoring.score_fn_for_rl`).

Interval-hold: an env is *due* at its episode steps 0, K, 2K, ...: the first step of an episode always queries. The
reward model runs under one scalar `lax.cond` when any env is due (in PPO every env starts together, so that is one
step in K), only due envs take the new scores, the others keep theirs. Rendering happens inside the cond too, so
between queries no frame is drawn (unless the policy renders pixels itself: those are reused when they match).

Reward modes (`config.reward`):
  lrm_progress, lrm_completion, lrm_contrastive   the held term itself
  lrm_tri      (progress + completion + (contrastive + 1) / 2) / 3: the paper code's mean of the three signals,
               with the contrastive answer rescaled from [-1, 1] to [0, 1] first (the code's rescaling variant) so
               that each term has the same range and none dominates or turns the sum negative
  vlmrm        the held `similarity` (a frame-instruction similarity, VLM-RM style)
  sparse, oracle   the env's privileged terms (`env.reward_terms`), every step, no rendering: baselines with the
               same wrapper, config and metrics as the reward-model modes
`config.shaping` (progress-like modes: `SHAPEABLE`) replaces the progress term by the potential-based shaping
gamma * Phi(s') - Phi(s) with Phi = held progress (the oracle itself for `oracle`) and Phi = 0 before an episode's
first query; it leaves the optimal policy unchanged (Ng et al., 1999), so it rewards *making* progress rather than
sitting in a high-progress state. It also takes the time left out of the return: with a per-step reward of Phi, a
state's return grows with the steps remaining, which a critic that does not see time cannot predict.

Per-term values go to `state.metrics` (`lrm/<term>`, `lrm/queried`, and `privileged/{sparse,oracle}` when the env
has `reward_terms`), so brax's episode and eval metrics report them next to the reward.
"""
from typing import Any, Callable, Optional

from brax.envs import base as brax_base
from brax.envs.wrappers import training as brax_training
import jax
import jax.numpy as jnp
import ml_collections

ScoreFn = Callable[[jax.Array, jax.Array, jax.Array], dict[str, jax.Array]]

NEEDS = {
    "lrm_progress": ("progress",),
    "lrm_completion": ("completion",),
    "lrm_contrastive": ("contrastive",),
    "lrm_tri": ("progress", "completion", "contrastive"),
    "vlmrm": ("similarity",),
}
PRIVILEGED = ("sparse", "oracle")
MODES = tuple(NEEDS) + PRIVILEGED
# Modes with a progress-like potential that `shaping` turns into gamma * Phi(s') - Phi(s).
SHAPEABLE = ("lrm_progress", "lrm_tri", "oracle")


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      reward="lrm_progress",  # one of MODES
      interval=10,            # K: query the reward model every K env steps of an episode
      camera="front",
      image_size=64,          # frames given to score_fn are image_size x image_size
      shaping=False,          # progress -> gamma * Phi(s') - Phi(s) (progress modes only)
      gamma=0.99,             # shaping discount; make it PPO's discounting (lrm_jax.rl.ppo does)
  ))


def check_config(config: ml_collections.ConfigDict, score_fn: Optional[ScoreFn]) -> None:
  """Raises a one-line ValueError on a bad reward config."""
  if config.reward not in MODES:
    raise ValueError(f"unknown reward {config.reward!r}; expected one of {list(MODES)}")
  if config.reward not in PRIVILEGED and score_fn is None:
    raise ValueError(f"reward {config.reward!r} needs a score_fn (the reward model); only {list(PRIVILEGED)} do not")
  if int(config.interval) < 1:
    raise ValueError(f"reward interval must be >= 1, got {config.interval}")
  if config.shaping and config.reward not in SHAPEABLE:
    raise ValueError(f"shaping applies to progress-like rewards {list(SHAPEABLE)}, not {config.reward!r}")


def combine(held: dict[str, jax.Array], mode: str) -> jax.Array:
  """The reward of a mode from its (held) terms; `lrm_tri` rescales contrastive to [0, 1] (module docstring)."""
  if mode == "lrm_tri":
    return (held["progress"] + held["completion"] + (held["contrastive"] + 1.0) / 2.0) / 3.0
  (key,) = NEEDS[mode]
  return held[key]


class IntervalReward(brax_base.Wrapper):
  """Interval-hold reward on a *batched* env (wrap `VmapWrapper(env)`; see `wrap_for_training` for why).

  `base_env` renders frames (`base_env.render(sim, camera, size)["rgb"]`) and gives privileged terms
  (`base_env.reward_terms(sim)`); it defaults to `env.unwrapped`.
  """

  def __init__(self, env: brax_base.Env, config: ml_collections.ConfigDict, score_fn: Optional[ScoreFn] = None,
               base_env: Any = None):
    super().__init__(env)
    check_config(config, score_fn)
    self.config = config
    self.score_fn = score_fn
    self.base_env = base_env if base_env is not None else env.unwrapped
    self.mode = config.reward
    self.needs = NEEDS.get(self.mode, ())
    self.privileged = self.mode in PRIVILEGED
    self.has_terms = hasattr(self.base_env, "reward_terms")
    if self.privileged and not self.has_terms:
      raise ValueError(f"reward {self.mode!r} needs env.reward_terms(sim), which {type(self.base_env).__name__} lacks")

  # ---- helpers ----------------------------------------------------------------------------------------------------
  def _frames(self, state: brax_base.State) -> jax.Array:
    """uint8 [B, H, W, 3] frames of the batch; reuses the policy's pixel observation when it is the same image."""
    size = int(self.config.image_size)
    pix = state.obs.get(f"pixels/{self.config.camera}") if isinstance(state.obs, dict) else None
    if pix is not None and pix.dtype == jnp.uint8 and pix.shape[1:] == (size, size, 3):
      return pix
    render = lambda sim: self.base_env.render(sim, self.config.camera, size)["rgb"]
    return jax.vmap(render)(state.pipeline_state).astype(jnp.uint8)

  def _instruction_ids(self, state: brax_base.State) -> jax.Array:
    if hasattr(self.base_env, "instruction_index"):
      return jax.vmap(self.base_env.instruction_index)(state.pipeline_state)
    return jnp.zeros(state.reward.shape, jnp.int32)

  def _privileged_metrics(self, state: brax_base.State) -> dict[str, jax.Array]:
    if not self.has_terms:
      return {}
    terms = jax.vmap(self.base_env.reward_terms)(state.pipeline_state)
    return {f"privileged/{k}": terms[k].astype(jnp.float32) for k in PRIVILEGED}

  def _metrics(self, state, held, queried, privileged):
    m = dict(state.metrics, **privileged)
    m.update({f"lrm/{k}": v for k, v in held.items()})
    m["lrm/queried"] = queried.astype(jnp.float32)
    return m

  # ---- brax Env ---------------------------------------------------------------------------------------------------
  def reset(self, rng: jax.Array) -> brax_base.State:
    state = self.env.reset(rng)
    batch = state.reward.shape
    if not batch:
      raise ValueError("IntervalReward needs a batched env: wrap VmapWrapper(env), see wrap_for_training")
    info = dict(state.info)
    info["lrm/t"] = jnp.zeros(batch, jnp.int32)
    held = {k: jnp.zeros(batch, jnp.float32) for k in self.needs}
    if not self.privileged:
      # brax's AutoResetWrapper restores pipeline_state and obs, never info, and it always restores the *same*
      # first state; so this frame is every later episode's first frame too, and the first query can use it.
      frame = self._frames(state)
      info["lrm/first_frame"] = frame
      info["lrm/prev_frame"] = frame
      info["lrm/held"] = held
    metrics = self._metrics(state, held, jnp.zeros(batch, bool), self._privileged_metrics(state))
    return state.replace(reward=jnp.zeros(batch, jnp.float32), info=info, metrics=metrics)

  def step(self, state: brax_base.State, action: jax.Array) -> brax_base.State:
    # Steps already taken in this episode: EpisodeWrapper's counter (AutoResetWrapper zeroes it for envs that
    # were done before stepping the wrappers below it) when present, else our own (no auto-reset then).
    t = state.info["steps"].astype(jnp.int32) if "steps" in state.info else state.info["lrm/t"]
    nstate = self.env.step(state, action)
    info = dict(nstate.info)
    info["lrm/t"] = t + 1
    privileged = self._privileged_metrics(nstate)
    if self.privileged:
      queried = jnp.ones_like(t, bool)
      metrics = self._metrics(nstate, {}, queried, privileged)
      reward = privileged[f"privileged/{self.mode}"]
      if self.config.shaping:  # oracle: Phi = the oracle itself, 0 before an episode's first step (as below)
        phi_old = jnp.where(t == 0, 0.0, state.metrics[f"privileged/{self.mode}"])
        reward = float(self.config.gamma) * reward - phi_old
      return nstate.replace(reward=reward, info=info, metrics=metrics)

    due = (t % int(self.config.interval)) == 0
    first = t == 0
    held_old, prev_old = state.info["lrm/held"], state.info["lrm/prev_frame"]

    def query(_):
      cur = self._frames(nstate)
      prev = jnp.where(first[:, None, None, None], state.info["lrm/first_frame"], prev_old)
      scores = self.score_fn(prev, cur, self._instruction_ids(nstate))
      missing = [k for k in self.needs if k not in scores]
      if missing:
        raise ValueError(f"score_fn returned keys {sorted(scores)}; reward {self.mode!r} needs {list(self.needs)}")
      held = {k: jnp.where(due, scores[k].astype(jnp.float32), held_old[k]) for k in self.needs}
      return held, jnp.where(due[:, None, None, None], cur, prev_old)

    # A scalar predicate: a real branch, so the reward model (and the renderer) run only on steps where some env
    # is due. This is why the wrapper sits *outside* VmapWrapper: under vmap a per-env cond becomes a select that
    # evaluates both branches, i.e. the reward model would run every step.
    held, prev = jax.lax.cond(due.any(), query, lambda _: (held_old, prev_old), None)
    reward = combine(held, self.mode)
    if self.config.shaping:
      phi_old = jnp.where(first, 0.0, held_old["progress"])
      shaped = float(self.config.gamma) * held["progress"] - phi_old
      reward = combine(dict(held, progress=shaped), self.mode)
    info["lrm/held"], info["lrm/prev_frame"] = held, prev
    metrics = self._metrics(nstate, held, due, privileged)
    return nstate.replace(reward=reward.astype(jnp.float32), info=info, metrics=metrics)


def wrap_for_training(env: brax_base.Env, config: ml_collections.ConfigDict, score_fn: Optional[ScoreFn] = None,
                      *, episode_length: int, action_repeat: int = 1,
                      randomization_fn: Optional[Callable[..., Any]] = None) -> brax_base.Wrapper:
  """The training stack VmapWrapper -> IntervalReward -> EpisodeWrapper -> AutoResetWrapper (inner to outer).

  Pass it to `ppo.train(wrap_env_fn=functools.partial(wrap_for_training, config=..., score_fn=...))`.
  Why this order:
  - after VmapWrapper: the wrapper sees the whole batch, so its `lax.cond` is a scalar branch (see `step`);
  - before EpisodeWrapper: brax's episode metrics (`sum_reward`, `lrm/*`) then sum *our* reward and terms;
  - before AutoResetWrapper: the frame scored on an episode's last step is the real final state, not the next
    episode's reset state that AutoResetWrapper swaps in.
  """
  if randomization_fn is not None:
    raise ValueError("domain randomisation is not supported with IntervalReward (its vmap is brax-internal)")
  if action_repeat != 1:
    raise ValueError(f"IntervalReward counts env steps; action_repeat must be 1, got {action_repeat}")
  base_env = env
  env = brax_training.VmapWrapper(env)
  env = IntervalReward(env, config, score_fn, base_env=base_env)
  env = brax_training.EpisodeWrapper(env, episode_length, action_repeat)
  return brax_training.AutoResetWrapper(env)
