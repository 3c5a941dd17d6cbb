"""One CPU device per core (`lrm_jax.utils.host_devices`): episodes split over devices give the same results.

Runs in a subprocess because the CPU device count is fixed when JAX creates its backend.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lrm_jax.rl import evaluate
from lrm_jax.utils import host_devices
from tests import fixtures_rl as toy
from tests.test_rl import _scripted

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = textwrap.dedent("""
    import json
    from lrm_jax import jobs  # what the entry point imports before it sets the device count
    from lrm_jax.utils import host_devices
    n = host_devices.use_all_cores()
    import jax
    from lrm_jax import sharding
    from lrm_jax.rl import evaluate
    from tests import fixtures_rl as toy
    from tests.test_rl import _scripted
    env = toy.PointReach()
    c = evaluate.default_config()
    c.num_episodes, c.chunk, c.video_episodes = 10, 5, 0
    r = evaluate.evaluate(env, _scripted(0.55), None, c)
    rngs = sharding.shard_episodes(jax.random.split(jax.random.PRNGKey(0), 6))
    out = evaluate.make_rollout(env, _scripted(0.55))(None, rngs)
    import numpy as np
    odd = sharding.shard_episodes(np.zeros((3, 2)))  # 3 episodes do not split over 2 devices: left as they are
    print(json.dumps(dict(n=n, devices=jax.local_device_count(), per_episode=r["per_episode"].tolist(),
                          final_oracle=r["final_oracle"], out_devices=len(out["success"].sharding.device_set),
                          odd_untouched=isinstance(odd, np.ndarray), rounded=sharding.round_to_devices(5, sharding.local_mesh()))))
""")


def test_episodes_over_two_cpu_devices_match_one():
  env = dict(os.environ, LRM_JAX_CPU_DEVICES="2", JAX_PLATFORMS="cpu",
             PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=600,
                       cwd=ROOT)
  assert out.returncode == 0, out.stderr[-4000:]
  two = json.loads(out.stdout.strip().splitlines()[-1])
  assert two["n"] == two["devices"] == 2 and two["out_devices"] == 2  # a chunk really ran on both devices
  assert two["odd_untouched"] and two["rounded"] == 6
  c = evaluate.default_config()
  c.num_episodes, c.chunk, c.video_episodes = 10, 5, 0
  one = evaluate.evaluate(toy.PointReach(), _scripted(0.55), None, c)
  assert 0 < one["success_rate"] < 1  # a mix, so the comparison can tell episodes apart
  assert two["per_episode"] == one["per_episode"].tolist()
  np.testing.assert_allclose(two["final_oracle"], one["final_oracle"], rtol=1e-5)


def test_bad_cpu_device_count_is_one_line_error():
  with pytest.raises(ValueError, match="LRM_JAX_CPU_DEVICES: expected an integer >= 1"):
    host_devices.use_all_cores(-1)
