"""What to draw: a static, jit-friendly description of a MuJoCo model's visible primitive geoms and cameras.

Extracted once per `mujoco.MjModel`. Array fields are pytree leaves (so a scene can be passed through `jax.jit`
like any other argument); the geom types, names and model sizes are static pytree metadata, so `jit` compiles the
renderer once per scene *structure* and the intersection code is specialised per geom type (no per-pixel switch
over five primitive kinds).

Which geoms are drawn follows `mujoco.mj_ray`, so that our segmentation can be checked against MuJoCo's C ray
caster pixel by pixel (verified with mujoco 4.0.0):
  * geoms whose *effective* alpha is 0 are skipped. The effective alpha is the material's alpha when the geom has a
    material (even if the geom sets its own rgba), else the geom's own rgba alpha.
  * only geoms whose `group` is in `groups` are drawn; MuJoCo's viewer shows groups 0, 1, 2 by default
    (`mjvOption().geomgroup == [1,1,1,0,0,0]`), so that is our default. Groups >= 5 count as group 5, like mj_ray.
  * static (world-body) geoms are drawn (mj_ray's `flg_static=1`).
Partial transparency (0 < alpha < 1) is drawn opaque, as mj_ray treats it.

Colour follows MuJoCo's visualiser: the geom's rgba, unless the geom has a material and its rgba is MuJoCo's
default (0.5, 0.5, 0.5, 1), in which case the material's rgba. Textures (e.g. checker floors) are ignored.
"""
import math

import flax.struct
import jax.numpy as jnp
import mujoco
import numpy as np

# MuJoCo geom type codes we can intersect analytically (mjtGeom).
PLANE = int(mujoco.mjtGeom.mjGEOM_PLANE)
SPHERE = int(mujoco.mjtGeom.mjGEOM_SPHERE)
CAPSULE = int(mujoco.mjtGeom.mjGEOM_CAPSULE)
CYLINDER = int(mujoco.mjtGeom.mjGEOM_CYLINDER)
BOX = int(mujoco.mjtGeom.mjGEOM_BOX)
SUPPORTED_TYPES = {PLANE: "plane", SPHERE: "sphere", CAPSULE: "capsule", CYLINDER: "cylinder", BOX: "box"}

DEFAULT_GROUPS = (0, 1, 2)
_MJ_DEFAULT_RGBA = np.array([0.5, 0.5, 0.5, 1.0], np.float32)


@flax.struct.dataclass
class Scene:
  """Drawn geoms (G of them, in model order) and all model cameras (C).

  Attributes:
    geom_id: (G,) int32 index of each drawn geom in the MjModel (what segmentation reports).
    geom_size: (G, 3) float32 MuJoCo geom sizes (half-extents / radius, half-length; see mjModel.geom_size).
    geom_rgba: (G, 4) float32 default colour (material rules applied, see module docstring).
    cam_fovy: (C,) float32 vertical field of view of each camera, degrees.
    geom_type: static tuple of G mjtGeom codes.
    geom_name: static tuple of G geom names ('' when unnamed) for building per-geom masks.
    cam_name: static tuple of C camera names.
    cam_orthographic: static tuple of C bools; orthographic cameras are not supported by the renderer.
    groups: static tuple of the geom groups drawn.
    ngeom_model: static number of geoms in the MjModel (length of data.geom_xpos).
  """
  geom_id: jnp.ndarray
  geom_size: jnp.ndarray
  geom_rgba: jnp.ndarray
  cam_fovy: jnp.ndarray
  geom_type: tuple = flax.struct.field(pytree_node=False)
  geom_name: tuple = flax.struct.field(pytree_node=False)
  cam_name: tuple = flax.struct.field(pytree_node=False)
  cam_orthographic: tuple = flax.struct.field(pytree_node=False)
  groups: tuple = flax.struct.field(pytree_node=False)
  ngeom_model: int = flax.struct.field(pytree_node=False)

  @property
  def ngeom(self) -> int:
    return len(self.geom_type)

  def type_groups(self) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """Static ((type, (scene indices...)), ...) so each primitive kind gets its own vectorised pass."""
    out = []
    for t in sorted(set(self.geom_type)):
      out.append((t, tuple(i for i, gt in enumerate(self.geom_type) if gt == t)))
    return tuple(out)

  def camera_index(self, name: str) -> int:
    """Index of the camera called `name` (for the static `camera=` argument of `render`)."""
    if name not in self.cam_name:
      raise ValueError(f"no camera named {name!r}; cameras: {self.cam_name}")
    return self.cam_name.index(name)

  def geomgroup_mask(self) -> np.ndarray:
    """The (6,) uint8 `geomgroup` argument for mj_ray/mj_multiRay that selects the same groups."""
    mask = np.zeros(mujoco.mjNGROUP, np.uint8)
    mask[list(self.groups)] = 1
    return mask


