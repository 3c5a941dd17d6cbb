"""Pure-JAX renderer vs MuJoCo's C ray caster, batching, orientation, appearance. Tiny images: CPU is shared."""
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from lrm_jax.render import check
from lrm_jax.render import raycast
from lrm_jax.render import renderer
from lrm_jax.render import scene as scene_lib

H = W = 48
N_PER_TYPE = 3  # Fixed scene structure across seeds, so the renderer compiles once for all of them.


def _look_at_xyaxes(pos, target):
  """MJCF xyaxes for a camera at `pos` looking at `target` with world +z as 'up' (camera looks along its -z)."""
  fwd = np.asarray(target, float) - pos
  fwd /= np.linalg.norm(fwd)
  x = np.cross(fwd, [0.0, 0.0, 1.0])
  x /= np.linalg.norm(x)
  y = np.cross(x, fwd)
  return " ".join(f"{v:.6f}" for v in (*x, *y))


def _random_scene_xml(seed: int) -> str:
  """A floor, a finite tilted plane, N random-pose geoms of each primitive type, and hidden decoys."""
  rng = np.random.default_rng(seed)
  f = lambda v: " ".join(f"{x:.5f}" for x in np.atleast_1d(v))
  geoms = ['<geom name="floor" type="plane" size="0 0 0.1" rgba="0.8 0.8 0.8 1"/>',
           f'<geom name="panel" type="plane" size="0.3 0.2 0.1" pos="{f(rng.uniform(-0.5, 0.5, 3) + [0, 0, 0.6])}"'
           f' euler="{f(rng.uniform(-60, 60, 3))}" rgba="0.2 0.7 0.2 1"/>']
  sizes = {"sphere": lambda: rng.uniform(0.05, 0.2, 1),
           "capsule": lambda: rng.uniform([0.03, 0.05], [0.12, 0.2]),
           "cylinder": lambda: rng.uniform([0.03, 0.01], [0.15, 0.2]),
           "box": lambda: rng.uniform(0.03, 0.2, 3),
           "ellipsoid": None}
  for kind in ("sphere", "capsule", "cylinder", "box"):
    for k in range(N_PER_TYPE):
      geoms.append(f'<geom name="{kind}{k}" type="{kind}" size="{f(sizes[kind]())}" '
                   f'pos="{f(rng.uniform([-0.6, -0.6, 0.0], [0.6, 0.6, 0.6]))}" euler="{f(rng.uniform(-180, 180, 3))}" '
                   f'rgba="{f(rng.uniform(0.1, 1.0, 3))} 1"/>')
  # Decoys that neither MuJoCo's ray caster (with the default groups) nor we may draw.
  geoms.append('<geom name="clear" type="sphere" size="0.3" pos="0 0 0.3" rgba="1 0 0 0"/>')
  geoms.append('<geom name="hidden" type="box" size="0.25 0.25 0.25" pos="0.2 0 0.3" group="3"/>')
  cam_pos = np.array([*rng.uniform(-0.6, 0.6, 2) + [1.6, 0.0], rng.uniform(0.8, 1.4)])
  cam = (f'<camera name="cam" pos="{f(cam_pos)}" fovy="{rng.uniform(40, 70):.3f}" '
         f'xyaxes="{_look_at_xyaxes(cam_pos, rng.uniform(-0.1, 0.1, 3) + [0, 0, 0.2])}"/>')
  return f"<mujoco><worldbody>{''.join(geoms)}{cam}</worldbody></mujoco>"


def _model(xml):
  m = mujoco.MjModel.from_xml_string(xml)
  d = mujoco.MjData(m)
  mujoco.mj_forward(m, d)
  return m, d


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seg_and_depth_agree_with_mj_ray(seed):
  m, d = _model(_random_scene_xml(seed))
  res = check.compare_with_mj_ray(m, d, camera=0, height=H, width=W)
  assert res["agreement"] >= 0.99, res["agreement"]
  assert res["depth_max_err"] < 1e-4, res["depth_max_err"]
  # The comparison must be non-trivial: several geom kinds and background/floor actually visible.
  visible = set(np.unique(res["mj_seg"]).tolist())
  kinds = {int(m.geom_type[g]) for g in visible if g >= 0}
  assert len(kinds) >= 3, kinds
  hidden = {mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, n) for n in ("clear", "hidden")}
  assert not hidden & set(np.unique(res["seg"]).tolist())


