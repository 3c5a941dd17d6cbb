"""Held-out tasks must never reach training data: the last line of defence before labels are made."""
from typing import Iterable

from data_pipelines.errors import ExcludedTaskError
from data_pipelines.record import Trajectory


class TaskGuard:
  """Raises ExcludedTaskError when a trajectory of an excluded task, or carrying an excluded task's instruction
  (learned from readers that dropped such episodes), is seen."""

  def __init__(self, exclude_tasks: Iterable[str] = ()):
    self.tasks = frozenset(exclude_tasks)
    self.instructions: set[str] = set()

  def add_instructions(self, instructions: Iterable[str]) -> None:
    self.instructions |= set(instructions)

  def check(self, traj: Trajectory) -> Trajectory:
    if traj.task is not None and traj.task in self.tasks:
      raise ExcludedTaskError(f"held-out task {traj.task!r} reached the training mixture "
                              f"(source {traj.source}, episode {traj.episode_id})")
    self.check_instruction(traj.instruction, traj.source)
    return traj

  def check_instruction(self, instruction: str, where: str = "") -> None:
    if instruction in self.instructions:
      raise ExcludedTaskError(f"instruction {instruction!r} of a held-out task reached the training mixture "
                              f"({where})")
