"""Optimizer from config: AdamW with linear warmup + cosine decay, gradient clipping, and freeze schedules.

config.optim: lr, warmup_steps, weight_decay, b1, b2, grad_clip (0 = off), end_lr_factor.
config.freeze: list of (regex, until_step) over "/"-joined parameter paths, e.g. ("img/.*", -1) keeps the image
tower frozen for the whole run, ("img/.*", 200) unfreezes it at step 200. A frozen parameter gets a zero update
(optax.set_to_zero via multi_transform) and no weight decay.
config.lr_scale: list of (regex, factor): matching parameters' updates (weight decay included) are multiplied by
factor, e.g. ("img/.*", 0.1) fine-tunes a pretrained image tower at a tenth of the learning rate. First match wins.
"""
import re

import jax
import jax.numpy as jnp
import optax

from lrm_jax.models import checkpoint


def schedule(config, total_steps: int):
  o = config.optim
  warmup = min(int(o.warmup_steps), max(total_steps - 1, 0))
  return optax.warmup_cosine_decay_schedule(0.0, o.lr, warmup, max(total_steps, warmup + 1),
                                            end_value=o.lr * o.get("end_lr_factor", 0.01))


def freeze_rules(config) -> list:
  rules = []
  for item in config.get("freeze", ()) or ():
    pattern, until = (item, -1) if isinstance(item, str) else tuple(item)
    try:
      rules.append((re.compile(pattern), int(until)))
    except re.error as e:
      raise ValueError(f"config.freeze: bad regex {pattern!r} ({e})") from None
  return rules


def lr_scale_rules(config) -> list:
  rules = []
  for item in config.get("lr_scale", ()) or ():
    pattern, factor = tuple(item)
    try:
      rules.append((re.compile(pattern), float(factor)))
    except re.error as e:
      raise ValueError(f"config.lr_scale: bad regex {pattern!r} ({e})") from None
    if not float(factor) >= 0:
      raise ValueError(f"config.lr_scale: expected a factor >= 0 for {pattern!r}, got {factor}")
  return rules


def _labels(params, rules):
  """Per leaf: the index of the first matching freeze rule, or -1 (trained from the start)."""
  flat = checkpoint.flatten(params)
  labels = {k: next((i for i, (rx, _) in enumerate(rules) if rx.fullmatch(k)), -1) for k in flat}
  return checkpoint.unflatten(labels)


def always_frozen(config, params) -> dict:
  """Per leaf: True where a freeze rule keeps the parameter frozen for the whole run (until < 0).

  The train step stops gradients there: with a frozen image tower, backpropagating through it costs about as much
  as the tower's forward pass, and its discarded gradients would still count in `clip_by_global_norm` and shrink
  the trained parameters' updates."""
  rules = freeze_rules(config)
  labels = _labels(params, rules)
  return jax.tree.map(lambda i: i >= 0 and rules[i][1] < 0, labels)


def make_optimizer(config, params, total_steps: int) -> optax.GradientTransformation:
  o = config.optim
  adamw = optax.adamw(schedule(config, total_steps), b1=o.get("b1", 0.9), b2=o.get("b2", 0.999),
                      weight_decay=o.get("weight_decay", 0.0))
  rules = freeze_rules(config)
  if rules:
    labels = _labels(params, rules)

    def gated(until):  # zero updates while step < until (until < 0: always)
      if until < 0:
        return optax.set_to_zero()
      return optax.chain(adamw, optax.scale_by_schedule(lambda s: jnp.where(s < until, 0.0, 1.0)))

    inner = optax.multi_transform({-1: adamw, **{i: gated(u) for i, (_, u) in enumerate(rules)}}, labels)
  else:
    inner = adamw
  scales = lr_scale_rules(config)
  if scales:  # after the (possibly gated) AdamW update: a plain multiple of it
    inner = optax.chain(inner, optax.multi_transform(
        {-1: optax.identity(), **{i: optax.scale(f) for i, (_, f) in enumerate(scales)}}, _labels(params, scales)))
  clip = o.get("grad_clip", 0.0)
  return optax.chain(optax.clip_by_global_norm(clip), inner) if clip else inner
