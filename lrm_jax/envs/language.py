"""Instruction templates. Slots name objects by colour: {c0} {c1} {c2} are cube roles, {b0} {b1} {b2} button roles.

Instructions are host-side strings: an episode stores the template index and role colours as integers (so reset
stays jittable) and `instruction(task, template, cube_colors, button_colors)` turns them into text.
"""
from lrm_jax.envs import scene

TEMPLATES = {
    "push_cube": (
        "push the {c0} cube onto the mat",
        "slide the {c0} block onto the square mat",
        "move the {c0} cube onto the mat by pushing it",
    ),
    "pick_cube": (
        "pick up the {c0} cube",
        "lift the {c0} block off the table",
        "grasp the {c0} cube and raise it",
    ),
    "place_on_plate": (
        "put the {c0} cube on the plate",
        "place the {c0} block onto the plate",
        "move the {c0} cube to the plate",
    ),
    "stack_two": (
        "stack the {c0} cube on the {c1} cube",
        "put the {c0} block on top of the {c1} block",
        "place the {c0} cube onto the {c1} one",
    ),
    "press_button": (
        "press the {b0} button",
        "push the {b0} button down",
        "hit the {b0} button",
    ),
    "stack_three": (
        "stack the {c1} cube on the {c0} cube, then the {c2} cube on top",
        "build a tower: {c0} at the bottom, then {c1}, then {c2}",
        "put the {c1} block on the {c0} block and then the {c2} block on the {c1} block",
    ),
    "press_buttons_in_order": (
        "press the {b0} button, then the {b1} button, then the {b2} button",
        "push the buttons in this order: {b0}, {b1}, {b2}",
        "first press {b0}, next {b1}, and finally {b2}",
    ),
    "two_on_plate": (
        "put the {c0} cube on the plate, then the {c1} cube",
        "place the {c0} block and then the {c1} block onto the plate",
        "move the {c0} cube to the plate and after that the {c1} cube",
    ),
    "place_then_press": (
        "put the {c0} cube on the plate, then press the {b0} button",
        "place the {c0} block onto the plate and after that push the {b0} button",
        "first move the {c0} cube to the plate, then hit the {b0} button",
    ),
    "push_then_press": (
        "push the {c0} cube onto the mat, then press the {b0} button",
        "slide the {c0} block onto the mat and then push the {b0} button down",
        "first push the {c0} cube onto the mat, after that hit the {b0} button",
    ),
    "press_then_pick": (
        "press the {b0} button, then pick up the {c0} cube",
        "push the {b0} button down and then lift the {c0} block",
        "first hit the {b0} button, next grasp the {c0} cube and raise it",
    ),
    "stack_then_press": (
        "stack the {c0} cube on the {c1} cube, then press the {b0} button",
        "put the {c0} block on top of the {c1} block and after that push the {b0} button",
        "first place the {c0} cube onto the {c1} one, then hit the {b0} button",
    ),
    "press_then_place": (
        "press the {b0} button, then put the {c0} cube on the plate",
        "push the {b0} button down and then place the {c0} block onto the plate",
        "first hit the {b0} button, next move the {c0} cube to the plate",
    ),
    "press_then_push": (
        "press the {b0} button, then push the {c0} cube onto the mat",
        "push the {b0} button down and then slide the {c0} block onto the mat",
        "first hit the {b0} button, after that move the {c0} cube onto the mat by pushing it",
    ),
    "push_place_press": (
        "push the {c0} cube onto the mat, put the {c1} cube on the plate, then press the {b0} button",
        "slide the {c0} block onto the mat, place the {c1} block onto the plate and finally push the {b0} button",
        "push the {c0} cube to the mat, move the {c1} cube to the plate, then hit the {b0} button",
    ),
    "open_drawer": (
        "open the drawer",
        "pull the drawer open",
        "slide the drawer out",
    ),
    "close_drawer": (
        "close the drawer",
        "push the drawer shut",
        "slide the drawer closed",
    ),
    "put_in_drawer": (
        "put the {c0} cube in the drawer",
        "place the {c0} block inside the open drawer",
        "drop the {c0} cube into the drawer",
    ),
    "drawer_put_close": (
        "open the drawer, put the {c0} cube inside, and close it",
        "pull the drawer out, place the {c0} block in it, then shut the drawer",
        "store the {c0} cube in the drawer and close the drawer",
    ),
}
NUM_TEMPLATES = 3


def instruction(task: str, template: int, cube_colors, button_colors, cube_order, button_order) -> str:
  """Fills a task's template. `cube_order[k]` is the cube index playing role k; its colour names slot {ck}."""
  if task not in TEMPLATES:
    raise ValueError(f"unknown task {task!r}; expected one of {sorted(TEMPLATES)}")
  words = {}
  for k, i in enumerate(cube_order):
    words[f"c{k}"] = scene.CUBE_COLORS[int(cube_colors[int(i)])]
  for k, i in enumerate(button_order):
    words[f"b{k}"] = scene.BUTTON_COLORS[int(button_colors[int(i)])]
  return TEMPLATES[task][int(template) % len(TEMPLATES[task])].format(**words)


def all_instructions(tasks=None) -> list[str]:
  """Every phrasing of every task with every colour filled in (tokenizer corpora, split checks)."""
  out = []
  for task in tasks or TEMPLATES:
    for template in TEMPLATES[task]:
      for a in scene.CUBE_COLORS:
        for b in scene.CUBE_COLORS:
          for bc in scene.BUTTON_COLORS:
            text = template.format(c0=a, c1=b, c2=a, b0=bc, b1=bc, b2=bc)
            out.append(text)
  return sorted(set(out))
