"""Reward-model training: answer-only cross-entropy on the three prompts, on the device mesh, resumable.

- `TrainState` (step, params, opt_state) is one pytree; the step is one jitted function on the mesh (params and
  optimizer state FSDP- or replicate-placed by lrm_jax.sharding, batches split over every device).
- orbax `CheckpointManager` keeps the last `keep` checkpoints; a save is written to a temporary directory and
  renamed when complete, so a run killed mid-save (even `kill -9`) restarts from the last complete one.
- A damaged newest checkpoint (a truncated array file, garbled `_METADATA`: disk full, a copy cut short) does not
  wedge the run: it resumes from the newest step that restores, with one warning line naming the skipped folder,
  which a training run moves to `W/checkpoints.corrupt/` (kept for a look; orbax would refuse to save that step
  again). Nothing is moved unless an older step restores: a wrong model config fails every step and moves none.
- Resuming is exact: the input stream is deterministic given its seed, so the run skips the batches it already
  consumed and continues with the same data, the same state, and therefore the same metrics.
- clu metric writers (TensorBoard under `workdir/tb` + console), a tqdm bar, periodic validation on fixed batches.
"""
import contextlib
import dataclasses
import os
import time
from typing import Callable, Iterator, Optional

from absl import logging
from clu import metric_writers
import flax
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp
import tqdm

from data_pipelines import prompts
from data_pipelines.errors import DataFormatError
from lrm_jax import sharding
from lrm_jax.models import paligemma
from lrm_jax.models import preprocess
from lrm_jax.train import batches as batches_lib
from lrm_jax.train import optim
from lrm_jax.utils import distributed

CORRUPT_DIR = "checkpoints.corrupt"  # beside W/checkpoints: damaged steps set aside by a resuming run


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: dict
  opt_state: object


def example_losses(model, params, batch, image_size: int):
  """Per-example answer NLL [B] and exact match of the argmax answer tokens [B]."""
  images = preprocess.images(batch["images"], image_size)
  logits = model.apply({"params": params}, images, batch["tokens"], batch["mask_ar"], batch["input_mask"])
  logp = jax.nn.log_softmax(logits[:, :-1].astype(jnp.float32), axis=-1)
  tgt = batch["tokens"][:, 1:]
  w = batch["mask_loss"][:, 1:].astype(jnp.float32)
  nll = -jnp.take_along_axis(logp, tgt[..., None], axis=-1)[..., 0]
  hit = (jnp.argmax(logp, axis=-1) == tgt) | (w == 0)
  return jnp.sum(nll * w, axis=1) / jnp.maximum(jnp.sum(w, axis=1), 1.0), jnp.all(hit, axis=1)


def make_train_step(model, optimizer, image_size: int, frozen: Optional[dict] = None):
  """frozen: optional pytree of bools like the params (`optim.always_frozen`): no gradient flows into those."""
  def step(state: TrainState, batch):
    def loss_fn(params):
      if frozen is not None:
        params = jax.tree.map(lambda p, f: jax.lax.stop_gradient(p) if f else p, params, frozen)
      nll, hit = example_losses(model, params, batch, image_size)
      w = batch["mask_loss"][:, 1:].sum(axis=1).astype(jnp.float32)
      # Token-weighted mean, like `models.losses.answer_nll`: every answer token counts once.
      return jnp.sum(nll * w) / jnp.maximum(jnp.sum(w), 1.0), hit

    (loss, hit), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = jax.tree.map(lambda p, u: p + u.astype(p.dtype), state.params, updates)
    metrics = dict(loss=loss, accuracy=jnp.mean(hit), grad_norm=_global_norm(grads))
    return TrainState(state.step + 1, params, opt_state), metrics

  return step


def _global_norm(tree):
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree)))


def make_eval_step(model, image_size: int):
  def step(params, batch):
    nll, hit = example_losses(model, params, batch, image_size)
    return nll, hit

  return step