def test_every_primitive_matches_mj_ray_up_close():
  """One large geom of each kind filling the view, at an odd pose, so each intersection routine is tested alone."""
  rng = np.random.default_rng(7)
  shapes = [("sphere", "0.3"), ("capsule", "0.15 0.25"), ("cylinder", "0.25 0.15"), ("box", "0.3 0.2 0.1"),
            ("plane", "0.4 0.3 0.1")]
  for kind, size in shapes:
    euler = " ".join(f"{x:.3f}" for x in rng.uniform(-50, 50, 3))
    m, d = _model(f'<mujoco><worldbody><geom type="{kind}" size="{size}" euler="{euler}"/>'
                  f'<camera pos="0.2 -0.3 1.2" xyaxes="{_look_at_xyaxes(np.array([0.2, -0.3, 1.2]), [0, 0, 0])}"/>'
                  '</worldbody></mujoco>')
    res = check.compare_with_mj_ray(m, d, 0, 32, 32)
    covered = (res["mj_seg"] == 0).mean()
    assert 0.1 < covered < 0.95, (kind, covered)
    assert res["agreement"] >= 0.99, (kind, res["agreement"])
    assert res["depth_max_err"] < 1e-4, (kind, res["depth_max_err"])


def test_jit_vmap_batch_matches_single_calls():
  m, d = _model(_random_scene_xml(3))
  scene = scene_lib.make_scene(m)
  poses = []
  for k in range(3):
    # The scene has no joints: move its geoms by shifting geom_pos in a fresh copy of the model.
    m2, d2 = _model(_random_scene_xml(3))
    m2.geom_pos[2:] += np.random.default_rng(k).uniform(-0.1, 0.1, m2.geom_pos[2:].shape)
    mujoco.mj_forward(m2, d2)
    poses.append((d2.geom_xpos.copy(), d2.geom_xmat.copy(), d2.cam_xpos.copy(), d2.cam_xmat.copy()))
  batch = [jnp.asarray(np.stack(x)) for x in zip(*poses)]
  apps = jax.vmap(lambda k: renderer.random_appearance(k, scene, 1.0))(jax.random.split(jax.random.key(0), 3))
  fn = jax.jit(jax.vmap(lambda a, b, c, e, app: renderer.render(scene, a, b, c, e, camera=0, height=H, width=W,
                                                               appearance=app)))
  out = fn(*batch, apps)
  assert out["rgb"].shape == (3, H, W, 3) and out["rgb"].dtype == jnp.uint8
  assert out["depth"].dtype == jnp.float32 and out["seg"].dtype == jnp.int32
  assert not np.array_equal(out["seg"][0], out["seg"][1])  # The batch really differs.
  for k in range(3):
    app = jax.tree.map(lambda x: x[k], apps)
    one = renderer.render(scene, *poses[k], camera=0, height=H, width=W, appearance=app)
    # XLA fuses the batched and single programs differently, so float rounding may flip a silhouette-edge pixel.
    same = np.asarray(out["seg"][k]) == np.asarray(one["seg"])
    assert same.mean() >= 0.998, same.mean()
    np.testing.assert_allclose(out["depth"][k][same], one["depth"][same], rtol=1e-4)
    rgb_diff = np.abs(out["rgb"][k].astype(int) - np.asarray(one["rgb"]).astype(int)).max(-1)
    assert (rgb_diff[same] <= 1).mean() >= 0.998


def test_image_is_upright_and_not_mirrored():
  """Red box above the optical axis lands in the top rows; blue box to the camera's right in the right columns."""
  xml = """<mujoco><worldbody>
    <geom name="red" type="box" size="0.1 0.1 0.1" pos="0 0 0.5" rgba="1 0 0 1"/>
    <geom name="blue" type="box" size="0.1 0.1 0.1" pos="0 0.5 0" rgba="0 0 1 1"/>
    <camera pos="2 0 0" xyaxes="0 1 0 0 0 1"/>
  </worldbody></mujoco>"""  # Camera at +x; its z axis = x cross y = world +x, so it looks along -z = world -x, right = +y.
  m, d = _model(xml)
  out = renderer.render_mjx(scene_lib.make_scene(m), d, camera=0, height=32, width=32, shadows=False)
  red_rows, red_cols = np.nonzero(np.asarray(out["seg"]) == 0)
  blue_rows, blue_cols = np.nonzero(np.asarray(out["seg"]) == 1)
  assert red_rows.size and blue_rows.size
  assert red_rows.max() < 16 and abs(red_cols.mean() - 15.5) < 2
  assert blue_cols.min() >= 16 and abs(blue_rows.mean() - 15.5) < 2
  rgb = np.asarray(out["rgb"])
  red = rgb[red_rows[0], red_cols[0]]
  assert red[0] > 100 and red[1] == red[2] == 0, red


