"""Multi-host runs on one machine: 2 processes x 1 CPU device under jax.distributed (gloo collectives), started the
way a cluster starts them (`launch/multihost_local.sh`), against 1 process with 2 devices.

- reward model (the real `reward_model` job, tiny): each process reads its own trajectories, the loss curve and the
  final params equal the 1-process run's, the orbax checkpoint is one checkpoint (both processes' shards) that a
  1-process run restores, and `kill -9` of one process ends the other within seconds with a one-line error;
- PPO (the refinement's brax PPO through `lrm_jax.rl.ppo.make_train`, oracle reward, on the RL tests' point-mass
  task: the same brax path as the LRM-Bench tasks, which take minutes to compile; `tests/multihost_ppo_worker.py`
  runs either): runs to the end on 2 processes with the envs split between them, the params stay identical across
  processes, and process 0's metrics equal a 1-process run on its share of the envs.
"""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lrm_jax.utils import tb_read

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(ROOT, "launch", "multihost_local.sh")
# Tiny sources (two training tasks), built once by the reward_data job and shared by every run below.
SOURCES_ARG = "episodes_per_task=3,failure_fraction=0.34,image_size=16,batch_size=4,tasks=press_button+push_cube"
RM_ARG = "steps={steps},eval_episodes=0,res=16,batch=4,patch=8,width=32,depth=1,tower_steps=0,sources={sources}"
RM_FLAGS = ("--config.data_shards=2", "--config.log_every=1", "--config.checkpoint_every=3", "--config.eval_every=3",
            "--config.val_batches=1")


def _env(**kw):
  """The test process's environment without any distributed settings of its own, plus `kw` (which may set them)."""
  env = dict(os.environ, PYTHONPATH=ROOT, LRM_JAX_PYTHON=sys.executable)
  for k in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "LRM_JAX_DISTRIBUTED", "XLA_FLAGS"):
    env.pop(k, None)
  env.update(kw)
  return env


def _rm_config(sources, steps):
  return "configs/reward_model/cpu_demo.py:" + RM_ARG.format(steps=steps, sources=sources)


def _one_process(args, devices=2, timeout=900):
  out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                       env=_env(LRM_JAX_CPU_DEVICES=str(devices)))
  assert out.returncode == 0, out.stderr[-3000:]
  return out


def _launch(n, config, workdir, *flags, **env):
  return subprocess.Popen(["bash", LAUNCH, str(n), config, str(workdir), *flags], cwd=ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(**env))


def _tb_scalars(logdir, tag):
  return tb_read.scalars(logdir, tag).get(tag, {})


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
  w = tmp_path_factory.mktemp("sources")
  _one_process(["-m", "lrm_jax.main", f"--config=configs/reward_data.py:{SOURCES_ARG}", f"--workdir={w}"])
  # The reward_model job reuses a sources root that has sources.json (it writes one after building its own).
  with open(w / "sources" / "sources.json", "w") as f:
    json.dump({"built_by": f"configs/reward_data.py:{SOURCES_ARG}"}, f)
  return str(w / "sources")


