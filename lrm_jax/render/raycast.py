"""Camera rays and analytic ray-primitive intersections (plane, sphere, capsule, cylinder, box) in pure JAX.

Conventions (MuJoCo's):
  * a camera looks along -z of its frame, +x is image right, +y is image up; `fovy` is the vertical field of view
    between the top and bottom image edges. Pixel (row i, col j) is sampled at its centre, and row 0 is the TOP of
    the image, so images come out upright (unlike raw OpenGL buffers, which start at the bottom row).
  * `geom_xmat` columns are the geom's local axes in world coordinates; world->local is `(p - xpos) @ xmat`.
  * ray directions are unit vectors, so hit distances are metres along the ray -- the same quantity `mj_ray`
    returns for a unit `vec`.
  * planes are one-sided and their extent follows mj_ray: a ray only hits a plane travelling against its +z normal,
    and each half-size `size[k] <= 0` means "infinite along local axis k" independently; otherwise the hit must lie
    within |local coordinate| <= size[k].

Every intersection function takes local-frame ray origins `o` (..., 3) and unit directions `d` (..., 3) and returns
the smallest hit distance t >= 0 (..., ), or +inf where the ray misses. For an origin inside a solid the exit
distance is returned, as mj_ray does.
"""
import jax
import jax.numpy as jnp

from lrm_jax.render import scene as scene_lib

_INF = jnp.inf
_TINY = 1e-12  # Directions with |component| below this are treated as parallel (mj_ray uses mjMINVAL=1e-15).


def to_local(v, mat):
  """v (..., 3) world vectors -> geom frame: v @ mat for mat (..., 3, 3) or (3, 3).

  Written as multiply-adds rather than einsum/matmul on purpose: TPUs (and GPUs with TF32) run float32 dots at
  reduced precision by default, which would visibly shift silhouettes and make shadow rays hit their own surface.
  Elementwise code is exact float32 everywhere and fuses with the intersection math on every backend.
  """
  return v[..., 0:1] * mat[..., 0, :] + v[..., 1:2] * mat[..., 1, :] + v[..., 2:3] * mat[..., 2, :]


def to_world(v, mat):
  """v (..., 3) geom-frame vectors -> world frame: mat @ v (same precision reasoning as `to_local`)."""
  return v[..., 0:1] * mat[..., :, 0] + v[..., 1:2] * mat[..., :, 1] + v[..., 2:3] * mat[..., :, 2]


def camera_rays(cam_xpos, cam_xmat, fovy_deg, height: int, width: int):
  """World-space rays through pixel centres of a pinhole camera.

  Args:
    cam_xpos: (3,) camera position.
    cam_xmat: (3, 3) or (9,) camera orientation (columns: camera x, y, z axes in world frame).
    fovy_deg: vertical field of view, degrees (may be traced, e.g. for fov randomisation).
    height, width: static image size. Pixels are square, so the horizontal fov follows from the aspect ratio.

  Returns:
    (origin (3,), directions (height, width, 3)) with unit directions; row 0 is the top of the image.
  """
  cam_xmat = jnp.reshape(cam_xmat, (3, 3))
  # Distance from the pinhole to an image plane whose pixels are one unit apart.
  focal = 0.5 * height / jnp.tan(0.5 * jnp.deg2rad(fovy_deg))
  cols = jnp.arange(width, dtype=jnp.float32) + 0.5 - 0.5 * width
  rows = jnp.arange(height, dtype=jnp.float32) + 0.5 - 0.5 * height
  x = jnp.broadcast_to(cols[None, :], (height, width))
  y = jnp.broadcast_to(-rows[:, None], (height, width))  # Row 0 is the top: +y (up) in the camera frame.
  z = jnp.full((height, width), -1.0, jnp.float32) * focal  # The camera looks along its -z.
  local = jnp.stack([x, y, z], axis=-1)
  local = local / jnp.linalg.norm(local, axis=-1, keepdims=True)
  directions = to_world(local, cam_xmat)
  return jnp.asarray(cam_xpos, jnp.float32), directions


def _safe(v):
  """Nudges near-zero direction components away from 0 so divisions stay finite and keep their sign."""
  return jnp.where(jnp.abs(v) < _TINY, jnp.where(v < 0, -_TINY, _TINY), v)


def _nearest(*candidates):
  """Smallest non-negative candidate distance, +inf if none (NaNs from missed quadratics count as misses)."""
  best = _INF
  for t in candidates:
    best = jnp.minimum(best, jnp.where(t >= 0, t, _INF))  # NaN >= 0 is False.
  return best


