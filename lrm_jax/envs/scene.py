"""MJCF for LRM-Bench scenes, built from a small spec so each task only pays for the objects it uses.

A scene is a table, a floating two-finger end effector driven by Cartesian position actuators (x, y, z with gravity
compensation; fingers on slide joints), and task objects: cubes (free joints), a flat plate, a drawer in a cabinet
(slide joint with a handle) and flat buttons (pressed is read kinematically and latched in the task state, so they
need no contacts). Every geom is a primitive the pure-JAX renderer draws (plane, box, sphere, capsule, cylinder).

Collision bits keep MJX's all-pairs narrow phase small (contype of one geom AND conaffinity of the other):
  cube   contype=OBJ          conaffinity=OBJ|FINGER   -> cubes, table, plate, drawer; fingers
  finger contype=FINGER       conaffinity=STATIC_GRIP  -> table and the drawer handle only
  table  contype=OBJ|STATIC_GRIP conaffinity=0
  plate, drawer box, cabinet   contype=OBJ, conaffinity=0 -> cubes only
  handle contype=STATIC_GRIP  conaffinity=0            -> fingers only
"""
import dataclasses

OBJ, FINGER, STATIC_GRIP = 1, 2, 4

CUBE_HALF = 0.02
TABLE_HALF = 0.45
PLATE_HALF = (0.065, 0.065, 0.004)
MAT_HALF = 0.05
BUTTON_RADIUS, BUTTON_HALF_HEIGHT = 0.03, 0.006
BUTTON_TOP = 0.008 + 2 * BUTTON_HALF_HEIGHT
FINGER_HALF = (0.006, 0.014, 0.022)  # x (closing direction), y, z
FINGER_OPEN = 0.045  # finger centre offset from the tool centre point when fully open
DRAWER_INNER = (0.07, 0.06, 0.03)  # half extents of the drawer's inside
DRAWER_TRAVEL = 0.12  # how far the drawer slides out
HANDLE_GAP = 0.042  # handle bar offset from the drawer front: room for closed finger pads to hook behind it
CABINET_POS = (0.0, 0.2, 0.0)
WORKSPACE_LOW = (-0.3, -0.3, 0.005)
WORKSPACE_HIGH = (0.3, 0.3, 0.3)

# Named colours, shared by instructions ("the red cube") and rendering.
COLORS = {
    "red": (0.85, 0.15, 0.12), "green": (0.15, 0.7, 0.2), "blue": (0.15, 0.3, 0.85),
    "yellow": (0.92, 0.8, 0.12), "purple": (0.55, 0.2, 0.7), "orange": (0.95, 0.5, 0.1),
}
CUBE_COLORS = ("red", "green", "blue", "yellow", "purple", "orange")
BUTTON_COLORS = ("red", "green", "blue")


@dataclasses.dataclass(frozen=True)
class SceneSpec:
  """What a scene contains. `embodiment` picks the end-effector look: "gripper" or "hand".

  Plate, mat and buttons are mocap bodies so that their positions are randomised per episode through
  `data.mocap_pos` without changing the model (one compiled program serves every episode).
  """
  n_cubes: int = 1
  plate: bool = False
  mat: bool = False
  drawer: bool = False
  n_buttons: int = 0
  embodiment: str = "gripper"
  timestep: float = 0.01


# Tasks are grouped into scene families: one MJCF (and one compiled step) per family and embodiment.
FAMILIES = {
    "table": SceneSpec(n_cubes=3, plate=True, mat=True, n_buttons=3),
    "drawer": SceneSpec(n_cubes=2, drawer=True),
}


# The two end-effector looks share one geom structure (box palm, cylinder wrist, box pads, sphere tips) and explicit
# inertia: they differ only in visual sizes, poses and colours, so one compiled simulation program serves both, with
# the visual geom arrays passed in (see FamilyEnv.with_embodiment).
_LOOKS = {
    #            palm half size, palm z, palm rgba,         wrist r, h, z,      wrist rgba,        pad rgba,          tip r, tip rgba
    "gripper": ((0.055, 0.02, 0.012), 0.038, "0.25 0.25 0.28 1", (0.018, 0.03, 0.08), "0.6 0.6 0.62 1",
                "0.35 0.35 0.38 1", 0.004, "0.1 0.1 0.1 1"),
    "hand": ((0.05, 0.032, 0.018), 0.045, "0.87 0.68 0.55 1", (0.03, 0.035, 0.095), "0.25 0.35 0.6 1",
             "0.9 0.72 0.6 1", 0.009, "0.85 0.64 0.52 1"),
}