def _geom_name(m: mujoco.MjModel, i: int) -> str:
  return mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, i) or ""


def _effective_alpha(m: mujoco.MjModel, i: int) -> float:
  """The alpha mj_ray tests: the material's when there is one, else the geom's."""
  matid = int(m.geom_matid[i])
  return float(m.mat_rgba[matid, 3]) if matid >= 0 else float(m.geom_rgba[i, 3])


def _colour(m: mujoco.MjModel, i: int) -> np.ndarray:
  """MuJoCo's visualiser rule: a geom rgba left at the default defers to the material's rgba."""
  rgba = np.asarray(m.geom_rgba[i], np.float32)
  matid = int(m.geom_matid[i])
  if matid >= 0 and np.array_equal(rgba, _MJ_DEFAULT_RGBA):
    return np.asarray(m.mat_rgba[matid], np.float32)
  return rgba


def _camera_fovy(m: mujoco.MjModel, c: int) -> float:
  """Vertical fov in degrees; cameras given by sensor size + focal length are converted (principal point ignored)."""
  sensor_h = float(m.cam_sensorsize[c, 1])
  if sensor_h > 0:
    focal_y = float(m.cam_intrinsic[c, 1])
    return math.degrees(2.0 * math.atan(0.5 * sensor_h / focal_y))
  return float(m.cam_fovy[c])


def make_scene(m: mujoco.MjModel, groups: tuple[int, ...] = DEFAULT_GROUPS) -> Scene:
  """Extracts the drawn geoms and cameras of `m`; raises ValueError on a drawn geom of an unsupported type."""
  groups = tuple(sorted(set(int(g) for g in groups)))
  if not all(0 <= g < mujoco.mjNGROUP for g in groups):
    raise ValueError(f"geom groups must be in [0, {mujoco.mjNGROUP - 1}], got {groups}")
  drawn = []
  for i in range(m.ngeom):
    group = min(mujoco.mjNGROUP - 1, max(0, int(m.geom_group[i])))  # mj_ray clamps groups the same way.
    if group not in groups or _effective_alpha(m, i) == 0:
      continue
    gtype = int(m.geom_type[i])
    if gtype not in SUPPORTED_TYPES:
      type_name = mujoco.mjtGeom(gtype).name.removeprefix("mjGEOM_").lower()
      raise ValueError(
          f"geom {i} '{_geom_name(m, i)}' has unsupported type '{type_name}'; the JAX renderer supports "
          f"{', '.join(SUPPORTED_TYPES.values())} (or move the geom to a group outside {groups}, or set alpha 0).")
    drawn.append(i)

  projection = getattr(m, "cam_projection", np.zeros(m.ncam, np.int32))
  return Scene(
      geom_id=jnp.asarray(np.array(drawn, np.int32)),
      geom_size=jnp.asarray(np.asarray(m.geom_size[drawn], np.float32).reshape(-1, 3)),
      geom_rgba=jnp.asarray(np.array([_colour(m, i) for i in drawn], np.float32).reshape(-1, 4)),
      cam_fovy=jnp.asarray(np.array([_camera_fovy(m, c) for c in range(m.ncam)], np.float32)),
      geom_type=tuple(int(m.geom_type[i]) for i in drawn),
      geom_name=tuple(_geom_name(m, i) for i in drawn),
      cam_name=tuple(mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_CAMERA, c) or "" for c in range(m.ncam)),
      cam_orthographic=tuple(bool(int(p) != 0) for p in np.asarray(projection).reshape(-1)),
      groups=groups,
      ngeom_model=int(m.ngeom),
  )


def geom_mask(scene: Scene, names=(), prefixes=()) -> jnp.ndarray:
  """(G,) bool mask of drawn geoms whose name is in `names` or starts with one of `prefixes`."""
  names, prefixes = set(names), tuple(prefixes)
  return jnp.asarray(np.array(
      [n in names or (bool(prefixes) and n.startswith(prefixes)) for n in scene.geom_name], bool))