def _round_roots(o, d, radius):
  """Distances where the ray o + t d meets the circle/sphere |p| = radius, in the coordinates given (2 or 3).

  Solves a t^2 + 2 b t + c = 0 with the discriminant written as a (r^2 - |o_perp|^2), o_perp being the origin's
  offset from the ray's closest point to the centre. That keeps float32 accurate near silhouettes, where the
  textbook b^2 - a c cancels catastrophically (the error would grow with |o|^2 instead of r^2). NaN where missed.
  """
  a = jnp.sum(d * d, axis=-1)
  b = jnp.sum(o * d, axis=-1)
  # a ~ 0 only for a cylinder side seen exactly along its axis: no side hit (not a spurious root at t=0).
  valid = a > _TINY
  a = jnp.where(valid, a, 1.0)
  perp = o - (b / a)[..., None] * d
  disc = jnp.where(valid, a * (radius ** 2 - jnp.sum(perp * perp, axis=-1)), jnp.nan)
  sq = jnp.sqrt(jnp.where(disc >= 0, disc, jnp.nan))
  return (-b - sq) / a, (-b + sq) / a


def intersect_plane(o, d, size):
  """One-sided plane z=0 facing +z, clipped to |x|<=size[0], |y|<=size[1] where those are > 0 (mj_ray rule)."""
  dz = d[..., 2]
  t = -o[..., 2] / jnp.where(dz < -_TINY, dz, -1.0)
  px, py = o[..., 0] + t * d[..., 0], o[..., 1] + t * d[..., 1]
  inside = ((size[0] <= 0) | (jnp.abs(px) <= size[0])) & ((size[1] <= 0) | (jnp.abs(py) <= size[1]))
  return jnp.where((dz < -_TINY) & (t >= 0) & inside, t, _INF)


def intersect_sphere(o, d, size):
  return _nearest(*_round_roots(o, d, size[0]))


def _side_roots(o, d, radius, half_height):
  """Hits with the lateral surface of the z-axis cylinder of `radius`, kept only where |z| <= half_height."""
  t0, t1 = _round_roots(o[..., :2], d[..., :2], radius)
  keep = lambda t: jnp.where(jnp.abs(o[..., 2] + t * d[..., 2]) <= half_height, t, jnp.nan)
  return keep(t0), keep(t1)


def intersect_cylinder(o, d, size):
  """Solid cylinder along local z: radius size[0], half-height size[1] (side and both caps)."""
  radius, half = size[0], size[1]
  side = _side_roots(o, d, radius, half)
  dz = _safe(d[..., 2])
  caps = []
  for zc in (-half, half):
    t = (zc - o[..., 2]) / dz
    px, py = o[..., 0] + t * d[..., 0], o[..., 1] + t * d[..., 1]
    caps.append(jnp.where(px * px + py * py <= radius * radius, t, jnp.nan))
  return _nearest(*side, *caps)


def intersect_capsule(o, d, size):
  """Capsule along local z: radius size[0], cylinder half-length size[1], hemispherical ends.

  The first hit of a union of solids is the smallest entry distance of its parts (a cylinder side and two spheres),
  so taking the smallest non-negative root over all parts is exact for origins outside the capsule.
  """
  radius, half = size[0], size[1]
  candidates = list(_side_roots(o, d, radius, half))
  for zc in (-half, half):
    candidates.extend(_round_roots(o - jnp.array([0.0, 0.0, 1.0]) * zc, d, radius))
  return _nearest(*candidates)


def intersect_box(o, d, size):
  """Axis-aligned box with half-extents size (slab method)."""
  inv = 1.0 / _safe(d)
  t_a = (-size - o) * inv
  t_b = (size - o) * inv
  t_near = jnp.max(jnp.minimum(t_a, t_b), axis=-1)
  t_far = jnp.min(jnp.maximum(t_a, t_b), axis=-1)
  hit = t_far >= jnp.maximum(t_near, 0.0)
  return jnp.where(hit, jnp.where(t_near >= 0, t_near, t_far), _INF)


INTERSECT = {
    scene_lib.PLANE: intersect_plane,
    scene_lib.SPHERE: intersect_sphere,
    scene_lib.CAPSULE: intersect_capsule,
    scene_lib.CYLINDER: intersect_cylinder,
    scene_lib.BOX: intersect_box,
}


