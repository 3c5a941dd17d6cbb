"""Shared test set-up: persistent compile cache on, tiny shapes, one CPU device unless a test asks for more."""
import os

# Tests that need several host devices (sharding) set XLA_FLAGS themselves in a subprocess.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from lrm_jax.utils import compile_cache  # noqa: E402

compile_cache.enable()
