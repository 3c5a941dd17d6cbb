"""Which episodes to generate: tasks x (clean | failure mode) x embodiment, with seeds. The datagen job runs each
scene family's episodes through one compiled rollout (see `lrm_jax.jobs.datagen.generate_many`)."""
import dataclasses
import itertools

from lrm_jax.envs import experts
from lrm_jax.envs import program
from lrm_jax.envs import tasks as tasks_lib

# Failure modes that do not apply to a task are replaced (a drawer has no object to swap, buttons cannot be dropped).
_FALLBACK = {"wrong_object": "noise", "drop": "stall", "undo": "noise"}


@dataclasses.dataclass(frozen=True)
class EpisodeSpec:
  task: str
  embodiment: str
  mode: str
  seed: int

  @property
  def family(self) -> str:
    return tasks_lib.TASKS[self.task].family


def applicable(task: str, mode: str) -> bool:
  t = tasks_lib.TASKS[task]
  carries = any(op[program.F["carry"]] for op in t.expert)
  return {"wrong_object": t.cube_roles + t.button_roles > 0, "drop": carries, "undo": len(t.undo) > 0}.get(mode, True)


def plan_episodes(task_names, episodes_per_task: int, failure_fraction: float, failure_modes, embodiments,
                  seed: int) -> list[EpisodeSpec]:
  """Deterministic plan: per task, round(failure_fraction * n) episodes cycle through the failure modes."""
  for name in task_names:
    if name not in tasks_lib.TASKS:
      raise ValueError(f"unknown task {name!r} in config.tasks; expected some of {sorted(tasks_lib.TASKS)}")
  for mode in failure_modes:
    if mode not in experts.MODES or mode == "clean":
      raise ValueError(f"unknown failure mode {mode!r}; expected some of {experts.MODES[1:]}")
  if not 0.0 <= failure_fraction <= 1.0:
    raise ValueError(f"failure_fraction must be in [0, 1], got {failure_fraction}")
  specs, index = [], 0
  for name in sorted(task_names):
    n_fail = round(failure_fraction * episodes_per_task) if failure_modes else 0
    modes = ["clean"] * (episodes_per_task - n_fail) + list(itertools.islice(itertools.cycle(failure_modes), n_fail))
    for k, mode in enumerate(modes):
      if not applicable(name, mode):
        mode = _FALLBACK[mode]
      specs.append(EpisodeSpec(name, embodiments[k % len(embodiments)], mode, seed * 1_000_003 + index))
      index += 1
  return specs

