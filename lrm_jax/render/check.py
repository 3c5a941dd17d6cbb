"""Cross-checks the JAX renderer against MuJoCo's own C ray caster through exactly the same camera rays."""
import mujoco
import numpy as np

from lrm_jax.render import raycast
from lrm_jax.render import renderer
from lrm_jax.render import scene as scene_lib


def compare_with_mj_ray(mj_model: mujoco.MjModel, mj_data: mujoco.MjData, camera: int, height: int, width: int,
                        scene: scene_lib.Scene | None = None) -> dict:
  """Renders with JAX and casts the same rays with `mujoco.mj_multiRay` (float64, C).

  `mj_data` must be up to date (`mujoco.mj_forward`). Returns dict(agreement=fraction of pixels with the same geom
  id, depth_max_err=max over agreeing hit pixels of |depth difference| / max(1 m, depth) -- metres up close,
  relative far away, where float32 has ~1e-7 relative precision and floors reach hundreds of metres -- seg,
  mj_seg, depth, mj_depth).
  """
  scene = scene_lib.make_scene(mj_model) if scene is None else scene
  out = renderer.render(scene, mj_data.geom_xpos, mj_data.geom_xmat, mj_data.cam_xpos, mj_data.cam_xmat,
                        camera=camera, height=height, width=width, shadows=False)
  origin, dirs = raycast.camera_rays(mj_data.cam_xpos[camera], mj_data.cam_xmat[camera],
                                     scene.cam_fovy[camera], height, width)
  dirs = np.asarray(dirs, np.float64).reshape(-1, 3)
  dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
  n = dirs.shape[0]
  mj_seg = np.zeros(n, np.int32)
  mj_depth = np.zeros(n, np.float64)
  mujoco.mj_multiRay(mj_model, mj_data, np.asarray(mj_data.cam_xpos[camera], np.float64), dirs.reshape(-1),
                     scene.geomgroup_mask(), 1, -1, mj_seg, mj_depth, None, n, mujoco.mjMAXVAL)
  mj_seg, mj_depth = mj_seg.reshape(height, width), mj_depth.reshape(height, width)
  seg, depth = np.asarray(out["seg"]), np.asarray(out["depth"])
  same = seg == mj_seg
  both_hit = same & (seg >= 0)
  err = np.abs(depth - mj_depth) / np.maximum(1.0, mj_depth)
  depth_err = float(np.max(err[both_hit])) if both_hit.any() else 0.0
  return dict(agreement=float(same.mean()), depth_max_err=depth_err, seg=seg, mj_seg=mj_seg, depth=depth,
              mj_depth=mj_depth)


def agreement_with_mj_ray(mj_model: mujoco.MjModel, mj_data: mujoco.MjData, camera: int, height: int,
                          width: int) -> float:
  """Fraction of pixels whose geom id from the JAX renderer equals mj_multiRay's through the same rays."""
  return compare_with_mj_ray(mj_model, mj_data, camera, height, width)["agreement"]


def agreement_with_opengl(mj_model: mujoco.MjModel, mj_data: mujoco.MjData, camera: int, height: int,
                          width: int) -> float:
  """Fraction of pixels whose geom id matches MuJoCo's own OpenGL segmentation render of the same camera.

  An independent check of the camera model (orientation, fovy, aspect, pixel centres), since `mj_ray` is cast
  through our own rays. Needs an OpenGL context, e.g. `MUJOCO_GL=egl` set before `import mujoco`. Expect < 100%:
  OpenGL rasterises tessellated capsules/cylinders, draws planes from behind too (mj_ray and we do not), and clips
  at zfar * extent (infinite floors end near the horizon there; mj_ray and we have no far clip).
  """
  gl = mujoco.Renderer(mj_model, height, width)
  try:
    gl.enable_segmentation_rendering()
    gl.update_scene(mj_data, camera=camera)
    ids = gl.render()
  finally:
    gl.close()
  gl_seg = np.where(ids[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM), ids[..., 0], -1)
  out = renderer.render(scene_lib.make_scene(mj_model), mj_data.geom_xpos, mj_data.geom_xmat, mj_data.cam_xpos,
                        mj_data.cam_xmat, camera=camera, height=height, width=width, shadows=False)
  return float((np.asarray(out["seg"]) == gl_seg).mean())
