"""The train / held-out task split. Sacred: held-out tasks never reach reward-model training data.

The held-out tasks are long-horizon compositions of skills the training tasks teach (ordered presses, two placements,
drawer + placement); they are the tasks used for zero-shot reward evaluation and RL refinement.
"""
TRAIN_TASKS = frozenset({
    "push_cube", "pick_cube", "place_on_plate", "stack_two", "press_button", "stack_three",
    "open_drawer", "close_drawer", "put_in_drawer",
    # Two-skill compositions (tasks.py): "X, then Y" with a different pair of skills than any held-out task.
    "place_then_press", "push_then_press", "press_then_pick",
    # A second set (RESULTS: "More compositions"): other pairs of skills, and one triple.
    "stack_then_press", "press_then_place", "press_then_push", "push_place_press",
})
HELD_OUT_TASKS = frozenset({"press_buttons_in_order", "two_on_plate", "drawer_put_close"})
assert not TRAIN_TASKS & HELD_OUT_TASKS


def check_not_held_out(task_names, what: str = "training data") -> None:
  """Raises if any held-out task is among `task_names`."""
  leaked = sorted(set(task_names) & HELD_OUT_TASKS)
  if leaked:
    raise ValueError(f"held-out task(s) {leaked} must never appear in {what}")
