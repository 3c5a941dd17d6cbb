"""Wall-clock timing of jitted functions for benchmarks: compile and warm up once, then the best of a few runs."""
import time

import jax


def best_time(fn, *args, repeats: int = 3) -> float:
  jax.block_until_ready(fn(*args))  # compile + warm-up
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - t)
  return best
