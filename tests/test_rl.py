"""RL refinement: interval-hold rewards, demos, BC into brax PPO, ground-truth evaluation, a fused toy refinement."""
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from lrm_jax.rewards import interval
from lrm_jax.rl import bc
from lrm_jax.rl import demos as demos_lib
from lrm_jax.rl import evaluate
from lrm_jax.rl import ppo
from lrm_jax.rl import residual
from tests import fixtures_rl as toy

B = 2


# ---- interval-hold reward ------------------------------------------------------------------------------------------
def _frame_mean(frames):
  """A position-sensitive probe of a frame: the red blob's x centroid (the point's x), shifted positive."""
  return toy.red_x(frames) + 2.0


def _probe_score_fn(calls):
  """progress = probe of the current frame, completion = probe of the previous-query frame; counts its calls."""

  def score_fn(prev, cur, ids):
    del ids
    jax.debug.callback(lambda: calls.append(1))
    return dict(progress=_frame_mean(cur), completion=_frame_mean(prev), contrastive=jnp.zeros(cur.shape[0]))

  return score_fn


def _reward_config(**kw):
  c = interval.default_config()
  c.image_size = toy.IMAGE
  c.update(kw)
  return c


def _run(env, score_fn, config, steps, episode_length=7, set_steps=None, seed=0):
  """Steps the training stack with fixed actions; returns per-step states (host) and the initial state."""
  wrapped = interval.wrap_for_training(env, config, score_fn, episode_length=episode_length)
  state = jax.jit(wrapped.reset)(jax.random.split(jax.random.PRNGKey(seed), B))
  if set_steps is not None:
    state.info["steps"] = jnp.asarray(set_steps, jnp.float32)
  first = state
  step = jax.jit(wrapped.step)
  out = []
  for i in range(steps):
    state = step(state, jnp.full((B, 2), 0.3 if (i % episode_length) % 2 else -0.2))  # same per episode
    out.append(jax.device_get(state))
  return first, out


def test_interval_hold_queries_only_on_due_steps_and_holds_values():
  env = toy.PointReach()
  calls = []
  config = _reward_config(reward="lrm_tri", interval=3)
  first, states = _run(env, _probe_score_fn(calls), config, steps=10)
  jax.effects_barrier()
  # Episode steps 0..6 then an auto-reset (episode_length 7): due at 0, 3, 6 and again at 7 (new episode's step 0).
  due = [i for i in range(10) if (i % 7) % 3 == 0]
  assert due == [0, 3, 6, 7]
  assert len(calls) == len(due), "score_fn ran on steps where no env was due"
  render = jax.vmap(lambda sim: env.render(sim, "front", toy.IMAGE)["rgb"])
  first_frame_mean = _frame_mean(render(first.pipeline_state))
  prev_query_frame_mean = None
  for i, s in enumerate(states):
    queried = np.asarray(s.metrics["lrm/queried"])
    np.testing.assert_array_equal(queried, float(i in due))
    if i in due:
      if i % 7 == 0:  # first step of an episode: the previous frame is the episode's first frame
        np.testing.assert_allclose(s.metrics["lrm/completion"], first_frame_mean, rtol=1e-6)
      else:
        np.testing.assert_allclose(s.metrics["lrm/completion"], prev_query_frame_mean, rtol=1e-6)
      prev_query_frame_mean = s.metrics["lrm/progress"]
      held = {k: s.metrics[f"lrm/{k}"] for k in ("progress", "completion", "contrastive")}
    else:
      for k in held:
        np.testing.assert_array_equal(s.metrics[f"lrm/{k}"], held[k])
    expected = (held["progress"] + held["completion"] + (held["contrastive"] + 1) / 2) / 3
    np.testing.assert_allclose(s.reward, expected, rtol=1e-6)
  # Episode 2 repeats episode 1's start (brax auto-reset) and actions: same first query.
  np.testing.assert_allclose(states[7].metrics["lrm/progress"], states[0].metrics["lrm/progress"], rtol=1e-6)


