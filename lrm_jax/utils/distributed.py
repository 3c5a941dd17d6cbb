"""Multi-process (multi-host) runs: `jax.distributed` set up from the environment, and the few helpers jobs need.

One process per host (TPU pod worker, GPU node, or a local process in `launch/multihost_local.sh`); every process
runs the same command. The settings come from environment variables, as a cluster launcher sets them:

  JAX_COORDINATOR_ADDRESS=host:port  JAX_NUM_PROCESSES=N  JAX_PROCESS_ID=i   explicit (local simulation, plain
                                                                            multi-node GPU)
  LRM_JAX_DISTRIBUTED=1                          let jax detect the cluster (Cloud TPU pod, SLURM, Open MPI, k8s)
  LRM_JAX_INIT_TIMEOUT_S (default 300)           how long a process waits for all the others to connect
  LRM_JAX_HEARTBEAT_TIMEOUT_S (default 100)      a process that stops sending heartbeats this long is dead: the
                                                 coordination service then ends every other process

Nothing set: a single process, nothing changes. On CPU, cross-process collectives go through gloo (TCP).

A dead peer: the next collective of every other process fails at once (gloo: "Connection closed by peer"), and
`exit_on_error` turns that into one line on stderr and an immediate exit (no wait at jax's shutdown barrier). A
peer that hangs without dying is caught by the heartbeat timeout instead (jax's own fatal message). Either way a
run never hangs forever.
"""
import contextlib
import logging as std_logging
import os
import sys
import traceback
from typing import Callable, Optional

import jax
import numpy as np

from data_pipelines import errors
from lrm_jax.utils import config_args

_ENV_ADDRESS, _ENV_COUNT, _ENV_ID = "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"


def _int_env(name: str, default: Optional[int] = None, minimum: int = 0) -> Optional[int]:
  raw = os.environ.get(name, "")
  if raw == "":
    return default
  try:
    value = int(raw)
  except ValueError:
    raise config_args.ConfigError(f"environment variable {name}", f"an integer >= {minimum}", repr(raw)) from None
  if value < minimum:
    raise config_args.ConfigError(f"environment variable {name}", f"an integer >= {minimum}", value)
  return value


def debug() -> bool:
  """LRM_JAX_DEBUG=1 (or `lrm_jax.main --debug`): user errors print their traceback too, the console gets INFO."""
  return os.environ.get("LRM_JAX_DEBUG", "").lower() not in ("", "0", "false", "no")


def settings() -> Optional[dict]:
  """Keyword arguments for `jax.distributed.initialize` from the environment; None for a single-process run."""
  auto = os.environ.get("LRM_JAX_DISTRIBUTED", "").lower() not in ("", "0", "false", "no")
  count = _int_env(_ENV_COUNT, minimum=1)
  if not auto and count is None:
    return None
  kw = dict(initialization_timeout=_int_env("LRM_JAX_INIT_TIMEOUT_S", 300, minimum=1),
            heartbeat_timeout_seconds=_int_env("LRM_JAX_HEARTBEAT_TIMEOUT_S", 100, minimum=1))
  if count is not None:  # explicit: all three must be there (jax's cluster detection fills none of them in)
    pid = _int_env(_ENV_ID)
    address = os.environ.get(_ENV_ADDRESS, "")
    if pid is None or not address:
      raise ValueError(f"{_ENV_COUNT}={count} needs {_ENV_ADDRESS} (host:port of process 0) and {_ENV_ID} "
                       f"(0..{count - 1}) too; got {_ENV_ADDRESS}={address!r}, {_ENV_ID}={os.environ.get(_ENV_ID)!r}")
    if pid >= count:
      raise ValueError(f"{_ENV_ID}={pid}: expected 0 <= {_ENV_ID} < {_ENV_COUNT}={count}")
    kw.update(coordinator_address=address, num_processes=count, process_id=pid)
  return kw


