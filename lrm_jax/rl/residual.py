"""A residual policy on top of the frozen cloned policy (ResiP, Ankile et al. 2024), as brax PPO networks.

    action = tanh(bc_loc(obs)) + action_scale * tanh(r(obs)),   r's last layer zero-initialised,
    exploration: a Gaussian in *action space* with a learned per-dimension std, starting at `init_std`.

Why: fine-tuning the cloned network itself lets PPO's first, noisy updates move every action at once, and its
tanh-squashed Gaussian explores nothing on dimensions BC drove into saturation (the gripper: pre-tanh means of
4-16 on press_buttons_in_order, so noise of std 0.3 changes no action). Here the cloned policy is a constant of the
program, PPO only learns a small correction whose size `action_scale` bounds, and exploration noise has the same
effect on every dimension. At the start the deterministic action is exactly the cloned one (tested), so PPO's first
iteration begins from the behaviour-cloned success rate. Measured (bench/RESULTS.md): with the old normaliser floor it
did not help on press_buttons_in_order (12.9% from 14.5%), and on two_on_plate it collapses like fine-tuning does;
so it is an option, off by default.

`start_from(bc_result, config)` returns a `bc.BcResult` whose params, network factory and inference function are
the residual policy's; everything downstream (brax's `ppo.train(restore_params=...)`, evaluation) is unchanged.
Only state-MLP policies are supported (the residual zeroes the last `hidden_*` layer of brax's MLP).
"""
import dataclasses

from brax.training import distribution
from brax.training import networks as brax_networks
from brax.training import types
from brax.training.acme import running_statistics
from brax.training.agents.ppo import networks as ppo_networks
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lrm_jax.rl import bc as bc_lib


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      enabled=False,
      action_scale=0.5,   # the residual's largest effect on an action (actions are in [-1, 1])
      init_std=0.2,       # exploration std in action units at the start (learned per dimension afterwards)
      seed=0,
  ))


class ResidualNetworkFactory:
  """brax `network_factory`: the frozen BC policy plus a zero-initialised residual of the same architecture.

  A class rather than a `functools.partial`: brax's checkpoint writer records the factory's keyword arguments as
  JSON, and the frozen BC parameters are not JSON (a bound instance has none to record).
  """

  def __init__(self, bc_factory, base_policy_params, action_scale: float, init_std: float):
    self.bc_factory = bc_factory
    self.base_policy_params = base_policy_params
    self.action_scale = float(action_scale)
    self.init_std = float(init_std)

  def __call__(self, observation_size, action_size,
               preprocess_observations_fn: types.PreprocessObservationFn = types.identity_observation_preprocessor
               ) -> ppo_networks.PPONetworks:
    bc_net = self.bc_factory(observation_size, action_size, preprocess_observations_fn=preprocess_observations_fn)
    base, scale, init_std = self.base_policy_params, self.action_scale, self.init_std

    def init(key):
      params = bc_net.policy_network.init(key)
      layers = params["params"]
      last = _last_layer(layers)
      layers = dict(layers, **{last: jax.tree.map(jnp.zeros_like, layers[last])})
      # log of the std's multiplier, one per action dimension; the std itself is init_std * exp(log_std_gain).
      return dict(residual=dict(params, params=layers), log_std_gain=jnp.zeros((action_size,), jnp.float32))

    def apply(processor_params, policy_params, obs):
      base_out = bc_net.policy_network.apply(processor_params, base, obs)
      res_out = bc_net.policy_network.apply(processor_params, policy_params["residual"], obs)
      base_action = jnp.tanh(base_out[..., :action_size])
      loc = base_action + scale * jnp.tanh(res_out[..., :action_size])  # the mean stays within scale of BC's
      std = init_std * jnp.exp(policy_params["log_std_gain"])
      return loc, jnp.broadcast_to(std, loc.shape)

    return ppo_networks.PPONetworks(policy_network=brax_networks.FeedForwardNetwork(init=init, apply=apply),
                                    value_network=bc_net.value_network,
                                    parametric_action_distribution=distribution.NormalDistribution(action_size))


def _last_layer(layers) -> str:
  return max((k for k in layers if k.startswith("hidden_")), key=lambda k: int(k.split("_")[1]))


def start_from(bc_result: bc_lib.BcResult, config: ml_collections.ConfigDict) -> bc_lib.BcResult:
  """The residual policy that starts exactly at `bc_result`'s cloned policy (see the module docstring)."""
  if bc_result.config.pixels:
    raise ValueError("residual.enabled needs a state-MLP BC policy (bc.pixels=False)")
  if float(config.action_scale) <= 0 or float(config.init_std) <= 0:
    raise ValueError(f"residual.action_scale and residual.init_std must be > 0, got {config.action_scale} and "
                     f"{config.init_std}")
  normalizer, bc_policy, value = bc_result.params
  factory = ResidualNetworkFactory(bc_result.network_factory, bc_policy, config.action_scale, config.init_std)
  obs_size = jax.tree.map(lambda x: x.shape[-1:], normalizer.mean)
  layers = bc_policy["params"]
  action_size = int(np.shape(layers[_last_layer(layers)]["kernel"])[-1]) // 2  # BC outputs (loc, scale)
  net = factory(obs_size, action_size, preprocess_observations_fn=running_statistics.normalize)
  policy = net.policy_network.init(jax.random.PRNGKey(int(config.seed)))
  return dataclasses.replace(bc_result, params=(normalizer, policy, value), network_factory=factory,
                             make_policy=ppo_networks.make_inference_fn(net))