def test_interval_hold_scores_the_post_step_frame_against_the_first_frame():
  env = toy.PointReach()
  # Without EpisodeWrapper the wrapper counts episode steps itself.
  wrapped = interval.IntervalReward(interval.brax_training.VmapWrapper(env),
                                    _reward_config(reward="lrm_contrastive", interval=2), toy.score_fn, base_env=env)
  state = wrapped.reset(jax.random.split(jax.random.PRNGKey(0), B))
  action = jnp.full((B, 2), -0.2)
  stepped = wrapped.step(state, action)
  frames = jax.vmap(lambda sim: env.render(sim, "front", toy.IMAGE)["rgb"])
  by_hand = jax.vmap(env.step)(jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), B)), action)
  expected = toy.score_fn(frames(state.pipeline_state), frames(by_hand.pipeline_state))["contrastive"]
  np.testing.assert_allclose(stepped.reward, expected, rtol=1e-5, atol=1e-6)
  assert np.abs(np.asarray(expected)).max() > 0.1  # the point moved: a real signal, not 0 == 0
  np.testing.assert_array_equal(stepped.info["lrm/t"], [1, 1])


def test_interval_hold_updates_only_due_envs():
  env = toy.PointReach()
  calls = []
  config = _reward_config(reward="lrm_progress", interval=2)
  # env 0 is at episode step 0, env 1 at step 1: they are due on alternate steps.
  _, states = _run(env, _probe_score_fn(calls), config, steps=4, episode_length=20, set_steps=[0, 1])
  jax.effects_barrier()
  assert len(calls) == 4  # some env is due on every step
  q = np.stack([s.metrics["lrm/queried"] for s in states])
  np.testing.assert_array_equal(q, [[1, 0], [0, 1], [1, 0], [0, 1]])
  p = np.stack([s.metrics["lrm/progress"] for s in states])
  assert p[0, 1] == 0.0  # env 1 not yet queried: still the reset value
  assert p[1, 0] == p[0, 0] and p[2, 1] == p[1, 1] and p[3, 0] == p[2, 0]
  assert p[2, 0] != p[0, 0] and p[3, 1] != p[1, 1]


def test_progress_shaping_is_exactly_gamma_phi_next_minus_phi():
  env = toy.PointReach()
  gamma = 0.9
  config = _reward_config(reward="lrm_progress", interval=2, shaping=True, gamma=gamma)
  _, states = _run(env, toy.score_fn, config, steps=9, episode_length=5)
  phi_old = np.zeros(B)
  for i, s in enumerate(states):
    phi = np.asarray(s.metrics["lrm/progress"])
    if i % 5 == 0:
      phi_old = np.zeros(B)  # Phi = 0 before an episode's first query
    np.testing.assert_allclose(s.reward, gamma * phi - phi_old, rtol=1e-6, atol=1e-7)
    phi_old = phi


def test_oracle_shaping_is_exactly_gamma_phi_next_minus_phi():
  env = toy.PointReach()
  gamma = 0.9
  config = _reward_config(reward="oracle", shaping=True, gamma=gamma)
  _, states = _run(env, None, config, steps=9, episode_length=5)
  phi_old = np.zeros(B)
  for i, s in enumerate(states):
    phi = np.asarray(s.metrics["privileged/oracle"])
    if i % 5 == 0:
      phi_old = np.zeros(B)  # Phi = 0 before an episode's first step, whatever the auto-reset left in metrics
    np.testing.assert_allclose(s.reward, gamma * phi - phi_old, rtol=1e-6, atol=1e-7)
    phi_old = phi


def test_privileged_baselines_and_tri_formula():
  env = toy.PointReach()
  for mode in ("sparse", "oracle"):
    _, states = _run(env, None, _reward_config(reward=mode), steps=3)
    for s in states:
      np.testing.assert_allclose(s.reward, s.metrics[f"privileged/{mode}"])
  held = dict(progress=jnp.array([0.5]), completion=jnp.array([1.0]), contrastive=jnp.array([-1.0]))
  np.testing.assert_allclose(interval.combine(held, "lrm_tri"), [0.5])
  _, states = _run(env, lambda p, c, i: dict(similarity=_frame_mean(c)), _reward_config(reward="vlmrm"), steps=1)
  np.testing.assert_allclose(states[0].reward, states[0].metrics["lrm/similarity"])