def local_normal(gtype, p, size):
  """Outward surface normal at local hit points p (..., 3) for per-point geom type codes `gtype` (...,).

  Computed only for the winning geom of each ray (a cheap select over five formulas) so the intersection passes
  carry just a distance and an index.
  """
  ez = jnp.broadcast_to(jnp.array([0.0, 0.0, 1.0]), p.shape)
  # Sphere (and capsule ends / cylinder side after removing the axis component).
  radial = p - ez * jnp.clip(p[..., 2:3], -size[..., 1:2], size[..., 1:2])  # Capsule: nearest axis point.
  side = p * jnp.array([1.0, 1.0, 0.0])
  # Box: the face whose normalised coordinate is largest.
  rel = jnp.abs(p) / jnp.maximum(size, _TINY)
  face = jax.nn.one_hot(jnp.argmax(rel, axis=-1), 3) * jnp.sign(p)
  # Cylinder: cap if the hit is relatively closer to a cap than to the side.
  on_cap = (jnp.abs(p[..., 2]) / jnp.maximum(size[..., 1], _TINY)
            >= jnp.linalg.norm(p[..., :2], axis=-1) / jnp.maximum(size[..., 0], _TINY))
  cyl = jnp.where(on_cap[..., None], ez * jnp.sign(p[..., 2:3]), side)
  g = gtype[..., None]
  n = jnp.where(g == scene_lib.PLANE, ez,
      jnp.where(g == scene_lib.SPHERE, p,
      jnp.where(g == scene_lib.CAPSULE, radial,
      jnp.where(g == scene_lib.CYLINDER, cyl, face))))
  return n / jnp.maximum(jnp.linalg.norm(n, axis=-1, keepdims=True), _TINY)


def cast(scene: scene_lib.Scene, geom_xpos, geom_xmat, origins, directions, *, any_hit: bool = False,
         unroll: bool | int = 1):
  """Nearest hit of each ray against all drawn geoms.

  Args:
    scene: the static scene.
    geom_xpos: (G, 3) positions of the *drawn* geoms (already gathered with scene.geom_id).
    geom_xmat: (G, 3, 3) their orientations.
    origins: (..., 3) ray origins, or (3,) shared by all rays (camera rays).
    directions: (..., 3) unit ray directions, or (3,) shared by all rays (shadow rays toward a directional light).
      A shared origin or direction is moved into each geom's frame once, not once per pixel.
    any_hit: static; shadow rays only need to know whether something is hit, so skip tracking which geom.
    unroll: static `lax.scan` unroll. Keep 1: on CPU, full unrolling measured 2-3x slower without shadows and
      ~20x slower with them (XLA re-computes the per-pixel shadow-ray origins inside every geom's fused test), and
      compiles 3-10x longer.

  Returns:
    (t (...,), index (...,) int32 into the scene's drawn geoms, -1 where nothing is hit); index is None when
    any_hit.

  One `lax.scan` per geom type walks that type's geoms while every ray is processed at once, so memory is
  O(rays) rather than O(rays x geoms) (224x224 x 30 geoms x a batch of envs would not fit otherwise), and each
  type's intersection code is traced once, not once per geom.
  """
  shape = jnp.broadcast_shapes(jnp.shape(origins), jnp.shape(directions))[:-1]
  t_best = jnp.full(shape, _INF, jnp.float32)
  i_best = None if any_hit else jnp.full(shape, -1, jnp.int32)
  for gtype, members in scene.type_groups():
    idx = jnp.asarray(members, jnp.int32)
    fn = INTERSECT[gtype]

    def body(carry, xs, fn=fn):
      t_best, i_best = carry
      pos, mat, size, i = xs
      t = fn(to_local(origins - pos, mat), to_local(directions, mat), size)
      if any_hit:
        return (jnp.minimum(t, t_best), None), None
      closer = t < t_best
      return (jnp.where(closer, t, t_best), jnp.where(closer, i, i_best)), None

    xs = (geom_xpos[idx], geom_xmat[idx], scene.geom_size[idx], idx)
    (t_best, i_best), _ = jax.lax.scan(body, (t_best, i_best), xs, unroll=unroll)
  return t_best, i_best


def hit_normals(scene: scene_lib.Scene, geom_xpos, geom_xmat, origins, directions, t, index):
  """World-space unit normals at the hits (facing against the ray); arbitrary where index == -1."""
  if not scene.ngeom:
    return -directions
  safe = jnp.maximum(index, 0)
  types = jnp.asarray(scene.geom_type, jnp.int32)[safe]
  pos, mat, size = geom_xpos[safe], geom_xmat[safe], scene.geom_size[safe]
  directions = jnp.broadcast_to(directions, t.shape + (3,))
  hit = origins + jnp.where(jnp.isfinite(t), t, 0.0)[..., None] * directions
  p_local = to_local(hit - pos, mat)
  n = to_world(local_normal(types, p_local, size), mat)
  # Rays that start inside a solid see its inside: light the face they see.
  return jnp.where(jnp.sum(n * directions, axis=-1, keepdims=True) > 0, -n, n)