def evaluate(eval_step, params, eval_batches, mesh=None) -> dict:
  """Mean answer NLL and exact-match accuracy per prompt kind over fixed batches.

  With `mesh`, each batch is split over it like a training batch; with several processes each passes its own
  batches (its host's share) and every process gets the metrics of all of them (gathered), like one process
  that read every share.
  """
  per = {k: ([], []) for k in prompts.KINDS}
  for batch in eval_batches:
    if mesh is None:
      nll, hit = jax.device_get(eval_step(params, {k: v for k, v in batch.items()}))
    else:
      placed = sharding.shard_batch(batch, mesh)
      nll, hit, kind = multihost_utils.process_allgather((*eval_step(params, placed), placed["kind"]), tiled=True)
      batch = dict(batch, kind=np.asarray(kind))
    for kind, i in batches_lib.KIND_IDS.items():
      sel = batch["kind"] == i
      per[kind][0].extend(nll[sel].tolist())
      per[kind][1].extend(hit[sel].tolist())
  out = {}
  for kind, (nll, hit) in per.items():
    if nll:
      out[f"val/{kind}_nll"] = float(np.mean(nll))
      out[f"val/{kind}_accuracy"] = float(np.mean(hit))
  alln = [x for v in per.values() for x in v[0]]
  if alln:
    out["val/nll"] = float(np.mean(alln))
  return out