def test_reward_config_errors_are_one_line():
  env = toy.PointReach()
  cases = [
      (dict(reward="nope"), toy.score_fn, "unknown reward 'nope'"),
      (dict(reward="lrm_progress"), None, "needs a score_fn"),
      (dict(reward="lrm_completion", shaping=True), toy.score_fn, "shaping applies to progress-like"),
      (dict(interval=0), toy.score_fn, "interval must be >= 1"),
  ]
  for kw, fn, msg in cases:
    with pytest.raises(ValueError, match=msg):
      interval.wrap_for_training(env, _reward_config(**kw), fn, episode_length=5)
  only_progress = lambda p, c, i: dict(progress=_frame_mean(c))
  wrapped = interval.wrap_for_training(env, _reward_config(reward="lrm_tri"), only_progress, episode_length=5)
  state = wrapped.reset(jax.random.split(jax.random.PRNGKey(0), B))
  with pytest.raises(ValueError, match="score_fn returned keys"):
    wrapped.step(state, jnp.zeros((B, 2)))


# ---- evaluation ----------------------------------------------------------------------------------------------------
def test_wilson_interval_known_values():
  lo, hi = evaluate.wilson_interval(8, 10)
  assert abs(lo - 0.4902) < 1e-3 and abs(hi - 0.9433) < 1e-3
  assert evaluate.wilson_interval(0, 256)[0] == 0.0 and evaluate.wilson_interval(256, 256)[1] == 1.0
  lo, hi = evaluate.wilson_interval(128, 256)
  assert lo < 0.5 < hi and abs((hi - lo) - 0.1208) < 1e-3
  with pytest.raises(ValueError, match="n >= 1"):
    evaluate.wilson_interval(0, 0)


def _scripted(speed):
  def make_policy(params, deterministic=True):
    del params, deterministic

    def policy(obs, key):
      del key
      return speed * jnp.clip(obs["state"][..., 2:] / toy.STEP, -1.0, 1.0), {}

    return policy

  return make_policy


def test_evaluate_success_rate_interval_and_video():
  env = toy.PointReach()
  config = evaluate.default_config()
  config.num_episodes, config.chunk, config.video_episodes, config.video_size = 256, 64, 2, 8
  fast = evaluate.evaluate(env, _scripted(1.0), None, config)
  assert fast["success_rate"] == 1.0 and fast["num_episodes"] == 256 and fast["ci_high"] == 1.0
  assert fast["ci_low"] > 0.98
  assert fast["frames"].shape == (2, toy.EPISODE_LENGTH + 1, 8, 8, 3) and fast["frames"].dtype == np.uint8
  still = evaluate.evaluate(env, _scripted(0.0), None, config)
  assert still["success_rate"] < 0.1 and still["ci_low"] <= still["success_rate"] <= still["ci_high"]
  config.video_episodes = 0
  config.num_episodes = 100  # not a multiple of the chunk: padding is dropped
  assert evaluate.evaluate(env, _scripted(1.0), None, config)["num_episodes"] == 100
  config.success = "sometimes"
  with pytest.raises(ValueError, match="eval.success"):
    evaluate.evaluate(env, _scripted(1.0), None, config)


# ---- BC and PPO -----------------------------------------------------------------------------------------------------
def _bc_config(**kw):
  c = bc.default_config()
  c.policy_hidden, c.value_hidden, c.steps = (32, 32), (32, 32), 500
  c.update(kw)
  return c


@pytest.fixture(scope="module")
def toy_bc():
  env = toy.PointReach()
  return env, bc.train(toy.collect_demos(env, 64), _bc_config())


def _refine_config(iterations, **reward):
  c = ml_collections.ConfigDict(dict(ppo=ppo.default_config(), reward=_reward_config(**reward),
                                     eval=evaluate.default_config()))
  p = c.ppo
  p.iterations, p.num_envs, p.unroll_length, p.batch_size, p.num_minibatches = iterations, 64, 10, 64, 4
  p.num_updates_per_batch, p.learning_rate, p.discounting = 4, 1e-3, 0.9
  p.critic_learning_rate, p.critic_warmup_iterations = 1e-3, 0
  c.eval.chunk = 256
  return c


