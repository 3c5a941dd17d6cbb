"""Mesh construction, FSDP placement rule, an FSDP-sharded training step equal to the unsharded one, and a
data-parallel forward (`batching.data_parallel`) equal to the one-device forward.

The 8-device check runs in a subprocess because the host device count is fixed when JAX starts
(XLA_FLAGS=--xla_force_host_platform_device_count=8).
"""
import os
import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import pytest
from jax.sharding import PartitionSpec as P

from lrm_jax import sharding
from lrm_jax.models import paligemma

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_fsdp_spec_picks_largest_divisible_dim():
  assert sharding.fsdp_spec((256, 1024), 4, min_size=1) == P(None, "fsdp")
  assert sharding.fsdp_spec((18, 2, 2048, 16384), 8, min_size=1) == P(None, None, None, "fsdp")
  assert sharding.fsdp_spec((1026, 6), 4, min_size=1) == P()  # nothing divisible: replicated
  assert sharding.fsdp_spec((1026, 8), 4, min_size=1) == P(None, "fsdp")
  assert sharding.fsdp_spec((64,), 4, min_size=1000) == P()  # small: replicated
  assert sharding.fsdp_spec((64,), 1, min_size=1) == P()


def test_make_mesh_errors_name_the_problem():
  assert sharding.make_mesh().shape == {"data": 1, "fsdp": len(jax.devices())}
  with pytest.raises(ValueError, match="unknown axes"):
    sharding.make_mesh({"model": 2})
  with pytest.raises(ValueError, match="need"):
    sharding.make_mesh({"data": 3, "fsdp": 1})


def test_logical_strategy_covers_every_param():
  model = paligemma.Model(**paligemma.get_config("tiny"))
  boxed = paligemma.init_shapes(model, 16)
  specs = nn.get_partition_spec(boxed)
  shapes = nn.meta.unbox(boxed)
  sh = sharding.param_shardings(shapes, sharding.make_mesh(), "logical", logical_specs=specs)
  assert jax.tree.structure(sh) == jax.tree.structure(shapes)
  emb = specs["llm"]["embedder"]["input_embedding"]
  assert tuple(emb) == ("vocab", "embed") and specs["llm"]["layers"]["mlp"]["linear"] == P("layers", "mlp", "embed")


_SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np, optax
    from lrm_jax import sharding
    from lrm_jax.models import losses, paligemma
    from lrm_jax.utils import compile_cache
    compile_cache.enable()
    assert len(jax.devices()) == 8, jax.devices()
    model = paligemma.Model(**paligemma.get_config("tiny"))
    params = paligemma.init(model, jax.random.PRNGKey(0), 16, num_images=2)
    # SGD with momentum, not Adam: some gradients are exactly zero in theory (the ViT key bias) and Adam would
    # blow their float noise up to full-size, sign-random steps that no two reduction orders agree on.
    tx = optax.sgd(0.5, momentum=0.9)
    rng = np.random.default_rng(0)
    batch = dict(images=rng.uniform(-1, 1, (8, 2, 16, 16, 3)).astype(np.float32),
                 tokens=rng.integers(1, 256, (8, 6)).astype(np.int32),
                 mask_ar=np.array([[0, 0, 0, 1, 1, 1]] * 8, np.int32))
    batch["mask_loss"] = batch["mask_ar"]

    def step(params, opt_state, b):
      def loss_fn(p):
        logits = model.apply({"params": p}, b["images"], b["tokens"], b["mask_ar"])
        return losses.answer_nll(logits, b["tokens"], b["mask_loss"])
      loss, g = jax.value_and_grad(loss_fn)(params)
      upd, opt_state = tx.update(g, opt_state, params)
      return optax.apply_updates(params, upd), opt_state, loss

    ref_p, _, ref_loss = jax.jit(step)(params, tx.init(params), batch)

    mesh = sharding.make_mesh({"data": 2, "fsdp": 4})
    p_sh = sharding.param_shardings(params, mesh, "fsdp", min_size=256)
    opt_state = tx.init(params)
    o_sh = sharding.param_shardings(opt_state, mesh, "fsdp", min_size=256)
    n_split = sum(s.spec != jax.sharding.PartitionSpec() for s in jax.tree.leaves(p_sh))
    assert n_split >= 10, n_split
    sp, so, sb = (jax.device_put(params, p_sh), jax.device_put(opt_state, o_sh), sharding.shard_batch(batch, mesh))
    with jax.sharding.set_mesh(mesh), sharding.activation_rules():
      f = jax.jit(step, in_shardings=(p_sh, o_sh, sharding.batch_sharding(mesh)), out_shardings=(p_sh, o_sh, None))
      new_p, _, loss = f(sp, so, sb)
    emb = new_p["llm"]["embedder"]["input_embedding"]
    assert len(emb.sharding.device_set) == 8 and emb.addressable_shards[0].data.shape[0] == 256 // 4
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(new_p), jax.tree.leaves(ref_p)):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    print("OK loss", float(loss), float(ref_loss), "sharded leaves", n_split)

    # batching.data_parallel: each device runs the (micro-batched) forward on its slice; same logits as one device.
    from lrm_jax.models import batching
    fwd = lambda p, i, t, a: model.apply({"params": p}, i, t, a)
    ref = jax.jit(fwd)(params, batch["images"], batch["tokens"], batch["mask_ar"])
    flat = sharding.make_mesh({"data": 8, "fsdp": 1})
    dp, put = batching.data_parallel(batching.microbatched(fwd, 2), flat)
    args = put(params, batch["images"], batch["tokens"], batch["mask_ar"])
    assert len(args[1].sharding.device_set) == 8 and args[1].addressable_shards[0].data.shape[0] == 1
    out = dp(*args)
    assert len(out.sharding.device_set) == 8
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-5, atol=1e-5)
    print("OK data_parallel")
""")


def test_fsdp_training_step_and_data_parallel_forward_match_one_device():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu",
             PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-4000:]
  assert "OK loss" in out.stdout and "OK data_parallel" in out.stdout