@pytest.mark.slow
def test_reward_model_on_two_processes_equals_one_process_with_two_devices(sources, tmp_path):
  steps = 6
  one, two = tmp_path / "one", tmp_path / "two"
  _one_process(["-m", "lrm_jax.main", f"--config={_rm_config(sources, steps)}", f"--workdir={one}", *RM_FLAGS])
  p = _launch(2, _rm_config(sources, steps), two, *RM_FLAGS)
  stdout, stderr = p.communicate(timeout=900)
  assert p.returncode == 0, (stderr[-2000:], open(two / "logs" / "process_1.log").read()[-3000:])
  assert "all 2 processes finished" in stdout

  # The mixture's per-host split: each process read its own shard; together exactly what one process read.
  hosts = [json.load(open(two / "hosts" / f"process_{i}.json")) for i in (0, 1)]
  single = json.load(open(one / "hosts" / "process_0.json"))
  assert [h["data_shards"] for h in hosts] == [[0], [1]] and single["data_shards"] == [0, 1]
  assert [h["batch_per_process"] for h in hosts] == [2, 2] and single["batch_per_process"] == 4
  read = [set(h["episodes_read"]) for h in hosts]
  assert read[0] and read[1] and not read[0] & read[1], read
  assert read[0] | read[1] == set(single["episodes_read"])
  assert {r.split("/")[0] for r in read[0] | read[1]} == {"lrm_bench", "epic_kitchens", "oxe:lrm_bench_oxe"}

  # Same global batches on the same 2-device mesh: the same loss curve and validation, to float tolerance.
  loss1, loss2 = _tb_scalars(one / "tb", "train/loss"), _tb_scalars(two / "tb", "train/loss")
  assert sorted(loss1) == sorted(loss2) == list(range(1, steps + 1))
  np.testing.assert_allclose([loss2[s] for s in sorted(loss2)], [loss1[s] for s in sorted(loss1)], rtol=1e-5)
  m1, m2 = (json.load(open(w / "eval" / "metrics.json")) for w in (one, two))
  assert m1["steps"] == m2["steps"] == steps
  assert m1["validation_training_tasks"].keys() == m2["validation_training_tasks"].keys()
  for k, v in m1["validation_training_tasks"].items():
    assert m2["validation_training_tasks"][k] == pytest.approx(v, rel=1e-5), k

  # One checkpoint per save, written by both processes together (each its shards), restorable by one process.
  assert sorted(os.listdir(two / "checkpoints")) == sorted(os.listdir(one / "checkpoints")) == ["3", "6"]
  shards = sorted(os.path.basename(d) for d in glob.glob(str(two / "checkpoints" / "6" / "*" / "ocdbt.process_*")))
  assert shards == ["ocdbt.process_0", "ocdbt.process_1"], shards
  from lrm_jax.jobs import reward_model
  from lrm_jax.utils import config_args
  config = config_args.load_file(os.path.join(ROOT, _rm_config(sources, steps)))
  params1, params2 = (reward_model.load_trained(config, str(w))[2] for w in (one, two))
  import jax
  flat1, flat2 = jax.tree_util.tree_leaves_with_path(params1), jax.tree.leaves(params2)
  assert len(flat1) == len(flat2)
  for (path, a), b in zip(flat1, flat2):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=jax.tree_util.keystr(path))


@pytest.mark.slow
def test_killing_one_process_ends_the_other_quickly_with_one_line(sources, tmp_path):
  w = tmp_path / "kill"
  # A long run; the launcher's own kill only after 120 s, so process 0 has to stop by itself.
  p = _launch(2, _rm_config(sources, 10_000), w, *RM_FLAGS, "--config.checkpoint_every=10000",
              LRM_JAX_KILL_GRACE_S="120")
  log1 = w / "logs" / "run.process_1.log"  # process 1's full log (its console, logs/process_1.log, is warnings only)
  deadline = time.time() + 600
  while not (log1.exists() and "train/loss" in log1.read_text()):  # process 1 finished a training step
    assert p.poll() is None and time.time() < deadline, p.stderr.read()[-2000:] if p.poll() is not None else "slow"
    time.sleep(1)
  pid1 = int(open(w / "logs" / "process_1.pid").read())
  os.kill(pid1, signal.SIGKILL)
  t0 = time.time()
  _, stderr = p.communicate(timeout=300)
  elapsed = time.time() - t0
  assert p.returncode != 0
  # Bounded: the survivor's next collective fails at once (31 s on a 2-core machine at load 8: it was compiling
  # the next program), far below the launcher's 120 s and jax's 100 s heartbeat timeout.
  assert elapsed < 90, elapsed
  assert "killing the processes still running" not in stderr  # process 0 stopped on its own
  lines = [l for l in open(w / "logs" / "process_0.log").read().splitlines() if l.strip()]
  assert re.fullmatch(r"lrm_jax: process 0 of 2 stopped: a peer process died or stopped \(see its log\): .+", lines[-1]), \
      lines[-5:]
  assert "multihost_local: process 1: status 137" in stderr, stderr[-1000:]


def _ppo(n, workdir, num_envs, env="toy", devices=1):
  argv = ["-m", "tests.multihost_ppo_worker", str(workdir), str(num_envs), env]
  if n == 1:
    return _one_process(argv, devices=devices)
  address, procs = f"127.0.0.1:{_free_port()}", []
  for i in range(n):  # what launch/multihost_local.sh does for lrm_jax.main
    env = _env(JAX_COORDINATOR_ADDRESS=address, JAX_NUM_PROCESSES=str(n), JAX_PROCESS_ID=str(i),
               LRM_JAX_CPU_DEVICES="1", JAX_PLATFORMS="cpu")
    procs.append(subprocess.Popen([sys.executable, *argv], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, env=env))
  outs = [proc.communicate(timeout=900)[0] for proc in procs]
  for proc, out in zip(procs, outs):
    assert proc.returncode == 0, out[-3000:]
  return outs