def test_bc_clones_the_expert(toy_bc):
  env, result = toy_bc
  assert result.losses[-1] < 0.1 * result.losses[0]
  normalizer, policy_params, value_params = result.params
  assert int(normalizer.count.lo) == result.normalizer_count == 64 * toy.EPISODE_LENGTH
  s = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(3), 16))
  action, _ = result.make_policy(result.params, deterministic=True)(s.obs, jax.random.PRNGKey(0))
  err = np.abs(np.asarray(action) - np.asarray(jax.vmap(toy.expert_action)(s.pipeline_state)))
  assert err.mean() < 0.1, err.mean()


def test_bc_params_load_into_ppo_train(toy_bc, tmp_path):
  env, result = toy_bc
  config = _refine_config(1, reward="lrm_progress", interval=2)
  out = ppo.make_train(config, score_fn=toy.score_fn, workdir=str(tmp_path))(env, result)
  s = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(4), 8))
  ours = result.make_policy(result.params, deterministic=True)(s.obs, None)[0]
  initial = out.make_policy(out.initial_params, deterministic=True)(s.obs, None)[0]
  np.testing.assert_allclose(initial, ours, rtol=1e-6, atol=1e-6)
  # The normaliser stays frozen through PPO (the cloned policy's inputs do not move).
  np.testing.assert_array_equal(out.params[0].mean["state"], result.params[0].mean["state"])
  assert len(out.history) == 1 and "training/policy_loss" in out.history[0]
  assert os.listdir(tmp_path / "checkpoints"), "no brax checkpoint written"
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path)), "no clu/TensorBoard summary"
  # BC's params, brax's unpmapped ones and host copies all run through one compiled evaluation rollout.
  c = evaluate.default_config()
  c.num_episodes = c.chunk = 8
  for p in (result.params, out.initial_params, out.params):
    evaluate.evaluate(env, result.make_policy, p, c)
  assert evaluate.make_rollout(env, result.make_policy)._cache_size() == 1


def test_fused_refinement_improves_the_toy_task(toy_bc):
  env, result = toy_bc
  config = _refine_config(40, reward="lrm_tri", interval=2)
  before = evaluate.evaluate(env, result.make_policy, result.params, config.eval)
  out = ppo.make_train(config, score_fn=toy.score_fn)(env, result)
  after = evaluate.evaluate(env, out.make_policy, out.params, config.eval)
  assert after["success_rate"] > before["success_rate"] + 0.3, (before["success_rate"], after["success_rate"])
  assert after["ci_low"] > before["ci_high"]
  # brax's training epoch compiles once: later iterations are far quicker than the first (brax_compat's mesh).
  walls = [h["wall_s"] for h in out.history]
  assert max(walls[1:]) < 0.5 * walls[0], walls


def test_bc_normaliser_floors_the_std_of_features_constant_in_the_demos():
  """PPO visits states the demos never show: a feature constant in the demos (a cube's height while pressing
  buttons) must not be divided by ~0, or a few centimetres of exploration read as many standard deviations and the
  critic runs away (lrm_jax/rl/bc.py, bench/RESULTS.md)."""
  env = toy.PointReach()
  demos = toy.collect_demos(env, 8)
  demos.obs["state"] = np.concatenate([demos.obs["state"], np.full(demos.obs["state"].shape[:2] + (1,), 0.3,
                                                                   np.float32)], -1)
  result = bc.train(demos, _bc_config(steps=1))
  from brax.training.acme import running_statistics
  normalizer = result.params[0]
  assert float(normalizer.std["state"][-1]) == pytest.approx(np.sqrt(bc.default_config().normalizer_std_eps))
  moved = np.asarray(demos.obs["state"][0, :1]) + np.array([0.0, 0.0, 0.0, 0.0, 0.05], np.float32)
  z = np.asarray(running_statistics.normalize({"state": jnp.asarray(moved)}, normalizer)["state"])
  assert abs(z[0, -1]) < 0.2, z  # 5 cm off the demos' constant: a fraction of a unit, not ~5 (the old 1e-4 floor)


def _residual_config(**kw):
  c = residual.default_config()
  c.enabled = True
  c.update(kw)
  return c


