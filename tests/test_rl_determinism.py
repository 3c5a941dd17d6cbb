"""Same config and seed -> the same refined policy, bit for bit, across processes (and so across runs of the demo).

Each run is a separate process with its own Python hash seed (set iteration order, host-side randomness) and the
default one CPU device per core, as `lrm_jax.main` runs. The device count itself is part of the result: brax's PPO
splits the envs over the local devices and draws one key per device, so 1 and 2 devices give different (equally
valid) runs; `results.json` records the devices, and `LRM_JAX_CPU_DEVICES` fixes them.
"""
import os
import subprocess
import sys

import pytest

_SCRIPT = """
import hashlib, jax, numpy as np
from lrm_jax.utils import host_devices; host_devices.use_all_cores()
from lrm_jax.utils import compile_cache; compile_cache.enable(None)
from tests import fixtures_rl as toy
from tests.test_rl import _bc_config, _refine_config
from lrm_jax.rl import bc, ppo
env = toy.PointReach()
res = bc.train(toy.collect_demos(env, 16), _bc_config(steps=50))
c = _refine_config(2, reward="lrm_tri", interval=2)
out = ppo.make_train(c, score_fn=toy.score_fn)(env, res)
leaves = jax.tree.leaves(jax.device_get(out.params))
print("DEVICES", len(jax.devices()))
print("DIGEST", hashlib.sha256(b"".join(np.asarray(x).tobytes() for x in leaves)).hexdigest())
"""


def _run(hash_seed: str) -> tuple[str, str]:
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONHASHSEED=hash_seed, LRM_JAX_CPU_DEVICES="2", PYTHONPATH=root)
  out = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=root, env=env, capture_output=True, text=True,
                       timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if line.startswith(("DEVICES", "DIGEST")))
  return lines["DEVICES"], lines["DIGEST"]


@pytest.mark.slow
def test_ppo_refinement_repeats_bit_for_bit_across_processes():
  first, second = _run("1"), _run("2")
  assert first[0] == "2"
  assert first == second
