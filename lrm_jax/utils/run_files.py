"""What a run keeps in its workdir besides results: the workdir itself, the run record W/config.json, the log file.

- `prepare_workdir`: a workdir that is a file, cannot be created or cannot be written is a one-line ConfigError
  (not FileExistsError / FileNotFoundError from deep in os.makedirs).
- `record_config`: W/config.json says what produced the checkpoints and results beside it. A rerun with the same
  config resumes; a rerun with a different one is refused with a one-line diff, before anything is written, so the
  record keeps describing the files it sits with (it was overwritten before, then the run failed or mixed runs).
- `log_to_file`: the full log (INFO, every library) goes to W/logs/run.log; the console gets warnings and the
  jobs' own progress bars and summary lines. Repeated library lines (MJX's "Using JAX default device" once per
  model put on a device: hundreds per demo) are written once.
"""
import atexit
import contextlib
import json
import logging as py_logging
import os
import sys
import tempfile

from absl import logging

from lrm_jax.utils import config_args

RECORD = "config.json"
LOG = os.path.join("logs", "run.log")
# Fields that do not change what a run computes: a rerun may differ in them.
IGNORED_FIELDS = frozenset({"compile_cache_dir"})
# Top-level sections that only say where finished results are exported (`release`: the reward-model release
# folder): rerunning a finished run with one of them set exports it without training anything again.
IGNORED_SECTIONS = frozenset({"release"})


def write_json(path: str, obj) -> None:
  """Written whole or not at all (a run killed while writing leaves no half file under the real name); numpy
  scalars as numbers, anything else JSON cannot hold as its str."""
  if os.path.dirname(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=2, default=lambda x: x.item() if hasattr(x, "item") else str(x))
  os.replace(path + ".tmp", path)


def prepare_workdir(path) -> str:
  """The absolute workdir, created if missing; one-line ConfigError when it is a file or not writable."""
  if not path:
    raise config_args.ConfigError("--workdir", "a directory path", "''")
  workdir = os.path.abspath(path)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise config_args.ConfigError(f"--workdir={workdir}", "a directory (or a path where one can be made)",
                                  "an existing file")
  try:
    os.makedirs(workdir, exist_ok=True)
    # os.access says yes to root even on read-only filesystems; writing a file is the test that counts.
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise config_args.ConfigError(f"--workdir={workdir}", "a directory this user can create and write",
                                  f"{type(e).__name__}: {e.strerror or e}") from None
  return workdir


def _flat(tree, prefix: str = "") -> dict:
  if isinstance(tree, dict):
    out = {}
    for k, v in tree.items():
      out.update(_flat(v, f"{prefix}{k}."))
    return out
  return {prefix[:-1]: tree}


def config_diff(old: dict, new: dict) -> list[str]:
  """`field: old -> new` for every field that differs (IGNORED_FIELDS, IGNORED_SECTIONS excepted); top-level first
  (`total_steps` says more than the four model widths one `width=` argument changes), then by name."""
  a, b = _flat(old), _flat(new)
  out = []
  for k in sorted(set(a) | set(b), key=lambda k: (k.count("."), k)):
    if (k.split(".")[-1] in IGNORED_FIELDS or k.split(".")[0] in IGNORED_SECTIONS
        or a.get(k, "<absent>") == b.get(k, "<absent>")):
      continue
    out.append(f"{k}: {json.dumps(a.get(k, '<absent>'))} -> {json.dumps(b.get(k, '<absent>'))}")
  return out


def record_config(workdir: str, config, write: bool = True) -> None:
  """Writes W/config.json, or checks that an existing one describes this same config (ConfigError if not).
  Every process of a multi-process run checks (so all refuse together); only the one with `write` writes."""
  path = os.path.join(workdir, RECORD)
  text = config.to_json_best_effort(indent=2)
  if os.path.exists(path):
    try:
      with open(path) as f:
        old = json.load(f)
    except (OSError, ValueError):
      old = None  # an unreadable record (a kill mid-write of an old version) describes nothing: rewrite it
    if old is not None:
      diff = config_diff(old, json.loads(text))
      if diff:
        shown = "; ".join(diff[:5]) + (f"; and {len(diff) - 5} more" if len(diff) > 5 else "")
        raise config_args.ConfigError(
            f"{path}", "the config this workdir was run with (rerun it unchanged to resume, or use a new "
            f"--workdir)", f"{len(diff)} difference(s): {shown}")
      return
  if not write:
    return
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


