"""Device mesh and placement of params, optimizer state and batches.

Mesh axes: `data` (pure data parallel) and `fsdp` (data parallel whose devices also split the parameters). Batches
are split over both axes. Parameter placement strategies:
  fsdp:      every array with at least `min_size` elements is split over `fsdp` along its largest dimension that
             the axis size divides evenly (ties: the later dimension); anything else is replicated. Shape-only, so
             optimizer moments land exactly like their params.
  replicate: everything on every device.
  logical:   the logical axis names the models attach to parameters (e.g. ("vocab", "embed")) mapped by
             `rules` (default LOGICAL_RULES) -- for tensor-parallel layouts on larger meshes.
Activations carry logical names too (act_batch, act_len, act_embed, act_mlp); `activation_rules()` maps them.
"""
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXES = ("data", "fsdp")
BATCH = ("data", "fsdp")  # the batch dimension is split over every device

LOGICAL_RULES = (
    ("act_batch", BATCH), ("act_len", None), ("act_embed", None), ("act_mlp", None),
    ("vocab", "fsdp"), ("embed", None), ("mlp", "fsdp"), ("q_heads", "fsdp"), ("kv_heads", None),
    ("head_dim", None), ("norm", None), ("layers", None),
)


def make_mesh(mesh_config: Optional[Any] = None, devices: Optional[Sequence[Any]] = None) -> Mesh:
  """mesh_config: mapping axis -> size for `data` and `fsdp`; one size may be -1 (= the remaining devices).

  Default {data: 1, fsdp: -1}: every device in one FSDP group.
  """
  cfg = dict(mesh_config or {"data": 1, "fsdp": -1})
  unknown = set(cfg) - set(AXES)
  if unknown:
    raise ValueError(f"mesh config: unknown axes {sorted(unknown)}; expected {AXES}")
  devices = list(devices if devices is not None else jax.devices())
  sizes = [int(cfg.get(a, 1)) for a in AXES]
  if sizes.count(-1) > 1:
    raise ValueError(f"mesh config {cfg}: at most one axis may be -1")
  known = int(np.prod([s for s in sizes if s != -1]))
  if -1 in sizes:
    if len(devices) % known:
      raise ValueError(f"mesh config {cfg}: {len(devices)} devices are not divisible by {known}")
    sizes[sizes.index(-1)] = len(devices) // known
  if int(np.prod(sizes)) != len(devices):
    raise ValueError(f"mesh config {cfg}: sizes {dict(zip(AXES, sizes))} need {int(np.prod(sizes))} devices, "
                     f"have {len(devices)}")
  return Mesh(np.asarray(devices).reshape(sizes), AXES)


def fsdp_spec(shape: Sequence[int], n: int, min_size: int = 2 ** 14, axis: str = "fsdp") -> P:
  """PartitionSpec splitting the largest dimension divisible by `n` (arrays of >= min_size elements)."""
  if n == 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
    return P()
  order = sorted(range(len(shape)), key=lambda i: (shape[i], i), reverse=True)
  for i in order:
    if shape[i] % n == 0:
      spec = [None] * len(shape)
      spec[i] = axis
      return P(*spec)
  return P()


def param_shardings(params, mesh: Mesh, strategy: str = "fsdp", min_size: int = 2 ** 14, logical_specs=None,
                    rules=LOGICAL_RULES):
  """A NamedSharding per leaf of `params` (arrays or ShapeDtypeStructs; also works for optimizer state)."""
  if strategy == "replicate":
    return jax.tree.map(lambda _: NamedSharding(mesh, P()), params)
  if strategy == "fsdp":
    n = mesh.shape["fsdp"]
    return jax.tree.map(lambda x: NamedSharding(mesh, fsdp_spec(np.shape(x), n, min_size)), params)
  if strategy == "logical":
    if logical_specs is None:
      raise ValueError("strategy 'logical' needs logical_specs (nn.get_partition_spec of the boxed init tree)")
    mesh_specs = nn.logical_to_mesh(logical_specs, rules)
    return jax.tree.map(lambda s: NamedSharding(mesh, s if s is not None else P()), mesh_specs,
                        is_leaf=lambda s: isinstance(s, P) or s is None)
  raise ValueError(f"sharding strategy {strategy!r}: expected fsdp, replicate or logical")


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(BATCH))


def shard_batch(batch, mesh: Mesh):
  """Places every array's leading (batch) dimension across all devices; it must divide evenly.

  Several processes: `batch` is this process's part (its host's share of the data, e.g. the mixture's per-host
  split) and goes to this process's devices; the global batch is the processes' parts in process order.
  (`jax.device_put` of a numpy array would instead treat it as the *global* batch and keep only this process's
  slice of it, silently dropping the rest of every host's data.)
  """
  sharding = batch_sharding(mesh)
  multi = jax.process_count() > 1 and not sharding.is_fully_addressable
  n = len(mesh.local_devices) if multi else mesh.size

  def put(x):
    x = np.asarray(x) if not isinstance(x, jax.Array) else x
    if x.ndim == 0 or x.shape[0] % n:
      raise ValueError(f"batch array of shape {x.shape}: leading dimension must be divisible by {n} "
                       f"{'devices of this process' if multi else 'devices'}")
    if multi:
      return jax.make_array_from_process_local_data(sharding, np.asarray(x))
    return jax.device_put(x, sharding)

  return jax.tree.map(put, batch)


def local_mesh() -> Mesh:
  """This process's devices on the mesh axes: for batched simulation, whose episodes never talk to each other."""
  return make_mesh(devices=jax.local_devices())


def round_to_devices(n: int, mesh: Mesh) -> int:
  """The smallest multiple of the mesh's device count >= n (a padded chunk that `shard_batch` accepts)."""
  return -(-int(n) // mesh.size) * mesh.size


def shard_episodes(batch, mesh: Optional[Mesh] = None):
  """`shard_batch` over `local_mesh()` when the leading dimension divides evenly, else `batch` unchanged.

  Why: on CPU one XLA program of a batched MJX episode keeps ~1.2 of the cores busy; with one CPU device per core
  (`lrm_jax.utils.host_devices`) the episodes of a chunk run side by side, ~1.8x the env steps/s on 2 cores
  (bench/RESULTS.md). On one device (tests, a single GPU) this is a plain device_put.
  """
  mesh = mesh or local_mesh()
  leaves = jax.tree.leaves(batch)
  if mesh.size == 1 or any(np.ndim(x) == 0 or np.shape(x)[0] % mesh.size for x in leaves):
    return batch
  return shard_batch(batch, mesh)


def shard_params(params, mesh: Mesh, strategy: str = "fsdp", **kw):
  """device_put params (or optimizer state) with `param_shardings`.

  Several processes: every process must pass the same values (a seeded init, a loaded checkpoint); each keeps
  its devices' slices. They go through host numpy because `jax.device_put` refuses to move an array living on
  one local device onto a sharding that spans other processes' devices.
  """
  shardings = param_shardings(params, mesh, strategy, **kw)
  if jax.process_count() > 1:
    params = jax.tree.map(lambda x: np.asarray(x) if getattr(x, "is_fully_addressable", True) else x, params)
  return jax.device_put(params, shardings)


def activation_rules():
  """Context manager mapping activation logical names onto the mesh: `with mesh, sharding.activation_rules():`."""
  return nn.logical_axis_rules(LOGICAL_RULES)
