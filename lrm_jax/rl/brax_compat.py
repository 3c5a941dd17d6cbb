"""brax 0.14.2 on jax 0.10: restores `jax.device_put_replicated`, which jax removed and brax's `ppo.train` calls.

`ppo.train` replicates its TrainingState over local devices with `jax.device_put_replicated` (jax >= 0.10 raises
AttributeError on it). This puts back the migration guide's drop-in replacement
(https://docs.jax.dev/en/latest/migrate_pmap.html#drop-in-replacements): stack copies along a new leading axis and
place one slice per device, which is what brax's pmapped training epoch expects. Nothing else in jax changes; the
name is only set when missing, so a fixed brax or an older jax are left alone.
"""
import jax
import jax.numpy as jnp
import numpy as np


# brax's pmap axis name (`brax.training.agents.ppo.train._PMAP_AXIS_NAME`). pmap's outputs carry
# NamedSharding(Mesh(devices, (axis,)), P(axis)); replicating onto the same mesh makes the first training epoch's
# inputs look like its outputs, so brax's pmapped epoch compiles once (with another axis name the second epoch
# recompiled the whole training program: ~40 s per run on CPU).
_AXIS = "i"


def device_put_replicated(x, devices):
  mesh = jax.sharding.Mesh(np.asarray(devices), (_AXIS,))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(_AXIS))
  n = len(devices)
  return jax.tree.map(lambda a: jax.device_put(jnp.broadcast_to(a, (n,) + jnp.shape(a)), sharding), x)


def install() -> None:
  try:
    jax.device_put_replicated  # noqa: B018
  except AttributeError:
    jax.device_put_replicated = device_put_replicated
