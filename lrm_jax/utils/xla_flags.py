"""XLA flags lrm_jax sets before the JAX backend starts.

XLA's CPU runtime can deadlock with multi-threaded Eigen on large vmapped programs (every worker thread parked on a
futex, the main thread waiting for the result forever). We hit it on batched rollouts of 64 and 192 episodes; it
goes away with `--xla_cpu_multi_thread_eigen=false`, which costs little on small CPUs and nothing on GPU/TPU (the
flag only affects the CPU backend). Set LRM_JAX_EIGEN_THREADS=1 to keep multi-threaded Eigen.
"""
import os

_FLAG = "--xla_cpu_multi_thread_eigen=false"


def apply() -> None:
  flags = os.environ.get("XLA_FLAGS", "")
  if os.environ.get("LRM_JAX_EIGEN_THREADS") == "1" or "xla_cpu_multi_thread_eigen" in flags:
    return
  os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}".strip()
