"""Pure-JAX camera rendering of MuJoCo primitive-geom scenes (RGB, depth along the ray, geom-id segmentation).

  scene = make_scene(mj_model)                                   # once per model
  out = render_mjx(scene, mjx_data, camera=0, height=64, width=64)  # inside jit / vmap
  app = random_appearance(rng, scene, 0.5, recolor_mask=geom_mask(scene, prefixes=("table",)))

Files: scene.py (what is drawn), raycast.py (camera rays, ray-primitive hits), renderer.py (shading, appearance),
check.py (agreement with mujoco.mj_multiRay), warp_backend.py (optional MuJoCo Warp renderer).
"""
from lrm_jax.render.renderer import Appearance
from lrm_jax.render.renderer import default_appearance
from lrm_jax.render.renderer import random_appearance
from lrm_jax.render.renderer import ray_to_z_depth
from lrm_jax.render.renderer import render
from lrm_jax.render.renderer import render_mjx
from lrm_jax.render.scene import geom_mask
from lrm_jax.render.scene import make_scene
from lrm_jax.render.scene import Scene