def _end_effector(embodiment: str) -> str:
  """The floating end effector. Its body frame is the tool centre point (between the finger pads)."""
  if embodiment not in _LOOKS:
    raise ValueError(f"unknown embodiment {embodiment!r}; expected one of {sorted(_LOOKS)}")
  palm, palm_z, palm_rgba, (wr, wh, wz), wrist_rgba, pad_rgba, tip_r, tip_rgba = _LOOKS[embodiment]
  vis = 'contype="0" conaffinity="0" mass="0"'
  fx, fy, fz = FINGER_HALF
  fingers = ""
  for side, sign in (("left", -1), ("right", 1)):
    fingers += (
        f'<body name="{side}_finger" pos="{sign * FINGER_OPEN} 0 0" gravcomp="1">'
        '<inertial pos="0 0 0" mass="0.05" diaginertia="1e-5 1e-5 1e-5"/>'
        f'<joint name="{side}_finger" type="slide" axis="{-sign} 0 0" range="0 {FINGER_OPEN - fx}" damping="2" '
        'armature="0.01"/>'
        f'<geom name="{side}_pad" type="box" size="{fx} {fy} {fz}" rgba="{pad_rgba}" friction="1.5 0.01 0.001" '
        f'contype="{FINGER}" conaffinity="{STATIC_GRIP}" mass="0" condim="4"/>'
        f'<geom name="{side}_tip" type="sphere" size="{tip_r}" pos="{-sign * (fx - tip_r * 0.5)} 0 {-fz + tip_r}" '
        f'rgba="{tip_rgba}" {vis}/></body>')
  return (
      '<body name="ee" pos="0 0 0" gravcomp="1">'  # origin at 0: joint qpos = world position
      '<inertial pos="0 0 0.04" mass="0.4" diaginertia="1e-3 1e-3 1e-3"/>'
      '<joint name="ee_x" type="slide" axis="1 0 0" damping="40" armature="0.1"/>'
      '<joint name="ee_y" type="slide" axis="0 1 0" damping="40" armature="0.1"/>'
      '<joint name="ee_z" type="slide" axis="0 0 1" damping="40" armature="0.1"/>'
      f'<geom name="palm" type="box" size="{palm[0]} {palm[1]} {palm[2]}" pos="0 0 {palm_z}" rgba="{palm_rgba}" {vis}/>'
      f'<geom name="wrist" type="cylinder" size="{wr} {wh}" pos="0 0 {wz}" rgba="{wrist_rgba}" {vis}/>'
      f'{fingers}'
      '<camera name="wrist" pos="0 -0.11 0.05" xyaxes="1 0 0 0 0.5 0.866" fovy="75"/>'
      '</body>')


def _cubes(n: int) -> str:
  out = ""
  for i in range(n):
    out += (f'<body name="cube{i}" pos="{-0.15 + 0.1 * i} -0.1 {CUBE_HALF}"><freejoint name="cube{i}"/>'
            f'<geom name="cube{i}" type="box" size="{CUBE_HALF} {CUBE_HALF} {CUBE_HALF}" rgba="0.5 0.5 0.5 1" '
            f'mass="0.05" friction="1.2 0.01 0.001" condim="4" contype="{OBJ}" conaffinity="{OBJ | FINGER}"/>'
            '</body>')
  return out


def _plate() -> str:
  x, y, z = PLATE_HALF
  return (f'<body name="plate" pos="0.1 0.05 {z}" mocap="true"><geom name="plate" type="box" size="{x} {y} {z}" '
          f'rgba="0.93 0.93 0.9 1" contype="{OBJ}" conaffinity="0"/></body>')


def _mat() -> str:
  """A thin square target mat (visual only: cubes slide over it) for pushing."""
  return (f'<body name="mat" pos="-0.1 0.0 0.0005" mocap="true"><geom name="mat" type="box" '
          f'size="{MAT_HALF} {MAT_HALF} 0.0005" rgba="0.3 0.6 0.65 1" contype="0" conaffinity="0"/></body>')


