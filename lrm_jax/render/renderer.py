"""Pure-JAX camera renderer: RGB, depth and segmentation of a MuJoCo scene, inside jit/vmap on any backend.

Outputs for one camera:
  rgb:   (H, W, 3) uint8, upright (row 0 is the top of the image).
  depth: (H, W) float32, metres ALONG THE RAY from the camera centre to the surface (what `mj_ray` returns for a unit
         direction; not z-depth; use `ray_to_z_depth` to convert). +inf where the ray hits nothing.
  seg:   (H, W) int32 MuJoCo geom id (index into the MjModel's geoms), -1 for background.

Shading is deliberately simple and cheap: Lambertian diffuse from one directional light, a camera headlight and ambient, optional hard
shadows (one shadow ray per pixel toward the light), flat sky colour, no textures, optional k x k supersampling.

`Appearance` is the domain-randomisation pytree (colours, light, camera jitter); datagen samples one per episode
with `random_appearance` and vmaps it alongside the simulator state.
"""
import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from lrm_jax.render import raycast
from lrm_jax.render import scene as scene_lib

_SHADOW_BIAS = 1e-3  # Metres to lift shadow-ray origins off the surface so a surface does not shadow itself.


@flax.struct.dataclass
class Appearance:
  """Per-episode look of a scene. All leaves are arrays so a batch of appearances can be vmapped.

  Attributes:
    rgba: (G, 4) colour of each drawn geom (scene order); alpha is ignored (everything drawn is opaque).
    light_dir: (3,) direction the light travels in world frame (pointing down = from above); need not be unit.
    light_intensity: () diffuse strength of the directional light.
    ambient: () ambient light level.
    headlight: () strength of a light at the camera (like MuJoCo's headlight) so faces turned away from the main
      light still show their shape.
    sky_rgb: (3,) background colour in [0, 1].
    cam_pos_offset: (3,) camera position offset, world frame, metres.
    cam_rot_offset: (3,) small camera rotation, axis-angle in the camera frame, radians.
    fovy_offset: () added to the camera's vertical field of view, degrees.
  """
  rgba: jnp.ndarray
  light_dir: jnp.ndarray
  light_intensity: jnp.ndarray
  ambient: jnp.ndarray
  headlight: jnp.ndarray
  sky_rgb: jnp.ndarray
  cam_pos_offset: jnp.ndarray
  cam_rot_offset: jnp.ndarray
  fovy_offset: jnp.ndarray


def default_appearance(scene: scene_lib.Scene) -> Appearance:
  """The scene's own colours, a light from above (tilted to come from the -x, -y side), no camera jitter."""
  return Appearance(
      rgba=scene.geom_rgba,
      light_dir=jnp.array([0.3, 0.4, -1.0], jnp.float32),
      light_intensity=jnp.array(0.6, jnp.float32),
      ambient=jnp.array(0.2, jnp.float32),
      headlight=jnp.array(0.3, jnp.float32),
      sky_rgb=jnp.array([0.62, 0.72, 0.85], jnp.float32),
      cam_pos_offset=jnp.zeros(3, jnp.float32),
      cam_rot_offset=jnp.zeros(3, jnp.float32),
      fovy_offset=jnp.zeros((), jnp.float32),
  )


def _hue_rotate(rgb, angle):
  """Rotates colours about the grey axis (a hue shift that keeps brightness); rgb (..., 3), angle (...)."""
  k = jnp.ones(3) / jnp.sqrt(3.0)
  cos, sin = jnp.cos(angle)[..., None], jnp.sin(angle)[..., None]
  # Rodrigues' rotation of each colour vector about k.
  return rgb * cos + jnp.cross(k, rgb) * sin + k * jnp.sum(k * rgb, -1, keepdims=True) * (1 - cos)