def test_residual_policy_starts_exactly_at_the_cloned_policy_and_then_learns(toy_bc):
  env, result = toy_bc
  res = residual.start_from(result, _residual_config(action_scale=0.5, init_std=0.2))
  s = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(5), 32))
  cloned = result.make_policy(result.params, deterministic=True)(s.obs, None)[0]
  start = res.make_policy(res.params, deterministic=True)(s.obs, None)[0]
  np.testing.assert_array_equal(np.asarray(start), np.asarray(cloned))
  # Exploration is a Gaussian in action space with the configured std, on every action dimension.
  sampled, extras = res.make_policy(res.params)(s.obs, jax.random.PRNGKey(0))
  np.testing.assert_allclose(np.std(np.asarray(sampled - start)), 0.2, rtol=0.3)
  assert extras["distribution_params"][1].shape == start.shape
  # PPO moves the residual (not the frozen cloned policy), and the result evaluates through the same program.
  config = _refine_config(2, reward="lrm_progress", interval=2)
  out = ppo.make_train(config, score_fn=toy.score_fn)(env, res)
  moved = np.asarray(res.make_policy(out.params, deterministic=True)(s.obs, None)[0])
  assert 0 < np.abs(moved - np.asarray(start)).max() <= 0.5 + 1e-6  # never further than action_scale
  with pytest.raises(ValueError, match="residual.action_scale"):
    residual.start_from(result, _residual_config(action_scale=0.0))


def test_pixel_policy_builds_and_takes_a_bc_step():
  env = toy.PointReach(render_obs=True)
  demos = toy.collect_demos(env, 4)
  assert demos.obs["pixels/front"].dtype == np.uint8
  result = bc.train(demos, _bc_config(pixels=True, steps=1, batch_size=8, cnn_channels=(4, 8)))
  assert np.isfinite(result.losses).all()
  s = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 3))
  action, _ = result.make_policy(result.params, deterministic=True)(s.obs, None)
  assert action.shape == (3, 2) and np.isfinite(np.asarray(action)).all()
  with pytest.raises(ValueError, match="needs pixel observations"):
    bc.train(toy.collect_demos(toy.PointReach(), 2), _bc_config(pixels=True, steps=1))


def test_critic_warmup_trains_the_value_function_only(toy_bc):
  """During the critic warm-up brax's update leaves the policy as BC made it and moves the value function."""
  env, result = toy_bc
  config = _refine_config(2, reward="lrm_progress", interval=2)
  config.ppo.critic_warmup_iterations = 2
  out = ppo.make_train(config, score_fn=toy.score_fn)(env, result)
  for before, after in zip(jax.tree.leaves(result.params[1]), jax.tree.leaves(out.params[1])):
    np.testing.assert_array_equal(before, after)
  moved = [not np.allclose(b, a) for b, a in zip(jax.tree.leaves(result.params[2]), jax.tree.leaves(out.params[2]))]
  assert any(moved)
  config.ppo.critic_warmup_iterations = 0
  out = ppo.make_train(config, score_fn=toy.score_fn)(env, result)
  assert any(not np.allclose(b, a) for b, a in zip(jax.tree.leaves(result.params[1]), jax.tree.leaves(out.params[1])))


def test_ppo_config_errors_are_one_line(toy_bc):
  env, result = toy_bc
  config = _refine_config(1)
  config.ppo.batch_size, config.ppo.num_minibatches = 32, 3
  with pytest.raises(ValueError, match="must be a multiple of ppo.num_envs"):
    ppo.make_train(config, score_fn=toy.score_fn)
  config = _refine_config(1)
  config.ppo.batch_size, config.ppo.num_minibatches, config.ppo.unroll_length = 64, 1, 5
  with pytest.raises(ValueError, match="< episode_length"):
    ppo.make_train(config, score_fn=toy.score_fn)(env, result)


# ---- demonstrations on LRM-Bench -----------------------------------------------------------------------------------
def test_collect_clean_expert_demos():
  from lrm_jax.envs import registry
  env = registry.make("press_button")
  demos = demos_lib.collect(env, 2, seed=0, tail_steps=3)
  n, t = demos.action.shape[:2]
  assert (n, t) == (2, env.episode_length) and demos.action.shape[2] == 4
  assert demos.obs["state"].shape[:2] == (2, env.episode_length) and demos.success.all()
  assert 0 < demos.num_steps < 2 * env.episode_length  # cut a few steps after the expert finished
  assert np.abs(demos.action).max() <= 1.0