def test_camera_index_may_be_traced_and_per_example():
  """One compiled program renders any camera: a traced, vmapped index gives each camera's own static render."""
  xml = """<mujoco><worldbody>
    <geom name="red" type="box" size="0.1 0.1 0.1" pos="0 0 0.5" rgba="1 0 0 1"/>
    <geom name="floor" type="plane" size="2 2 0.1" rgba="0.5 0.5 0.5 1"/>
    <camera name="a" pos="2 0 1" xyaxes="0 1 0 -0.4 0 1" fovy="45"/>
    <camera name="b" pos="0 -2 1.5" xyaxes="1 0 0 0 0.6 0.8" fovy="60"/>
  </worldbody></mujoco>"""
  m, d = _model(xml)
  scene = scene_lib.make_scene(m)
  fn = jax.jit(jax.vmap(lambda cam: renderer.render_mjx(scene, d, camera=cam, height=16, width=16)["rgb"]))
  traced = np.asarray(fn(jnp.array([1, 0, 1], jnp.int32)))
  for k, cam in enumerate((1, 0, 1)):
    static = np.asarray(renderer.render_mjx(scene, d, camera=cam, height=16, width=16)["rgb"])
    assert np.abs(traced[k].astype(int) - static.astype(int)).max() <= 1
  assert np.abs(traced[0].astype(int) - traced[1].astype(int)).mean() > 5  # the two cameras do differ
  with pytest.raises(ValueError, match="camera 2 out of range"):
    renderer.render_mjx(scene, d, camera=2, height=16, width=16)


def test_unsupported_geom_type_is_refused_in_one_line():
  m = mujoco.MjModel.from_xml_string(
      '<mujoco><worldbody><geom name="egg" type="ellipsoid" size="0.1 0.2 0.3"/></worldbody></mujoco>')
  with pytest.raises(ValueError) as err:
    scene_lib.make_scene(m)
  msg = str(err.value)
  assert "\n" not in msg and "'egg'" in msg and "ellipsoid" in msg and "capsule" in msg
  # Not drawn (group 3) -> not refused.
  m = mujoco.MjModel.from_xml_string(
      '<mujoco><worldbody><geom name="egg" type="ellipsoid" size="0.1 0.2 0.3" group="3"/></worldbody></mujoco>')
  assert scene_lib.make_scene(m).ngeom == 0


def test_appearance_recolours_only_masked_geoms():
  xml = """<mujoco><worldbody>
    <light directional="true" dir="0 0 -1"/>
    <geom name="table" type="box" size="1 1 0.05" rgba="0.6 0.5 0.4 1"/>
    <geom name="red_cube" type="box" size="0.1 0.1 0.1" pos="0 0 0.15" rgba="1 0 0 1"/>
    <camera pos="0 -1.2 1.2" xyaxes="1 0 0 0 0.7071 0.7071"/>
  </worldbody></mujoco>"""
  m, d = _model(xml)
  scene = scene_lib.make_scene(m)
  mask = scene_lib.geom_mask(scene, names=["table"])
  np.testing.assert_array_equal(mask, [True, False])
  default = renderer.default_appearance(scene)
  # Strength 0 is the identity.
  same = renderer.random_appearance(jax.random.key(1), scene, 0.0, mask)
  jax.tree.map(np.testing.assert_allclose, same, default)
  app = renderer.random_appearance(jax.random.key(1), scene, 1.0, mask)
  assert np.abs(app.rgba[0] - default.rgba[0]).max() > 0.02
  np.testing.assert_array_equal(app.rgba[1], default.rgba[1])
  # In the image: with lighting/camera fixed, only table pixels change colour.
  app = app.replace(light_dir=default.light_dir, light_intensity=default.light_intensity, ambient=default.ambient,
                    headlight=default.headlight, sky_rgb=default.sky_rgb, cam_pos_offset=default.cam_pos_offset,
                    cam_rot_offset=default.cam_rot_offset, fovy_offset=default.fovy_offset)
  a = renderer.render_mjx(scene, d, camera=0, height=32, width=32, appearance=default)
  b = renderer.render_mjx(scene, d, camera=0, height=32, width=32, appearance=app)
  seg = np.asarray(a["seg"])
  changed = np.any(np.asarray(a["rgb"]) != np.asarray(b["rgb"]), -1)
  assert changed[seg == 0].mean() > 0.9 and not changed[seg != 0].any()