def _free_port():
  import socket
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_ppo_on_two_processes_splits_envs_and_matches_one_process(tmp_path):
  two, one = tmp_path / "two", tmp_path / "one"
  _ppo(2, two, num_envs=8)
  _ppo(1, one, num_envs=4)  # process 0's share: the same 4 envs (brax: keys folded with the process index)
  h = [json.load(open(two / f"process_{i}.json")) for i in (0, 1)]
  ref = json.load(open(one / "process_0.json"))
  assert [x["device_count"] for x in h] == [2, 2] and [x["local_devices"] for x in h] == [1, 1]
  # brax reports progress from process 0 only (the others' history stays empty) ...
  assert len(h[0]["history"]) == len(ref["history"]) == 2 and h[1]["history"] == []
  # ... counting every process's env steps: 2x the 1-process run on half the envs.
  assert [x["step"] for x in h[0]["history"]] == [2 * x["step"] for x in ref["history"]]
  # Gradients are averaged over both processes: the final params are identical on both.
  p0, p1 = (np.load(two / f"params_{i}.npz") for i in (0, 1))
  for k in p0.files:
    np.testing.assert_array_equal(p0[k], p1[k])
  # Both iterations roll out the BC policy (iteration 1 trains only the critic), and process 0 steps exactly the envs
  # of a 1-process run with its share of them: the rollout metrics brax reports (process 0's envs) are equal.
  # (With 2 processes brax reported no episode/* metrics for the first iteration: compared where present.)
  rollout = ("episode/length", "episode/sum_reward", "episode/privileged/oracle", "episode/success")
  compared = 0
  for a, b in zip(h[0]["history"], ref["history"]):
    if "episode/sum_reward" in a:
      for k in rollout:
        assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-6), k
      compared += 1
  assert compared >= 1 and "episode/sum_reward" in h[0]["history"][-1]
  # The value function learned from both processes' envs: it moved, and differs from the 1-process run's.
  bc, p_ref = np.load(two / "bc_params_0.npz"), np.load(one / "params_0.npz")
  assert any(not np.array_equal(p0[k], bc[k]) for k in p0.files)
  assert any(not np.allclose(p0[k], p_ref[k]) for k in p0.files)


def test_distributed_settings_from_the_environment(monkeypatch):
  from lrm_jax.utils import distributed
  for k in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "LRM_JAX_DISTRIBUTED",
            "LRM_JAX_HEARTBEAT_TIMEOUT_S"):
    monkeypatch.delenv(k, raising=False)
  assert distributed.settings() is None  # nothing set: one process
  monkeypatch.setenv("LRM_JAX_DISTRIBUTED", "1")  # a TPU pod / SLURM: jax detects the rest
  assert distributed.settings() == dict(initialization_timeout=300, heartbeat_timeout_seconds=100)
  monkeypatch.delenv("LRM_JAX_DISTRIBUTED")
  monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
  with pytest.raises(ValueError, match="JAX_NUM_PROCESSES=2 needs JAX_COORDINATOR_ADDRESS"):
    distributed.settings()
  monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "10.0.0.1:1234")
  monkeypatch.setenv("JAX_PROCESS_ID", "2")
  with pytest.raises(ValueError, match=r"JAX_PROCESS_ID=2: expected 0 <= JAX_PROCESS_ID < JAX_NUM_PROCESSES=2"):
    distributed.settings()
  monkeypatch.setenv("JAX_PROCESS_ID", "1")
  monkeypatch.setenv("LRM_JAX_HEARTBEAT_TIMEOUT_S", "ten")
  with pytest.raises(ValueError, match="LRM_JAX_HEARTBEAT_TIMEOUT_S: expected an integer >= 1, got 'ten'"):
    distributed.settings()
  monkeypatch.setenv("LRM_JAX_HEARTBEAT_TIMEOUT_S", "10")
  assert distributed.settings() == dict(initialization_timeout=300, heartbeat_timeout_seconds=10,
                                        coordinator_address="10.0.0.1:1234", num_processes=2, process_id=1)


def test_launcher_rejects_a_bad_process_count():
  out = subprocess.run(["bash", LAUNCH, "two", "configs/demo.py", "/tmp/unused"], capture_output=True, text=True)
  assert out.returncode == 2 and "N: number of processes, a positive integer; got 'two'" in out.stderr
