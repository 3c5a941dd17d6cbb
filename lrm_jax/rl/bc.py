"""Behaviour cloning into brax's PPO networks, so that PPO starts from the cloned policy.

`train(demos, config)` returns `params = (normalizer_params, policy_params, value_params)` in exactly the layout of
`brax.training.agents.ppo.train(restore_params=...)`, the network factory to pass as `network_factory`, and the
normaliser settings PPO must use (`BcResult.ppo_normalizer_kwargs`).

Why not brax's `bc` agent: it is online DAgger; it needs a teacher that is a stateless function of the observation
(`teacher_inference_fn(obs, key)`), while our experts are stateful waypoint interpreters (phase and timer in
`ExpertState`) that cannot label arbitrary states the student visits, and its `BCNetworks` has no value head.
So this is a small offline loop: optax Adam over random minibatches of the demonstrations, all steps in one
`lax.scan` under `jit`.

The loss: squared error between the policy's deterministic action tanh(loc) and the expert's action (as brax's bc
loss), plus a term that pulls the policy's std to `init_std`. The experts are deterministic, so a likelihood loss
would shrink the std towards zero and leave PPO nothing to explore with; a fixed target std lets PPO start with
a chosen amount of exploration around the cloned mean.

Observation normalisation: the statistics of the demo observations, in brax's `ema` running-statistics mode. PPO
must keep them frozen (`normalize_until_count` = the demo count; brax's Welford mode ignores `until_count`, hence
EMA): the cloned policy is a function of the normalised inputs, and moving the statistics would change the policy
before PPO took a single gradient step.

Pixel policies (`config.pixels`): brax's vision networks (a small CNN on `pixels/<camera>` concatenated with the
normalised state vector), with uint8 frames cast to [0, 1] inside the network so rollouts keep storing bytes.
"""
import dataclasses
import functools
from typing import Any, Callable, Mapping

from brax.training import networks as brax_networks
from brax.training import types
from brax.training.acme import running_statistics
from brax.training.acme import specs
from brax.training.agents.ppo import networks as ppo_networks
from brax.training.agents.ppo import networks_vision
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from lrm_jax.rl import demos as demos_lib


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      pixels=False,                    # False: MLP on obs["state"]; True: brax vision networks (CNN + state)
      policy_hidden=(256, 256),
      value_hidden=(256, 256),
      cnn_channels=(16, 32),           # pixel policy: a small CNN (brax's default NatureCNN is sized for 84+ px)
      cnn_kernels=(4, 3),
      cnn_strides=(2, 2),
      steps=3000,
      batch_size=256,
      learning_rate=1e-3,
      init_std=0.3,                    # pre-tanh action std the cloned policy (and so PPO) starts with
      std_weight=1.0,
      # Floor on the normalised features' std: std = sqrt(var + eps). Features (nearly) constant in the demos (a
      # cube's height while pressing buttons, finger velocities, flags never set) must not be divided by ~0: with
      # eps 1e-4 a 5 cm deviation PPO's exploration makes reads as 5 "standard deviations" and more, the critic's
      # value loss ran away (to 1e4-1e5) and 30 PPO iterations left success where BC had it (14.5% -> 18.0%); with
      # 0.1 (a 0.32 floor: centimetres stay small, unit flags stay ~3) BC is unchanged and PPO gains 46 points
      # (bench/RESULTS.md, refinement sweep).
      normalizer_std_eps=0.1,
      seed=0,
  ))


def _pixels_to_unit(obs):
  if not isinstance(obs, Mapping):
    return obs
  return {k: (v.astype(jnp.float32) / 255.0 if k.startswith("pixels/") and v.dtype == jnp.uint8 else v)
          for k, v in obs.items()}


_IDENTITY = types.identity_observation_preprocessor


def make_pixel_ppo_networks(observation_size, action_size,
                            preprocess_observations_fn: types.PreprocessObservationFn = _IDENTITY,
                            policy_hidden_layer_sizes=(256, 256), value_hidden_layer_sizes=(256, 256),
                            cnn_output_channels=(16, 32), cnn_kernel_size=(4, 3), cnn_stride=(2, 2),
                            state_obs_key: str = "state") -> ppo_networks.PPONetworks:
  """brax's vision PPO networks, with uint8 pixels scaled to [0, 1] before the CNN."""
  nets = networks_vision.make_ppo_networks_vision(
      observation_size, action_size, preprocess_observations_fn=preprocess_observations_fn,
      policy_hidden_layer_sizes=policy_hidden_layer_sizes, value_hidden_layer_sizes=value_hidden_layer_sizes,
      policy_obs_key=state_obs_key, value_obs_key=state_obs_key, cnn_output_channels=cnn_output_channels,
      cnn_kernel_size=cnn_kernel_size, cnn_stride=cnn_stride)

  def wrap(net):
    return brax_networks.FeedForwardNetwork(init=net.init,
                                            apply=lambda p, q, obs: net.apply(p, q, _pixels_to_unit(obs)))

  # brax's PPO loss and inference only use these three fields; its PPONetworks type is the same dataclass shape.
  return ppo_networks.PPONetworks(policy_network=wrap(nets.policy_network), value_network=wrap(nets.value_network),
                                  parametric_action_distribution=nets.parametric_action_distribution)