@dataclasses.dataclass
class Trainer:
  """Builds the state on the mesh, restores the latest checkpoint, runs to `config.total_steps`."""
  config: object
  model: paligemma.Model
  init_params: Callable[[], dict]  # called only when there is no checkpoint to resume from
  workdir: str

  def __post_init__(self):
    c = self.config
    self.mesh = sharding.make_mesh(c.get("mesh", None))
    self.total_steps = int(c.total_steps)
    self.ckpt_dir = os.path.join(self.workdir, "checkpoints")
    self.manager = ocp.CheckpointManager(
        self.ckpt_dir, options=ocp.CheckpointManagerOptions(
            max_to_keep=int(c.get("keep_checkpoints", 2)), save_interval_steps=int(c.checkpoint_every),
            enable_async_checkpointing=False))

  def _abstract_state(self, params_shape):
    opt = optim.make_optimizer(self.config, params_shape, self.total_steps)
    return jax.eval_shape(lambda p: TrainState(jnp.zeros((), jnp.int32), p, opt.init(p)), params_shape)

  def initial_state(self, set_aside_damaged: bool = False) -> TrainState:
    """The newest checkpoint that restores (placed on the mesh), else fresh params and optimizer state. Damaged
    newer steps are skipped with a warning (and moved to W/checkpoints.corrupt with `set_aside_damaged`)."""
    strategy = self.config.get("param_sharding", "fsdp")
    steps = sorted(self.manager.all_steps(), reverse=True)
    if steps:
      params_shape = jax.eval_shape(self.init_params)
      abstract = self._abstract_state(params_shape)
      shardings = sharding.param_shardings(abstract, self.mesh, strategy)
      target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
      damaged = []
      for step in steps:
        try:
          state = self.manager.restore(step, args=ocp.args.StandardRestore(target))
        except Exception as e:  # noqa: BLE001 -- tensorstore / JSON / zlib errors of a damaged folder, all kinds
          first = (str(e).strip().splitlines() or [""])[0][:200]
          damaged.append((step, f"{type(e).__name__}: {first}"))
          continue
        for bad, why in damaged:
          self._skip_damaged(bad, why, step, set_aside_damaged)
        logging.info("resumed from step %d (%s)", step, self.ckpt_dir)
        return state
      step, why = damaged[0]
      raise DataFormatError(os.path.join(self.ckpt_dir, str(step)), "checkpoint",
                            f"a restorable orbax checkpoint (none of steps {steps} restores: damaged, or written "
                            "by a different model config)", why)
    params = self.init_params()
    opt = optim.make_optimizer(self.config, params, self.total_steps)
    state = TrainState(jnp.zeros((), jnp.int32), params, opt.init(params))
    return sharding.shard_params(state, self.mesh, strategy)

  def _skip_damaged(self, step: int, why: str, resumed: int, set_aside: bool) -> None:
    folder = os.path.join(self.ckpt_dir, str(step))
    where = ""
    if set_aside:
      dest = os.path.join(self.workdir, CORRUPT_DIR, str(step))
      if distributed.is_primary():  # one process moves it (a shared filesystem), the others wait
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        n = 1
        while os.path.exists(dest):
          dest, n = os.path.join(self.workdir, CORRUPT_DIR, f"{step}.{n}"), n + 1
        os.replace(folder, dest)
      distributed.barrier(f"trainer:set_aside:{step}")
      self.manager.reload()
      where = f"; moved to {dest}"
    line = f"warning: skipped damaged checkpoint {folder} ({why}){where}; resuming from step {resumed}"
    logging.warning("%s", line)
    if distributed.is_primary():
      print(line, flush=True)

  def run(self, train_batches: Callable[[int], Iterator[dict]], eval_batches: Optional[list] = None,
          on_eval: Optional[Callable[[int, dict], None]] = None) -> TrainState:
    """train_batches(start_step) -> iterator of model batches starting at that step (deterministic stream)."""
    c = self.config
    state = self.initial_state(set_aside_damaged=True)
    start = int(jax.device_get(state.step))
    optimizer = optim.make_optimizer(c, state.params, self.total_steps)
    train_step = jax.jit(make_train_step(self.model, optimizer, c.image_size, optim.always_frozen(c, state.params)),
                         donate_argnums=(0,))
    eval_step = jax.jit(make_eval_step(self.model, c.image_size))
    # Several processes: process 0 writes TensorBoard (the metrics are global: the same on every process).
    writer = metric_writers.create_default_writer(os.path.join(self.workdir, "tb"), asynchronous=False,
                                                  just_logging=jax.process_index() > 0)
    if start == 0:
      writer.write_hparams({k: v for k, v in _flat_config(c).items()})
    if start >= self.total_steps:
      return state
    it = train_batches(start)
    bar = tqdm.tqdm(total=self.total_steps, initial=start, desc="train reward model", unit="step",
                    dynamic_ncols=True, mininterval=2.0, disable=jax.process_index() > 0)
    t0, n0 = time.time(), start
    log_every, eval_every = int(c.log_every), int(c.eval_every)
    with jax.sharding.set_mesh(self.mesh), sharding.activation_rules():
      for step in range(start, self.total_steps):
        batch = sharding.shard_batch(next(it), self.mesh)
        state, metrics = train_step(state, batch)
        done = step + 1
        bar.update(1)
        if done % log_every == 0 or done == self.total_steps:
          m = {k: float(v) for k, v in jax.device_get(metrics).items()}
          m["lr"] = float(optim.schedule(c, self.total_steps)(step))
          m["steps_per_sec"] = (done - n0) / max(time.time() - t0, 1e-9)
          t0, n0 = time.time(), done
          writer.write_scalars(done, {f"train/{k}": v for k, v in m.items()})
          bar.set_postfix(loss=f"{m['loss']:.3f}", acc=f"{m['accuracy']:.2f}")
        if eval_batches and (done % eval_every == 0 or done == self.total_steps):
          ev = evaluate(eval_step, state.params, eval_batches, self.mesh)
          writer.write_scalars(done, ev)
          if on_eval:
            on_eval(done, ev)
        with _quiet_logs():  # orbax logs every save step at INFO
          self.manager.save(done, args=ocp.args.StandardSave(state), force=done == self.total_steps)
    bar.close()
    self.manager.wait_until_finished()
    writer.flush()
    return state


@contextlib.contextmanager
def _quiet_logs():
  level = logging.get_verbosity()
  logging.set_verbosity(logging.WARNING)
  try:
    yield
  finally:
    logging.set_verbosity(level)


def _flat_config(c) -> dict:
  flat = {}
  for k, v in (c.to_dict() if hasattr(c, "to_dict") else dict(c)).items():
    if isinstance(v, (int, float, str, bool)):
      flat[k] = v
  return flat
