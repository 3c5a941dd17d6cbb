"""Run a batched function over micro-batches inside one jitted program.

On CPU, per-example throughput falls once a batch's activations outgrow the caches (measured: small config, 16 ->
64 examples). `lax.map` over micro-batches keeps every layer's working set cache-sized while still giving XLA a
single program (one dispatch, no Python loop).

`data_parallel` splits a batch over a mesh's devices with `shard_map`: each device runs the function on its own
slice, with no communication. On a CPU host with one XLA device per core (`lrm_jax.utils.host_devices`) that is
what keeps every core busy on the small GEMMs of a reward-model forward (bench/RESULTS.md).
"""
import jax
from jax.sharding import PartitionSpec as P

from lrm_jax import sharding


def microbatched(fn, chunk: int):
  """fn(params, *arrays) -> pytree with leading batch axis; returns the same function evaluated `chunk` examples at
  a time. Batches not larger than, or not divisible by, `chunk` run in one go."""

  def run(params, *arrays):
    b = arrays[0].shape[0]
    if not chunk or b <= chunk or b % chunk:
      return fn(params, *arrays)
    split = lambda x: x.reshape(b // chunk, chunk, *x.shape[1:])
    out = jax.lax.map(lambda xs: fn(params, *xs), tuple(split(x) for x in arrays))
    return jax.tree.map(lambda y: y.reshape(b, *y.shape[2:]), out)

  return run


def data_parallel(fn, mesh):
  """fn(params, *arrays) -> pytree with leading batch axis, run with params replicated and every array's leading
  axis split over all of `mesh`'s devices (it must divide evenly). Returns (jitted function, put) where
  `put(params, *arrays)` places its arguments for it."""
  batch = P(sharding.BATCH)

  def wrapped(params, *arrays):
    return jax.shard_map(fn, mesh=mesh, in_specs=(P(),) + (batch,) * len(arrays), out_specs=batch)(params, *arrays)

  def put(params, *arrays):
    return (sharding.shard_params(params, mesh, "replicate"),) + tuple(sharding.shard_batch(arrays, mesh))

  return jax.jit(wrapped), put