def test_shadows_darken_the_floor_under_a_box():
  xml = """<mujoco><worldbody>
    <geom type="plane" size="0 0 0.1" rgba="1 1 1 1"/>
    <geom type="box" size="0.1 0.1 0.1" pos="0 0 0.5"/>
    <camera pos="0 0 3" xyaxes="1 0 0 0 1 0" fovy="30"/>
  </worldbody></mujoco>"""
  m, d = _model(xml)
  scene = scene_lib.make_scene(m)
  # Light slanting toward +x: the box's shadow falls beside it, where the camera (looking straight down) sees it.
  app = renderer.default_appearance(scene).replace(light_dir=jnp.array([1.0, 0.0, -1.0]))
  lit = renderer.render_mjx(scene, d, camera=0, height=32, width=32, appearance=app, shadows=False)
  shadowed = renderer.render_mjx(scene, d, camera=0, height=32, width=32, appearance=app, shadows=True)
  floor = np.asarray(lit["seg"]) == 0
  dark = np.any(np.asarray(lit["rgb"]) != np.asarray(shadowed["rgb"]), -1)
  assert not dark[~floor].any()
  rows, cols = np.nonzero(dark)
  assert 0 < dark.sum() < 0.5 * floor.sum() and cols.mean() > 16  # A patch, on the +x (right) side.
  np.testing.assert_array_equal(lit["seg"], shadowed["seg"])


def test_camera_rays_follow_mujoco_convention():
  _, dirs = raycast.camera_rays(jnp.zeros(3), jnp.eye(3), 90.0, 4, 6)
  dirs = np.asarray(dirs)
  np.testing.assert_allclose(np.linalg.norm(dirs, axis=-1), 1.0, rtol=1e-6)
  assert (dirs[..., 2] < 0).all()  # Looks along -z.
  assert (dirs[0, :, 1] > 0).all() and (dirs[-1, :, 1] < 0).all()  # Row 0 is up.
  assert (dirs[:, 0, 0] < 0).all() and (dirs[:, -1, 0] > 0).all()  # Column 0 is left.
  # fovy=90: the top edge of the image (half a pixel above row 0's centre) is at 45 degrees.
  edge = (dirs[0, 0, 1] / -dirs[0, 0, 2]) * (2 / 1.5)
  np.testing.assert_allclose(edge, 1.0, rtol=1e-5)


def test_planes_are_one_sided_and_clipped_like_mj_ray():
  """mj_ray: a plane is only hit from its +z side, and size <= 0 makes it infinite along that axis only."""
  xml = """<mujoco><worldbody>
    <geom name="back" type="plane" size="0.3 0.3 0.1" pos="0 0 0.2" euler="180 0 0"/>
    <geom name="strip" type="plane" size="0 0.2 0.1" pos="0 0 0"/>
    <camera pos="0 0 1.5" xyaxes="1 0 0 0 1 0" fovy="60"/>
  </worldbody></mujoco>"""  # Camera straight above, so it sees the back of "back" and the front of "strip".
  m, d = _model(xml)
  res = check.compare_with_mj_ray(m, d, 0, 32, 32)
  assert res["agreement"] >= 0.99, res["agreement"]
  assert not (res["mj_seg"] == 0).any()  # Seen from behind: invisible.
  strip = res["seg"] == 1
  rows = strip.any(axis=1)
  assert 0 < rows.sum() < 32 and strip[rows].all()  # Infinite along x (whole image rows) ...
  assert not rows[0] and not rows[-1]  # ... clipped to |y| <= 0.2 (top and bottom rows see nothing).


def test_render_mjx_reads_mjx_data():
  from mujoco import mjx  # pylint: disable=g-import-not-at-top
  m, d = _model(_random_scene_xml(4))
  scene = scene_lib.make_scene(m)
  from_mjx = renderer.render_mjx(scene, mjx.put_data(m, d), camera=0, height=H, width=W)
  from_mj = renderer.render_mjx(scene, d, camera=0, height=H, width=W)
  np.testing.assert_array_equal(from_mjx["seg"], from_mj["seg"])
  np.testing.assert_array_equal(from_mjx["rgb"], from_mj["rgb"])


