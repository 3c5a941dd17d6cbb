"""The one entry point: `python -m lrm_jax.main --config=configs/<name>.py[:arg] --workdir=DIR`.

Any config field can be overridden on the command line as `--config.field=value` (ml_collections config_flags).
Multi-host: run the same command in every process with the environment of `lrm_jax.utils.distributed` set
(`launch/multihost_local.sh`, `launch/tpu_pod.sh`, `launch/gpu.sh` do that).

User errors (a bad flag, config value, workdir, data file or checkpoint: `data_pipelines.errors.UserError`, e.g.
`config_args.ConfigError`, `DataFormatError`) print one line, `error: <what>: expected <x>, got <y>`, and exit
with status 2; anything else is a bug and keeps its traceback (status 1). `--debug` or `LRM_JAX_DEBUG=1` prints
the traceback of user errors too. The whole config is validated (`jobs.validate`) before any work starts.
"""
import difflib
import os
import re
import sys
import traceback

# TensorFlow (tf.data, TFDS) logs its C++ start-up chatter to the console otherwise; set before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import jax  # noqa: E402
import ml_collections  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from data_pipelines import errors  # noqa: E402
from lrm_jax import jobs  # noqa: E402
from lrm_jax.utils import compile_cache  # noqa: E402
from lrm_jax.utils import distributed  # noqa: E402
from lrm_jax.utils import run_files  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a configs/*.py file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the run writes logs, data, plots and videos.")
flags.DEFINE_bool("debug", False, "Print the traceback of user errors too (same as LRM_JAX_DEBUG=1).")
flags.mark_flags_as_required(["config", "workdir"])

USER_ERROR_EXIT = 2  # a user error (one line); 1 stays Python's "uncaught exception" (a bug, with its traceback)


def _user_error(e: BaseException) -> BaseException | None:
  """The innermost UserError in e's chain (config_flags re-raises a config file's error inside a flags.Error)."""
  found = None
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, errors.UserError):
      found = e
    e = e.__cause__ or e.__context__
  return found


def fail(e: BaseException, line: str):
  """Prints `error: <line>` (after the traceback when debugging) and exits with USER_ERROR_EXIT."""
  if distributed.debug():
    traceback.print_exception(e)
  sys.stdout.flush()
  print(f"error: {' '.join(str(line).split())}", file=sys.stderr, flush=True)
  sys.exit(USER_ERROR_EXIT)


def _flag_error_line(e: flags.Error) -> str:
  inner = _user_error(e)
  if inner is not None:
    return str(inner)
  # A config file's other ValueError/TypeError arrives as "flag --config=X: Error whilst parsing config file:"
  # followed by its traceback: keep the flag and the exception's own last line.
  lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
  if len(lines) > 1:
    return f"{lines[0].split(': Error whilst')[0]}: {lines[-1]}"
  line = lines[0] if lines else type(e).__name__
  # `--config.batch_size=abc`: absl passes on Python's conversion message; say it the way every other error does.
  m = re.match(r"flag --([\w.]+)=.*: (?:invalid literal for int\(\) with base 10|could not convert string to "
               r"float): (.*)$", line)
  if m:
    kind = "an integer" if "int()" in line else "a number"
    return errors.one_line(f"--{m.group(1)}", kind, m.group(2))
  return line


def _failing_override(e: BaseException):
  """(field path, config) of the `--config.<field>` override whose parse raised e, or None. config_flags checks
  overrides in `_ConfigFlag._parse`, a loop over `field_path`s; the frame's locals name the one that failed."""
  tb = e.__traceback__
  while tb is not None:
    local = tb.tb_frame.f_locals
    if isinstance(local.get("self"), flags.Flag) and "field_path" in local and "config" in local:
      return local["field_path"], local["config"]
    tb = tb.tb_next
  return None


def _unknown_field_line(field_path: str, config) -> str:
  """`--config.a.b=...` of a field the config does not have: names the field and the closest existing ones."""
  path = field_path.split(".")
  node, known = config, []
  for part in path[:-1]:
    if not isinstance(node, (ml_collections.ConfigDict, dict)) or part not in node:
      break
    node = node[part]
  if isinstance(node, (ml_collections.ConfigDict, dict)):
    known = list(node.keys())
  close = difflib.get_close_matches(path[-1], known, n=3)
  hint = f" (did you mean {', '.join(close)}?)" if close else ""
  parent = ".".join(["config"] + path[:-1])
  return errors.one_line(f"--config.{field_path}", f"a field of {parent}{hint}", f"unknown field {path[-1]!r}")


def _check_config_loaded():
  """config_flags keeps a config file that could not be read as an error object raised on first use (OSError
  with a multi-line report); say it here, in one line."""
  config = flags.FLAGS["config"].value
  try:
    config.get("job")
  except OSError as e:
    spec = str(flags.FLAGS["config"].config_filename or "")
    path = spec.split(":")[0]
    got = "no such file" if not os.path.exists(path) else f"a file that cannot be read ({type(e).__name__})"
    fail(e, errors.one_line(f"--config={spec}", "a readable configs/<name>.py file", got))


def parse_flags(argv):
  """absl's flag parsing, with every command-line mistake as one line instead of a traceback or a FATAL block."""
  if "--debug" in argv[1:]:
    os.environ["LRM_JAX_DEBUG"] = "1"
  try:
    with run_files.startup_chatter_captured(not distributed.debug()):
      rest = flags.FLAGS(argv)
    _check_config_loaded()
    return rest
  except flags.Error as e:
    fail(e, _flag_error_line(e))
  except (AttributeError, KeyError, TypeError) as e:  # config_flags: `--config.x=...` of a field the config lacks
    override = _failing_override(e)
    if override is None:
      raise
    fail(e, _unknown_field_line(*override))
  except errors.UserError as e:
    fail(e, str(e))


def main(argv):
  del argv
  debug = distributed.debug()
  run_files.console_warnings_only(debug)
  # Before anything else creates JAX's backend: jax.distributed when the environment asks for it, and the CPU
  # devices (one per core; with several processes one per process, each process being one host).
  multi = distributed.initialize()
  config = _CONFIG.value
  workdir = run_files.prepare_workdir(_WORKDIR.value)
  log = run_files.log_to_file(workdir, debug, jax.process_index())
  with run_files.chatter_to(log, enabled=not debug):  # the job module's imports print their start-up lines
    jobs.validate(config)  # the whole config, before minutes of simulation find a bad field
    if config.job != "serve":  # every other job simulates; MJX prints "Failed to import mujoco_warp" on import
      import mujoco.mjx  # noqa: F401
  if not debug and "tensorflow_datasets" in sys.modules:
    sys.modules["tensorflow_datasets"].disable_progress_bar()  # TFDS's writer bars; the jobs keep their own
  compile_cache.enable(config.get("compile_cache_dir") or None)
  logging.info("job %s -> %s", config.job, workdir)
  run_files.record_config(workdir, config, write=distributed.is_primary())
  distributed.exit_on_error(lambda: jobs.get(config.job)(config, workdir), multi)


def _main_one_line_errors(argv):
  try:
    return main(argv)
  except SystemExit as e:
    if not e.code:
      raise
    distributed.exit_now(e.code if isinstance(e.code, int) else 1)
  except errors.UserError as e:
    try:
      fail(e, str(e))
    except SystemExit as s:
      distributed.exit_now(s.code)
  except BaseException as e:  # noqa: BLE001 -- a bug (its traceback) or Ctrl-C: end now, whatever threads run
    traceback.print_exception(e)
    distributed.exit_now(130 if isinstance(e, KeyboardInterrupt) else 1)


if __name__ == "__main__":
  app.run(_main_one_line_errors, flags_parser=parse_flags)