def initialize() -> bool:
  """`jax.distributed.initialize` when the environment asks for it (call it before anything starts JAX's backend),
  then the CPU devices: one per process (each process is one host; LRM_JAX_CPU_DEVICES overrides), or without
  several processes one per core (`host_devices.use_all_cores`). Returns whether this is a multi-process run."""
  from lrm_jax.utils import host_devices
  kw = settings()
  if kw is None:
    host_devices.use_all_cores()
    return False
  # CPU backends talk to each other through gloo; TPU and GPU use their own interconnect and ignore this.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(**kw)
  host_devices.use_all_cores(_int_env("LRM_JAX_CPU_DEVICES", 0) or 1)
  # One collective over all devices now, while the processes are in step (they just met in initialize): gloo
  # connects a device group at its first collective and gives late peers only 30 s; the connection is then kept.
  # Without it, a process still compiling its first training step >30 s after the others fails with "Gloo
  # context initialization failed: ... GetKeyValue() timed out" (seen on a loaded 2-core machine).
  from jax.experimental import multihost_utils
  multihost_utils.sync_global_devices("lrm_jax:connect")
  return True


def is_primary() -> bool:
  """Process 0 writes the files every process would write identically (summaries, plots, config)."""
  return jax.process_index() == 0


def barrier(name: str, timeout_s: Optional[int] = None) -> None:
  """Every process waits here until all arrive (no-op with one process); e.g. after process 0 built shared data.

  orbax's barrier over the distributed client: bounded by `timeout_s` (default LRM_JAX_BARRIER_TIMEOUT_S or 1 h),
  and a dead peer ends it through the heartbeat. Names must be unique per run.
  """
  if jax.process_count() == 1:
    return
  from orbax.checkpoint import multihost  # orbax is already a dependency (checkpoints); no private jax API
  # The distributed client's barrier (a timeout; no device collective, so no compile and no gloo wait).
  timeout_s = timeout_s or _int_env("LRM_JAX_BARRIER_TIMEOUT_S", 3600, 1)
  multihost.get_barrier_sync_fn()(key=f"lrm_jax:{name}", timeout_ms=int(timeout_s) * 1000)


@contextlib.contextmanager
def primary_first(name: str):
  """`with primary_first("x"): build_if_missing()` -- process 0 runs the body, then the others (which then find
  what it built on the shared filesystem). Avoids N processes writing the same files at once."""
  if is_primary():
    yield
    barrier(f"{name}:built")
  else:
    barrier(f"{name}:built")
    yield


def fetch(tree):
  """Host numpy copies of a pytree of arrays, also of arrays sharded over other processes' devices (all-gather;
  every process must call it). `jax.device_get` refuses arrays that span non-addressable devices."""
  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
      from jax.experimental import multihost_utils
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return jax.device_get(x)
  return jax.tree.map(get, tree)


def exit_on_error(fn: Callable[[], object], multi_process: bool):
  """Runs fn(); in a multi-process run any exception prints its traceback, then ONE last line naming this process
  and the cause, and exits at once (os._exit: jax's shutdown barrier would otherwise wait for the dead peer)."""
  if not multi_process:
    return fn()
  try:
    return fn()
  except SystemExit as e:
    if not e.code:  # a clean exit stays one: the normal shutdown (all processes meet at jax's barrier)
      raise
    _stop(e)
  except BaseException as e:  # noqa: BLE001 -- KeyboardInterrupt included: end this process now
    _stop(e)


def _stop(e: BaseException):
  if debug() or not isinstance(e, errors.UserError):  # a user error is its one line (lrm_jax.main's rule)
    traceback.print_exc()
  sys.stdout.flush()
  print(error_line(e), file=sys.stderr, flush=True)
  exit_now(e.code if isinstance(e, SystemExit) and isinstance(e.code, int) else 1)


def exit_now(code: int):
  """Ends the process without the interpreter's shutdown, logs and console flushed first. Needed after an error:
  jax's shutdown barrier waits for a dead peer in a multi-process run, and a tf.data prefetch thread still feeding
  a training stream can deadlock the shutdown of a single process (seen: a ValueError in reward-model training left
  the process idle in ~IteratorResource for good)."""
  std_logging.shutdown()  # absl's handler is a standard logging handler: this flushes W/logs/run.log too
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)


def error_line(e: BaseException) -> str:
  first = (str(e).strip().splitlines() or [""])[0][:300]
  peer = any(s in str(e) for s in ("Gloo", "Connection closed", "Connection reset", "heartbeat", "unhealthy"))
  cause = "a peer process died or stopped (see its log)" if peer else "this process failed"
  return (f"lrm_jax: process {jax.process_index()} of {jax.process_count()} stopped: {cause}: "
          f"{type(e).__name__}: {first}")