def random_appearance(rng, scene: scene_lib.Scene, strength=1.0, recolor_mask=None) -> Appearance:
  """Samples a randomised appearance; `strength` 0 gives `default_appearance` exactly.

  Args:
    rng: jax PRNG key.
    scene: the scene.
    strength: scalar in [0, 1] scaling every perturbation.
    recolor_mask: (G,) bool; only these geoms get hue/saturation/brightness jitter. Defaults to none of them, so
      task-defining colours ("the red cube") never change unless a caller opts a geom in (see `scene.geom_mask`).
      Lighting and camera jitter apply to the whole image regardless.
  """
  base = default_appearance(scene)
  g = scene.ngeom
  recolor_mask = jnp.zeros((g,), bool) if recolor_mask is None else jnp.asarray(recolor_mask, bool)
  ks = jax.random.split(rng, 11)
  u = lambda k, shape=(), lim=1.0: jax.random.uniform(k, shape, jnp.float32, -lim, lim) * strength

  rgb = scene.geom_rgba[:, :3]
  grey = jnp.mean(rgb, -1, keepdims=True)
  jittered = _hue_rotate(rgb, u(ks[0], (g,), jnp.pi))
  jittered = grey + (jittered - grey) * (1 + u(ks[1], (g, 1), 0.5))  # Saturation.
  jittered = jittered * (1 + u(ks[2], (g, 1), 0.3))  # Brightness.
  rgb = jnp.where(recolor_mask[:, None], jnp.clip(jittered, 0, 1), rgb)

  light_dir = base.light_dir + u(ks[3], (3,), 0.5) * jnp.array([1.0, 1.0, 0.3])  # Stays pointing downward.
  return Appearance(
      rgba=jnp.concatenate([rgb, scene.geom_rgba[:, 3:]], -1),
      light_dir=light_dir,
      light_intensity=base.light_intensity * (1 + u(ks[4], (), 0.3)),
      ambient=base.ambient * (1 + u(ks[5], (), 0.3)),
      headlight=base.headlight * (1 + u(ks[10], (), 0.3)),
      sky_rgb=jnp.clip(base.sky_rgb + u(ks[6], (3,), 0.15), 0, 1),
      cam_pos_offset=u(ks[7], (3,), 0.02),
      cam_rot_offset=u(ks[8], (3,), jnp.deg2rad(2.0)),
      fovy_offset=u(ks[9], (), 3.0),
  )


def _rotvec_to_mat(v):
  """Rodrigues: axis-angle (3,) -> rotation matrix; exact at zero angle (no division by the angle)."""
  angle = jnp.sqrt(jnp.sum(v * v) + 1e-24)
  k = v / angle
  kx = jnp.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
  kx2 = jnp.matmul(kx, kx, precision=jax.lax.Precision.HIGHEST)  # Full float32 on TPU/GPU too.
  return jnp.eye(3) + jnp.sin(angle) * kx + (1 - jnp.cos(angle)) * kx2


def ray_to_z_depth(depth, fovy_deg, height: int, width: int):
  """Converts along-ray depth (H, W) into z-depth (distance along the camera's optical axis)."""
  _, dirs = raycast.camera_rays(jnp.zeros(3), jnp.eye(3), fovy_deg, height, width)
  return depth * -dirs[..., 2]


def render(scene: scene_lib.Scene, geom_xpos, geom_xmat, cam_xpos, cam_xmat, *, camera, height: int,
           width: int, appearance: Appearance | None = None, shadows: bool = True, antialias: int = 1) -> dict:
  """Renders camera `camera` of the scene.

  Args:
    scene: from `scene.make_scene(mj_model)`.
    geom_xpos: (ngeom, 3) all model geom positions (mjx.Data.geom_xpos or MjData.geom_xpos).
    geom_xmat: (ngeom, 3, 3) or (ngeom, 9) geom orientations.
    cam_xpos: (ncam, 3) camera positions.
    cam_xmat: (ncam, 3, 3) or (ncam, 9) camera orientations.
    camera: camera index: a Python int (checked here), or an int32 array -- possibly traced and per-example under
      vmap, so that one compiled program renders any camera (datagen); a traced index must name a perspective camera.
    height, width: static image size.
    appearance: optional `Appearance`; `default_appearance(scene)` if None.
    shadows: static; cast one shadow ray per pixel (roughly doubles the cost).
    antialias: static odd k >= 1; rgb averages k x k samples per pixel (k^2 times the cost). depth and seg keep
      the centre sample, which is the pixel centre, so they are identical to the k=1 render.

  Returns:
    dict(rgb=(H, W, 3) uint8, depth=(H, W) float32 along-ray metres (+inf background), seg=(H, W) int32 geom id).
  """
  if antialias < 1 or antialias % 2 == 0:
    raise ValueError(f"antialias must be an odd integer >= 1 (its centre sample is the pixel centre), got {antialias}")
  if isinstance(camera, (int, np.integer)):
    if not 0 <= camera < len(scene.cam_name):
      raise ValueError(f"camera {camera} out of range: the model has {len(scene.cam_name)} cameras {scene.cam_name}")
    if scene.cam_orthographic[camera]:
      raise ValueError(f"camera {camera} '{scene.cam_name[camera]}' is orthographic; only perspective is supported.")
  return _render(scene, geom_xpos, geom_xmat, cam_xpos, cam_xmat, jnp.asarray(camera, jnp.int32), height=height,
                 width=width, appearance=appearance, shadows=shadows, antialias=antialias)


