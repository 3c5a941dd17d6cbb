"""One error type for malformed inputs, and the raise-or-skip policy every reader shares.

A reader that meets bad input either stops with a one-line message naming the file, the field and what was
expected, or (when configured with on_error="skip") drops that item, logs a warning and counts it, so a large
corpus with a few broken files can still be read and the count says how much was lost.
"""
import collections
import logging

_log = logging.getLogger(__name__)


class UserError(Exception):
  """An input the user can fix: a config, an argument, a workdir, a data file, a checkpoint.

  `lrm_jax.main` prints it as ONE line, `error: <message>`, and exits non-zero (a traceback only with
  LRM_JAX_DEBUG=1 or --debug): a traceback says "bug in lrm_jax", which these are not. The message reads
  `<what>: expected <x>[, got <y>]`. It lives here because data_pipelines imports nothing from lrm_jax, while
  lrm_jax (config errors, checkpoints) may import this module.
  """


def one_line(what, expected=None, got=None) -> str:
  """`<what>: expected <x>, got <y>` on one line (long values are cut: the line must fit a terminal)."""
  msg = str(what) if expected is None else f"{what}: expected {expected}"
  if got is not None:
    got = str(got)
    msg += f", got {got if len(got) <= 200 else got[:200] + '...'}"
  return " ".join(msg.split("\n"))


class InputError(UserError, ValueError):
  """A bad value given to an API or a config: `<what>: expected <x>, got <y>` (one line).

  One positional argument is a finished message (ml_collections' config_flags re-raises a config file's ValueError
  as `type(e)(text)`, which must construct)."""

  def __init__(self, what, expected=None, got=None):
    self.what, self.expected, self.got = what, expected, got
    super().__init__(one_line(what, expected, got) if expected is not None else str(what))


class DataFormatError(UserError, ValueError):
  """Malformed input. The message is one line: `<file>: field '<field>': expected <what>[, got <what>]`."""

  def __init__(self, path, field: str, expected: str, got=None):
    self.path, self.field, self.expected, self.got = str(path), field, expected, got
    msg = f"{self.path}: field '{field}': expected {expected}"
    if got is not None:
      msg += f", got {got}"
    super().__init__(msg.replace("\n", " "))


class ExcludedTaskError(UserError, RuntimeError):
  """A held-out task's episode or instruction reached training data (a config or data mistake: one line)."""


class SkipLog:
  """Applies the on_error policy: "raise" re-raises, "skip" counts the item per field and logs a warning."""

  def __init__(self, on_error: str = "raise", source: str = ""):
    if on_error not in ("raise", "skip"):
      raise ValueError(f"on_error: expected 'raise' or 'skip', got {on_error!r}")
    self.on_error, self.source = on_error, source
    self.by_field = collections.Counter()
    self.messages: list[str] = []

  @property
  def count(self) -> int:
    return sum(self.by_field.values())

  def handle(self, err: DataFormatError) -> None:
    if self.on_error == "raise":
      raise err
    self.by_field[err.field] += 1
    self.messages.append(str(err))
    _log.warning("[%s] skipped item %d: %s", self.source, self.count, err)
