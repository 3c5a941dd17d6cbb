"""Optional backend: MJX's own Warp renderer (`mujoco.mjx.render`, NVIDIA GPUs, needs the `mujoco_warp` package).

Same output dict as `renderer.render` for a whole batch of worlds. UNTESTED here: `mujoco_warp` is not installed in
this environment, so only the "not available" error path has been exercised. Differences to expect from the
pure-JAX renderer: Warp shades with the model's own lights and textures, its batch size is fixed when the context is
created (no `jax.vmap` over it), it needs `mjx.put_model(m, impl='warp')` data, and no `Appearance`
randomisation is applied. Its image row order and depth convention have not been checked against ours.
"""
import importlib.util

import jax.numpy as jnp
import mujoco


def warp_available() -> bool:
  return importlib.util.find_spec("mujoco_warp") is not None and importlib.util.find_spec("warp") is not None


def make_warp_renderer(mj_model: mujoco.MjModel, *, camera: int, height: int, width: int, nworld: int,
                       shadows: bool = True, groups=(0, 1, 2), max_depth: float = 100.0):
  """Returns `fn(mjx_model, mjx_data_batch) -> dict(rgb, depth, seg)` backed by MuJoCo Warp.

  `mjx_model` must come from `mjx.put_model(mj_model, impl='warp')` and `mjx_data_batch` must hold `nworld` worlds.
  Raises RuntimeError (one line) when `mujoco_warp` is unavailable.
  """
  if not warp_available():
    raise RuntimeError("MuJoCo Warp renderer unavailable: the 'mujoco_warp' package (and an NVIDIA GPU) is needed; "
                       "use lrm_jax.render.renderer.render, the pure-JAX renderer, instead.")
  from mujoco import mjx  # pylint: disable=g-import-not-at-top

  ctx = mjx.create_render_context(
      mjm=mj_model, nworld=nworld, cam_res=(width, height), use_textures=True, use_shadows=shadows,
      render_rgb=True, render_depth=True, render_seg=True, enabled_geom_groups=list(groups))

  def fn(mjx_model, mjx_data):
    rc = ctx.pytree()
    mjx_data = mjx.refit_bvh(mjx_model, mjx_data, rc)
    rgb, depth, seg, _ = mjx.render_with_segmentation(mjx_model, mjx_data, rc)
    rgb = mjx.get_rgb(rc, camera, rgb)
    # get_depth divides by depth_scale and clamps to [0, 1]: scale back to metres (clipped at max_depth).
    depth = mjx.get_depth(rc, camera, depth, max_depth)[..., 0] * max_depth
    return dict(rgb=jnp.round(jnp.clip(rgb, 0, 1) * 255).astype(jnp.uint8), depth=depth,
                seg=mjx.get_segmentation(rc, camera, seg).astype(jnp.int32))

  return fn
