"""JAX persistent compilation cache: small test and CPU runs are dominated by compile time."""
import os

import jax

DEFAULT_DIR = os.path.join(os.path.expanduser("~"), ".cache", "lrm_jax", "xla")


def enable(cache_dir: str | None = None) -> str:
  """Turns on the persistent cache (idempotent). `LRM_JAX_CACHE` overrides the default directory."""
  cache_dir = cache_dir or os.environ.get("LRM_JAX_CACHE") or DEFAULT_DIR
  os.makedirs(cache_dir, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", cache_dir)
  # Cache everything that took noticeable time to compile; tiny programs are cheaper to recompile than to read.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return cache_dir