def _drawer() -> str:
  """A cabinet at the back of the table; the drawer slides out towards the front camera (-y)."""
  ix, iy, iz = DRAWER_INNER
  t = 0.006  # wall half thickness
  wood, dark = "0.62 0.45 0.3 1", "0.45 0.32 0.2 1"
  col = f'contype="{OBJ}" conaffinity="0"'
  walls = (
      f'<geom name="drawer_bottom" type="box" size="{ix} {iy} {t}" pos="0 0 {-iz}" rgba="{wood}" {col}/>'
      f'<geom name="drawer_front" type="box" size="{ix + t} {t} {iz + 0.004}" pos="0 {-iy - t} 0" rgba="{dark}" {col}/>'
      f'<geom name="drawer_back" type="box" size="{ix} {t} {iz}" pos="0 {iy + t} 0" rgba="{wood}" {col}/>'
      f'<geom name="drawer_left" type="box" size="{t} {iy} {iz}" pos="{-ix - t} 0 0" rgba="{wood}" {col}/>'
      f'<geom name="drawer_right" type="box" size="{t} {iy} {iz}" pos="{ix + t} 0 0" rgba="{wood}" {col}/>'
      f'<geom name="handle" type="box" size="0.035 0.006 0.008" pos="0 {-iy - 2 * t - HANDLE_GAP} 0.0" '
      f'rgba="0.75 0.75 0.78 1" contype="{STATIC_GRIP}" conaffinity="0"/>'
      f'<geom name="handle_left" type="box" size="0.004 {HANDLE_GAP / 2} 0.006" pos="-0.031 {-iy - 2 * t - HANDLE_GAP / 2} 0" '
      'rgba="0.75 0.75 0.78 1" contype="0" conaffinity="0"/>'
      f'<geom name="handle_right" type="box" size="0.004 {HANDLE_GAP / 2} 0.006" pos="0.031 {-iy - 2 * t - HANDLE_GAP / 2} 0" '
      'rgba="0.75 0.75 0.78 1" contype="0" conaffinity="0"/>')
  h = iz + t + 0.004  # cabinet inner half height
  cab = "0.5 0.36 0.24 1"
  cabinet = (
      f'<geom name="cabinet_top" type="box" size="{ix + 3 * t} {iy + 2 * t} {t}" pos="0 0 {2 * h + t}" '
      f'rgba="{cab}" {col}/>'
      f'<geom name="cabinet_left" type="box" size="{t} {iy + 2 * t} {h + t}" pos="{-ix - 3 * t} 0 {h}" '
      f'rgba="{cab}" {col}/>'
      f'<geom name="cabinet_right" type="box" size="{t} {iy + 2 * t} {h + t}" pos="{ix + 3 * t} 0 {h}" '
      f'rgba="{cab}" {col}/>'
      f'<geom name="cabinet_back" type="box" size="{ix + 3 * t} {t} {h + t}" pos="0 {iy + 3 * t} {h}" '
      f'rgba="{cab}" {col}/>')
  return (f'<body name="cabinet" pos="{CABINET_POS[0]} {CABINET_POS[1]} {CABINET_POS[2]}">{cabinet}'
          f'<body name="drawer" pos="0 0 {iz + t}" gravcomp="1">'
          f'<joint name="drawer" type="slide" axis="0 -1 0" range="0 {DRAWER_TRAVEL}" damping="3" armature="0.05"/>'
          f'{walls}</body></body>')


def _buttons(n: int) -> str:
  out = ""
  for i in range(n):
    out += (f'<body name="button{i}" pos="{-0.15 + 0.15 * i} 0.15 0" mocap="true">'
            f'<geom name="button{i}_base" type="box" size="0.04 0.04 0.004" pos="0 0 0.004" rgba="0.2 0.2 0.22 1" '
            'contype="0" conaffinity="0"/>'
            f'<geom name="button{i}" type="cylinder" size="{BUTTON_RADIUS} {BUTTON_HALF_HEIGHT}" '
            f'pos="0 0 {0.008 + BUTTON_HALF_HEIGHT}" rgba="0.5 0.5 0.5 1" contype="0" conaffinity="0"/></body>')
  return out


def build_mjcf(spec: SceneSpec) -> str:
  """Returns the MJCF string of a scene."""
  act = ('<position name="ee_x" joint="ee_x" kp="600" ctrlrange="-0.35 0.35"/>'
         '<position name="ee_y" joint="ee_y" kp="600" ctrlrange="-0.35 0.35"/>'
         '<position name="ee_z" joint="ee_z" kp="600" ctrlrange="-0.1 0.4"/>'
         f'<position name="left_finger" joint="left_finger" kp="150" ctrlrange="0 {FINGER_OPEN}" forcerange="-12 12"/>'
         f'<position name="right_finger" joint="right_finger" kp="150" ctrlrange="0 {FINGER_OPEN}" forcerange="-12 12"/>')
  return f"""<mujoco model="lrm_bench">
  <compiler angle="degree" autolimits="true"/>
  <!-- Euler, not implicitfast: on XLA CPU (jaxlib 0.10.2) implicitfast's batched factorisation hangs forever once a
       vmapped batch reaches 64 environments. Explicit damping is stable here (omega * dt <= 0.55 for every joint). -->
  <option timestep="{spec.timestep}" iterations="6" ls_iterations="8" integrator="Euler" cone="pyramidal">
    <flag eulerdamp="disable"/>
  </option>
  <visual><global offwidth="640" offheight="480"/></visual>
  <worldbody>
    <light name="sun" pos="0.3 -0.4 1.2" dir="-0.25 0.3 -1" directional="true"/>
    <geom name="table" type="plane" size="{TABLE_HALF} {TABLE_HALF} 0.01" rgba="0.78 0.72 0.62 1"
          contype="{OBJ | STATIC_GRIP}" conaffinity="0" friction="1 0.01 0.001"/>
    <camera name="front" pos="0 -0.36 0.58" xyaxes="1 0 0 0 0.864 0.504" fovy="50"/>
    <camera name="side" pos="0.45 -0.35 0.4" xyaxes="0.614 0.789 0 -0.429 0.334 0.838" fovy="55"/>
    <camera name="left" pos="-0.45 -0.35 0.4" xyaxes="0.614 -0.789 0 0.429 0.334 0.838" fovy="55"/>
    {_end_effector(spec.embodiment)}
    {_cubes(spec.n_cubes)}
    {_plate() if spec.plate else ""}
    {_mat() if spec.mat else ""}
    {_drawer() if spec.drawer else ""}
    {_buttons(spec.n_buttons)}
  </worldbody>
  <actuator>{act}</actuator>
</mujoco>"""