@functools.partial(jax.jit, static_argnames=("height", "width", "shadows", "antialias"))
def _render(scene, geom_xpos, geom_xmat, cam_xpos, cam_xmat, camera, *, height, width, appearance, shadows,
            antialias):
  app = default_appearance(scene) if appearance is None else appearance
  geom_xpos = jnp.asarray(geom_xpos, jnp.float32)[scene.geom_id]
  geom_xmat = jnp.reshape(jnp.asarray(geom_xmat, jnp.float32), (-1, 3, 3))[scene.geom_id]
  cam_pos = jnp.asarray(cam_xpos, jnp.float32)[camera] + app.cam_pos_offset
  cam_mat = jnp.matmul(jnp.reshape(jnp.asarray(cam_xmat, jnp.float32), (-1, 3, 3))[camera],
                       _rotvec_to_mat(app.cam_rot_offset), precision=jax.lax.Precision.HIGHEST)
  origin, dirs = raycast.camera_rays(cam_pos, cam_mat, scene.cam_fovy[camera] + app.fovy_offset,
                                     height * antialias, width * antialias)

  t, index = raycast.cast(scene, geom_xpos, geom_xmat, origin, dirs)
  hit = index >= 0
  normal = raycast.hit_normals(scene, geom_xpos, geom_xmat, origin, dirs, t, index)

  to_light = -app.light_dir / jnp.linalg.norm(app.light_dir)
  lambert = jnp.maximum(jnp.sum(normal * to_light, axis=-1), 0.0)
  if shadows:
    points = origin + jnp.where(hit, t, 0.0)[..., None] * dirs + _SHADOW_BIAS * normal
    t_shadow, _ = raycast.cast(scene, geom_xpos, geom_xmat, points, to_light, any_hit=True)
    lambert = jnp.where(jnp.isfinite(t_shadow), 0.0, lambert)
  facing = jnp.maximum(-jnp.sum(normal * dirs, axis=-1), 0.0)
  shade = app.ambient + app.headlight * facing + app.light_intensity * lambert
  base = app.rgba[jnp.maximum(index, 0), :3] if scene.ngeom else jnp.zeros(dirs.shape)
  colour = jnp.where(hit[..., None], base * shade[..., None], app.sky_rgb)
  colour = jnp.clip(colour, 0.0, 1.0)
  if antialias > 1:
    k = antialias
    colour = colour.reshape(height, k, width, k, 3).mean(axis=(1, 3))
    t, hit, index = (x[k // 2::k, k // 2::k] for x in (t, hit, index))
  rgb = jnp.round(colour * 255.0).astype(jnp.uint8)
  seg = jnp.where(hit, scene.geom_id[jnp.maximum(index, 0)] if scene.ngeom else -1, -1).astype(jnp.int32)
  return dict(rgb=rgb, depth=jnp.where(hit, t, jnp.inf).astype(jnp.float32), seg=seg)


def render_mjx(scene: scene_lib.Scene, data, *, camera, height: int, width: int,
               appearance: Appearance | None = None, shadows: bool = True, antialias: int = 1) -> dict:
  """`render` reading geom and camera poses from an `mjx.Data` (or a `mujoco.MjData` after mj_forward)."""
  return render(scene, data.geom_xpos, data.geom_xmat, data.cam_xpos, data.cam_xmat, camera=camera, height=height,
                width=width, appearance=appearance, shadows=shadows, antialias=antialias)