def make_network_factory(config: ml_collections.ConfigDict) -> Callable[..., ppo_networks.PPONetworks]:
  """The `network_factory` for both BC and `ppo.train` (a partial, so brax's checkpoint config can record it)."""
  if config.pixels:
    return functools.partial(make_pixel_ppo_networks, policy_hidden_layer_sizes=tuple(config.policy_hidden),
                             value_hidden_layer_sizes=tuple(config.value_hidden),
                             cnn_output_channels=tuple(config.cnn_channels), cnn_kernel_size=tuple(config.cnn_kernels),
                             cnn_stride=tuple(config.cnn_strides))
  return functools.partial(ppo_networks.make_ppo_networks, policy_hidden_layer_sizes=tuple(config.policy_hidden),
                           value_hidden_layer_sizes=tuple(config.value_hidden))


def _state_part(obs):
  """What brax's normaliser covers: everything but `pixels/*` (as `ppo.train._remove_pixels`)."""
  if not isinstance(obs, Mapping):
    return obs
  return {k: v for k, v in obs.items() if not k.startswith("pixels/")}


@dataclasses.dataclass
class BcResult:
  params: tuple                       # (normalizer_params, policy_params, value_params): ppo.train's restore_params
  network_factory: Callable[..., ppo_networks.PPONetworks]
  make_policy: Callable[..., Any]     # make_policy(params, deterministic=...) -> policy(obs, key)
  losses: np.ndarray                  # per step
  normalizer_count: int
  config: ml_collections.ConfigDict

  def ppo_normalizer_kwargs(self) -> dict[str, Any]:
    """`ppo.train` keyword arguments that keep the cloned normaliser frozen (see the module docstring)."""
    return dict(normalize_observations=True, normalize_observations_mode="ema",
                normalize_until_count=self.normalizer_count,
                normalize_observations_std_eps=float(self.config.normalizer_std_eps))


def _check_config(config, demos):
  if config.pixels:
    if not isinstance(demos.obs, Mapping) or not any(k.startswith("pixels/") for k in demos.obs):
      raise ValueError("bc.pixels=True needs pixel observations in the demos (make the env with render_obs=True)")
  if isinstance(demos.obs, Mapping) and "state" not in demos.obs:
    raise ValueError(f"demo observations need a 'state' entry; got {sorted(demos.obs)}")
  for k in ("steps", "batch_size"):
    if int(config[k]) < 1:
      raise ValueError(f"bc.{k} must be >= 1, got {config[k]}")


def train(demos: demos_lib.Demos, config: ml_collections.ConfigDict) -> BcResult:
  """Clones `demos` into a PPO network; see the module docstring."""
  _check_config(config, demos)
  mask = np.asarray(demos.mask, bool)
  obs = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[mask]), demos.obs)   # [M, ...] learnable steps
  actions = jnp.asarray(np.asarray(demos.action)[mask], jnp.float32)
  m, action_size = actions.shape
  factory = make_network_factory(config)
  obs_size = jax.tree.map(lambda x: x.shape[1:], obs)
  net = factory(obs_size, action_size, preprocess_observations_fn=running_statistics.normalize)

  spec = jax.tree.map(lambda x: specs.Array(x.shape[-1:], jnp.dtype("float32")), _state_part(obs))
  normalizer = running_statistics.init_state(spec, std_eps=float(config.normalizer_std_eps), mode="ema")
  # One EMA update over all demo steps (its rate is 1 on the first update): exactly their mean and variance.
  normalizer = running_statistics.update(normalizer, _state_part(obs))

  k_policy, k_value, k_steps = jax.random.split(jax.random.PRNGKey(int(config.seed)), 3)
  policy_params = net.policy_network.init(k_policy)
  value_params = net.value_network.init(k_value)
  optimizer = optax.adam(float(config.learning_rate))
  dist = net.parametric_action_distribution
  init_std, std_weight = float(config.init_std), float(config.std_weight)

  def loss_fn(params, batch_obs, batch_actions):
    d = dist.create_dist(net.policy_network.apply(normalizer, params, batch_obs))
    mse = jnp.mean(jnp.sum((jnp.tanh(d.loc) - batch_actions) ** 2, -1))
    return mse + std_weight * jnp.mean((d.scale - init_std) ** 2), mse

  @jax.jit
  def fit(params, key):
    def step(carry, k):
      params, opt_state = carry
      idx = jax.random.randint(k, (int(config.batch_size),), 0, m)
      (_, mse), grads = jax.value_and_grad(loss_fn, has_aux=True)(
          params, jax.tree.map(lambda x: x[idx], obs), actions[idx])
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), mse

    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)),
                                       jax.random.split(key, int(config.steps)))
    return params, losses

  policy_params, losses = fit(policy_params, k_steps)
  return BcResult(params=(normalizer, policy_params, value_params), network_factory=factory,
                  make_policy=ppo_networks.make_inference_fn(net), losses=np.asarray(losses), normalizer_count=m,
                  config=config)