# Library lines that say nothing to a user of a run: kept in the log file (once), never on the console. The fork
# warning is JAX's about forked Python; video writing forks and at once execs ffmpeg, which it is not.
CONSOLE_NOISE = ("Using JAX default device", "`FeatureConnector.dtype` is deprecated", "os.fork() was called")


class _Drop(py_logging.Filter):
  def filter(self, record) -> bool:
    msg = record.getMessage()
    return not any(p in msg for p in CONSOLE_NOISE)


class _Once(py_logging.Filter):
  """Lets each message of `patterns` through once (per handler): MJX logs its device per model placement."""

  def __init__(self, patterns=CONSOLE_NOISE):
    super().__init__()
    self.patterns, self.seen = patterns, set()

  def filter(self, record) -> bool:
    msg = record.getMessage()
    for p in self.patterns:
      if p in msg:
        if p in self.seen:
          return False
        self.seen.add(p)
    return True


def log_to_file(workdir: str, debug: bool = False, process_index: int = 0) -> str:
  """Full log (INFO) -> W/logs/run.log (appended: a resumed run continues it; process i > 0 of a multi-process
  run: W/logs/run.process_<i>.log); console: WARNING and above (INFO too with `debug`). Returns the path."""
  path = os.path.join(workdir, LOG if process_index == 0 else LOG.replace(".log", f".process_{process_index}.log"))
  os.makedirs(os.path.dirname(path), exist_ok=True)
  handler = py_logging.FileHandler(path)
  handler.setLevel(py_logging.INFO)
  handler.setFormatter(logging.PythonFormatter())
  handler.addFilter(_Once())
  while _STARTUP:  # what the config files' imports printed, in order
    startup = _STARTUP.pop(0)
    with open(startup) as src, open(path, "a") as dst:
      dst.write(src.read())
    os.remove(startup)
  root = py_logging.getLogger()
  root.addHandler(handler)
  py_logging.captureWarnings(True)  # Python warnings -> the log (and the console at WARNING, noise filtered)
  logging.set_verbosity(logging.INFO)  # absl's logger ...
  root.setLevel(py_logging.INFO)  # ... and every library's (they propagate to the root): what reaches the file
  console_warnings_only(debug)
  if not debug:
    logging.get_absl_handler().addFilter(_Drop())
  logging.info("full log: %s", path)
  return path


def console_warnings_only(debug: bool = False) -> None:
  """absl's console handler at WARNING (INFO with `debug`): jax's backend probing ("Unable to initialize backend
  'tpu'"), orbax and MJX info lines otherwise fill the screen before the first progress bar."""
  logging.get_absl_handler().setLevel(py_logging.INFO if debug else py_logging.WARNING)


@contextlib.contextmanager
def _fds_to(path: str):
  """File descriptors 1 and 2 (C++ and Python prints alike) appended to `path` while the block runs."""
  sys.stdout.flush()
  sys.stderr.flush()
  saved = [os.dup(1), os.dup(2)]
  with open(path, "a") as f:
    os.dup2(f.fileno(), 1)
    os.dup2(f.fileno(), 2)
    try:
      yield
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      os.dup2(saved[0], 1)
      os.dup2(saved[1], 2)
      for fd in saved:
        os.close(fd)


_STARTUP = []  # files holding what was printed while the config files were loaded (see startup_chatter_captured)


@contextlib.contextmanager
def startup_chatter_captured(enabled: bool = True):
  """Loading a config file imports brax, TensorFlow and MJX, whose start-up lines (TF's C++ "oneDNN custom
  operations", MJX's "Failed to import mujoco_warp" print) cannot be turned off by a setting; before the workdir
  is known they go to a temporary file that `log_to_file` moves into W/logs/run.log."""
  if not enabled:
    yield
    return
  fd, path = tempfile.mkstemp(prefix="lrm_jax_startup_", suffix=".log")
  os.close(fd)
  _STARTUP.append(path)
  atexit.register(_remove_startup_files)  # a run that stops before its workdir log exists leaves nothing behind
  with _fds_to(path):
    yield


def _remove_startup_files():
  while _STARTUP:
    with contextlib.suppress(OSError):
      os.remove(_STARTUP.pop())


@contextlib.contextmanager
def chatter_to(log_path: str, enabled: bool = True):
  """Runs the block (imports of the job's libraries) with fds 1 and 2 appended to `log_path`: TensorFlow's C++
  "oneDNN custom operations are on" lines (printed before absl logging is set up, so TF_CPP_MIN_LOG_LEVEL cannot
  stop them) and MJX's "Failed to import mujoco_warp" (a print; warp is not used)."""
  if not enabled:
    yield
    return
  with _fds_to(log_path):
    yield
