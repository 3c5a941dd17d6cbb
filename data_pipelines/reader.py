"""Base class for readers: iterate items, apply the on_error policy, drop held-out tasks, validate records."""
import logging
from typing import Callable, Iterable, Iterator, Optional

from data_pipelines.errors import DataFormatError, SkipLog
from data_pipelines.record import Trajectory

_log = logging.getLogger(__name__)


class Reader:
  """Subclasses implement `_items()` yielding `(path, load)` where `load()` returns a Trajectory or None.

  Iterating a Reader is repeatable (each pass re-reads from disk) and deterministic (items in sorted order).
  `exclude_tasks`: trajectories whose `task` is in this set are dropped before they leave the reader; their
  instructions are remembered in `excluded_instructions` so the mixture can refuse them if they appear elsewhere.
  `no_instruction`: "raise" (a DataFormatError like any malformed record) or "skip": episodes whose instruction is
  empty are dropped and counted in `no_instruction_count` (per pass). Robot datasets such as Bridge and DROID
  have many such episodes, which are well-formed data, not errors: their readers default to "skip".
  """
  source = "unknown"
  no_instruction_default = "raise"

  def __init__(self, *, on_error: str = "raise", exclude_tasks: Iterable[str] = (),
               max_frames: Optional[int] = None, no_instruction: Optional[str] = None):
    no_instruction = no_instruction or self.no_instruction_default
    if no_instruction not in ("raise", "skip"):
      raise ValueError(f"no_instruction: expected 'raise' or 'skip', got {no_instruction!r}")
    self.no_instruction, self.no_instruction_count = no_instruction, 0
    self.skips = SkipLog(on_error, self.source)
    self.exclude_tasks = frozenset(exclude_tasks)
    self.excluded_instructions: set[str] = set()
    self.max_frames = max_frames
    self.shard_index, self.shard_count = 0, 1

  def shard(self, index: int, count: int) -> "Reader":
    """Keep only items k with k % count == index, decided before an item is loaded (no wasted decoding)."""
    if not 0 <= index < count:
      raise ValueError(f"shard: expected 0 <= index < count, got index={index}, count={count}")
    self.shard_index, self.shard_count = int(index), int(count)
    return self

  def _mine(self, k: int) -> bool:
    return k % self.shard_count == self.shard_index

  def _items(self) -> Iterator[tuple[str, Callable[[], Optional[Trajectory]]]]:
    raise NotImplementedError

  def __iter__(self) -> Iterator[Trajectory]:
    self.no_instruction_count = 0
    for k, (path, load) in enumerate(self._items()):
      if not self._mine(k):
        continue
      try:
        traj = load()
        if traj is None:
          continue
        if self.no_instruction == "skip" and not (isinstance(traj.instruction, str) and traj.instruction.strip()):
          self.no_instruction_count += 1
          continue
        traj.validate(path)
      except DataFormatError as err:
        self.skips.handle(err)
        continue
      except OSError as err:  # truncated/corrupted bytes inside an otherwise well-formed file (h5py, PIL, ffmpeg)
        self.skips.handle(DataFormatError(path, "data", "readable data", f"{type(err).__name__}: "
                                          f"{str(err).splitlines()[0][:120] if str(err) else ''}"))
        continue
      if traj.task is not None and traj.task in self.exclude_tasks:
        self.excluded_instructions.add(traj.instruction)
        continue
      yield traj


def failing(err: DataFormatError) -> Callable[[], None]:
  """A loader that raises `err`; lets `_items` report a file-level problem through the same on_error policy."""
  def load():
    raise err
  return load