def test_warp_backend_reports_missing_package_in_one_line():
  from lrm_jax.render import warp_backend  # pylint: disable=g-import-not-at-top
  if warp_backend.warp_available():
    pytest.skip("mujoco_warp installed: the error path does not apply")
  m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom size="1"/><camera/></worldbody></mujoco>')
  with pytest.raises(RuntimeError, match="mujoco_warp") as err:
    warp_backend.make_warp_renderer(m, camera=0, height=8, width=8, nworld=1)
  assert "\n" not in str(err.value)


def test_depth_is_along_the_ray_and_converts_to_z_depth():
  m, d = _model('<mujoco><worldbody><geom type="plane" size="0 0 0.1"/>'
                '<camera pos="0 0 1" xyaxes="1 0 0 0 1 0" fovy="60"/></worldbody></mujoco>')
  depth = renderer.render_mjx(scene_lib.make_scene(m), d, camera=0, height=16, width=16, shadows=False)["depth"]
  z = np.asarray(renderer.ray_to_z_depth(depth, 60.0, 16, 16))
  np.testing.assert_allclose(z, 1.0, rtol=1e-5)  # A floor 1 m below a downward camera is at z-depth 1 everywhere ...
  assert np.asarray(depth)[0, 0] > 1.2  # ... while along-ray depth grows toward the corners.


_GL_SCRIPT = """
import mujoco, sys
from lrm_jax.render import check
xml = sys.argv[1]
m = mujoco.MjModel.from_xml_string(xml); d = mujoco.MjData(m); mujoco.mj_forward(m, d)
print("AGREEMENT", check.agreement_with_opengl(m, d, 0, 24, 40))
"""


def test_camera_model_matches_mujoco_opengl_segmentation():
  """Independent of our rays: MuJoCo's rasteriser (EGL, skipped where unavailable) sees the same geoms per pixel."""
  import os, subprocess, sys  # pylint: disable=g-import-not-at-top,multiple-imports
  xml = _random_scene_xml(0).replace('name="panel"', 'name="panel" group="4"')  # GL draws plane backs; mj_ray not.
  env = dict(os.environ, MUJOCO_GL="egl", PYTHONPATH=os.pathsep.join(sys.path))
  run = subprocess.run([sys.executable, "-c", _GL_SCRIPT, xml], env=env, capture_output=True, text=True, timeout=300)
  if "AGREEMENT" not in run.stdout:
    pytest.skip(f"no OpenGL (EGL) here: {run.stderr.strip().splitlines()[-1:]}")
  agreement = float(run.stdout.split("AGREEMENT")[1])
  assert agreement >= 0.98, agreement  # Non-square 24x40 image: also checks the aspect ratio handling.


def test_antialias_keeps_seg_and_depth_and_softens_edges():
  m, d = _model(_random_scene_xml(5))
  scene = scene_lib.make_scene(m)
  one = renderer.render_mjx(scene, d, camera=0, height=24, width=24, shadows=False)
  aa = renderer.render_mjx(scene, d, camera=0, height=24, width=24, shadows=False, antialias=3)
  np.testing.assert_array_equal(aa["seg"], one["seg"])
  np.testing.assert_allclose(aa["depth"], one["depth"], rtol=1e-5)
  seg = np.asarray(one["seg"])
  interior = np.ones_like(seg, bool)  # Pixels whose 4-neighbours all show the same geom.
  interior[1:-1, 1:-1] = ((seg[1:-1, 1:-1] == seg[:-2, 1:-1]) & (seg[1:-1, 1:-1] == seg[2:, 1:-1])
                          & (seg[1:-1, 1:-1] == seg[1:-1, :-2]) & (seg[1:-1, 1:-1] == seg[1:-1, 2:]))
  changed = np.any(np.abs(np.asarray(aa["rgb"]).astype(int) - np.asarray(one["rgb"]).astype(int)) > 8, -1)
  assert changed[~interior].mean() > 0.3 and changed[~interior].mean() > 3 * changed[interior].mean()
  with pytest.raises(ValueError, match="odd"):
    renderer.render_mjx(scene, d, camera=0, height=24, width=24, antialias=2)
