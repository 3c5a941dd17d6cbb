"""First contact (issue 14): user errors are one line naming the field, the whole config is checked before any work,
a workdir's run record is never overwritten by a different run, bad checkpoint files name their path.

The command-line cases run `python -m lrm_jax.main` in a subprocess (absl's app.run, flag parsing and exit codes
are the thing under test); everything else is checked in-process. `bench/first_contact_sweep.py` runs the 50+
case sweep.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from data_pipelines import errors
from lrm_jax import jobs
from lrm_jax.models import checkpoint
from lrm_jax.utils import config_args
from lrm_jax.utils import host_devices
from lrm_jax.utils import run_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(spec: str):
  return config_args.load_file(os.path.join(ROOT, spec))


def _main(args, tmp_path, env=None, timeout=300):
  extra = env or {}
  env = dict(os.environ, JAX_PLATFORMS="cpu", LRM_JAX_CPU_DEVICES="1",
             PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  env.pop("LRM_JAX_DEBUG", None)
  env.update(extra)
  return subprocess.run([sys.executable, "-m", "lrm_jax.main"] + args, env=env, capture_output=True, text=True,
                        timeout=timeout, cwd=ROOT)


def _one_line(out) -> str:
  text = out.stdout + out.stderr
  assert out.returncode == 2, text[-3000:]
  assert "Traceback" not in text, text[-3000:]
  lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-3000:]
  return lines[0]


# ---- the command line: one line, exit status 2, no traceback ------------------------------------------------------
@pytest.mark.parametrize("args,env,expect", [
    # An unknown --config.field was a 60-line AttributeError: "'nosuchfield'".
    (["--config=configs/refine.py", "--config.ppo.num_envz=3"], {},
     r"--config.ppo.num_envz: expected a field of config.ppo \(did you mean num_envs"),
    # A non-integer config argument did not name it ("invalid literal for int()" inside a traceback).
    (["--config=configs/reward_model/cpu_demo.py:steps=abc"], {}, "config arg steps: expected an integer, got 'abc'"),
    # An unknown refine task was "a training task of the reward model".
    (["--config=configs/refine.py:task=fly_to_moon"], {}, "config.task: expected task names .*got unknown task"),
    # A wrongly typed field: absl's "invalid literal for int() with base 10", said the way every other error is.
    (["--config=configs/datagen.py", "--config.batch_size=abc"], {},
     "--config.batch_size: expected an integer, got 'abc'"),
    # An unnamed int() error.
    (["--config=configs/datagen.py"], {"LRM_JAX_CPU_DEVICES": "abc"},
     "LRM_JAX_CPU_DEVICES: expected an integer >= 1 .*got 'abc'"),
])
def test_cli_user_errors_are_one_line(tmp_path, args, env, expect):
  line = _one_line(_main(args + [f"--workdir={tmp_path / 'w'}"], tmp_path, env))
  assert __import__("re").search(expect, line), line


def test_cli_workdir_that_is_a_file_and_debug_switch(tmp_path):
  f = tmp_path / "afile"
  f.write_text("keep me")
  line = _one_line(_main(["--config=configs/datagen.py", f"--workdir={f}"], tmp_path))
  assert "expected a directory" in line and "got an existing file" in line
  assert f.read_text() == "keep me"
  # --debug: the same error with its traceback (for bug reports), still exit status 2.
  out = _main(["--config=configs/datagen.py", f"--workdir={f}", "--debug"], tmp_path)
  assert out.returncode == 2 and "Traceback" in out.stderr and out.stderr.strip().splitlines()[-1].startswith("error:")


# ---- early validation: the whole config, before any work ----------------------------------------------------------
@pytest.mark.parametrize("spec,override,expect", [
    ("configs/reward_model/cpu_demo.py:batch=0", None, "config.batch_size: expected an integer >= 1, got 0"),
    ("configs/reward_model/cpu_demo.py:res=-1", None, "image_size: expected an integer >= 8, got -1"),
    ("configs/reward_model/cpu_demo.py", ("eval_data.tasks", ("press_buttons_in_order", "push_cube")),
     "config.eval_data.tasks: expected held-out tasks only .*got 'push_cube', a training task"),
    ("configs/reward_model/cpu_demo.py:episodes=0", None, "config.data.datagen.episodes_per_task: expected an integer"),
    ("configs/reward_data.py:episodes_per_task=0", None, "config.datagen.episodes_per_task: expected an integer >= 1"),
    ("configs/reward_data.py:tasks=two_on_plate", None, "config.datagen.tasks: expected training tasks only"),
    ("configs/reward_model/lrm_tiny.py:kinds=contrast", None, "config.data.mixture.labels: expected LabelConfig .*"
     "got LabelConfig.kinds: expected a subset"),
    ("configs/reward_model/lrm_tiny.py:warmup=5,completion_warmup=5", ("warmup.then.kinds", ("reward",)),
     r"config.warmup.then.kinds: expected one or more of \['progress', 'completion', 'contrastive'\], "
     r"got \['reward'\]"),
    ("configs/reward_model/lrm_tiny.py:lit_balance=1", ("tower.balance_flags", ("lit", "closure")),
     r"config.tower.balance_flags: expected flag groups from \['grasped', 'lit'\], got \['lit', 'closure'\]"),
    ("configs/datagen.py:episodes_per_task=0", None, "config.episodes_per_task: expected an integer >= 1, got 0"),
    ("configs/datagen.py:image_size=-1", None, "config.image_size: expected an integer >= 8, got -1"),
    ("configs/refine.py:task=push_cube,rewards=oracle", None, "config.task: expected held-out tasks only"),
    ("configs/refine.py:task=fly_to_moon,rewards=oracle", None, "got unknown task 'fly_to_moon'"),
    ("configs/refine.py:envs=0,rewards=oracle", None, "config.ppo.num_envs: expected an integer >= 1, got 0"),
    ("configs/refine.py:rewards=lrm_tri", None, "config.reward_model_workdir: expected a finished reward_model run"),
    ("configs/refine.py:rewards=oracle+bogus", None, "config.rewards: expected names from"),
    ("configs/demo.py:quick", ("refine.ppo.num_envs", 0), "config.refine.ppo.num_envs: expected an integer >= 1"),
    ("configs/demo.py:quick", ("reward_model.eval_data.tasks", ("pick_cube",)), "reward_model.eval_data.tasks"),
    ("configs/serve.py:ckpt=/nonexistent/model.npz", None, "config.ckpt: expected a reward_model run's workdir"),
])
def test_validate_rejects_before_any_work(spec, override, expect):
  c = _load(spec)
  if override:
    c.unlock()
    node = c
    *path, leaf = override[0].split(".")
    for p in path:
      node = node[p]
    node[leaf] = override[1]
  with pytest.raises(config_args.ConfigError, match=expect) as e:
    jobs.validate(c)
  assert "\n" not in str(e.value)


@pytest.mark.parametrize("spec", ["configs/datagen.py", "configs/reward_data.py", "configs/reward_data.py:real",
                                  "configs/reward_model/cpu_demo.py", "configs/demo.py", "configs/demo.py:quick",
                                  "configs/serve.py", "configs/refine.py:rewards=oracle+sparse",
                                  "configs/reward_model/lrm_tiny.py:warmup=5,completion_warmup=5"])
def test_validate_accepts_the_shipped_configs(spec):
  jobs.validate(_load(spec))


# ---- the small pieces -------------------------------------------------------------------------------------------
def test_cpu_devices_env_names_the_variable(monkeypatch):
  monkeypatch.setenv("LRM_JAX_CPU_DEVICES", "abc")
  with pytest.raises(config_args.ConfigError, match="environment variable LRM_JAX_CPU_DEVICES: expected an integer"):
    host_devices.use_all_cores()


def test_user_errors_share_one_base():
  assert issubclass(config_args.ConfigError, errors.UserError)
  assert issubclass(errors.DataFormatError, errors.UserError)
  assert issubclass(errors.ExcludedTaskError, errors.UserError)
  # config_flags re-raises a config file's ValueError as type(e)(text): that must construct.
  assert str(config_args.ConfigError("some text")) == "some text"


def test_prepare_workdir(tmp_path):
  f = tmp_path / "file"
  f.write_text("x")
  with pytest.raises(config_args.ConfigError, match="expected a directory .*got an existing file"):
    run_files.prepare_workdir(str(f))
  with pytest.raises(config_args.ConfigError, match="expected a directory this user can create and write"):
    run_files.prepare_workdir(str(f / "sub"))  # under a file: NotADirectoryError
  with pytest.raises(config_args.ConfigError, match="expected a directory this user can create and write"):
    run_files.prepare_workdir("/proc/lrm_jax_cannot_be_here")  # FileNotFoundError from makedirs before
  assert run_files.prepare_workdir(str(tmp_path / "new")) == str(tmp_path / "new")


@pytest.mark.parametrize("damage", ["truncated", "random", "npy"])
def test_bad_npz_names_its_path(tmp_path, damage):
  path = tmp_path / "ckpt.npz"
  checkpoint.save_npz(str(path), {"a": {"b": np.arange(4000, dtype=np.float32)}})
  data = path.read_bytes()
  if damage == "truncated":
    path.write_bytes(data[: len(data) // 2])
  elif damage == "random":
    path.write_bytes(np.random.default_rng(0).bytes(5000))
  else:
    np.save(str(tmp_path / "x.npy"), np.zeros(3))
    os.replace(tmp_path / "x.npy", path)
  with pytest.raises(errors.DataFormatError, match=f"^{path}: field 'file': expected a big_vision .npz") as e:
    checkpoint.load_npz(str(path))
  assert "\n" not in str(e.value)
  # And before any work: the job validation opens the zip directory (a truncated file has lost it).
  c = _load(f"configs/serve.py:ckpt={path}")
  with pytest.raises(errors.DataFormatError, match=f"^{path}: field 'file': expected a big_vision .npz"):
    jobs.validate(c)


# ---- the run record -----------------------------------------------------------------------------------------------
def test_run_record_is_never_overwritten_by_a_different_config(tmp_path):
  c = _load("configs/reward_model/cpu_demo.py:steps=7")
  run_files.record_config(str(tmp_path), c)
  before = (tmp_path / "config.json").read_text()
  run_files.record_config(str(tmp_path), c)  # the same config again: a resume, accepted
  other = _load("configs/reward_model/cpu_demo.py:steps=9,width=64")
  other.unlock()
  other.compile_cache_dir = "/elsewhere"  # does not change what the run computes: not a difference
  with pytest.raises(config_args.ConfigError, match=r"config.json: expected the config this workdir was run with.*"
                     r"got \d+ difference\(s\): .*total_steps: 7 -> 9") as e:
    run_files.record_config(str(tmp_path), other)
  assert "\n" not in str(e.value) and "compile_cache_dir" not in str(e.value)
  assert (tmp_path / "config.json").read_text() == before
  assert json.loads(before)["total_steps"] == 7
  # Multi-process: every process checks (all refuse together), only process 0 writes.
  with pytest.raises(config_args.ConfigError, match="difference"):
    run_files.record_config(str(tmp_path), other, write=False)
  (tmp_path / "fresh").mkdir()
  run_files.record_config(str(tmp_path / "fresh"), other, write=False)
  assert not (tmp_path / "fresh" / "config.json").exists()


def test_run_record_lets_a_finished_run_be_exported_as_the_release(tmp_path):
  """lrm_tiny.py:release= trains without writing into the repository; rerunning it with the default release folder
  on the same workdir only exports (the `release` section says where, not what is trained)."""
  run_files.record_config(str(tmp_path), _load("configs/reward_model/lrm_tiny.py:release="))
  run_files.record_config(str(tmp_path), _load("configs/reward_model/lrm_tiny.py"))  # accepted
  with pytest.raises(config_args.ConfigError, match="total_steps"):
    run_files.record_config(str(tmp_path), _load("configs/reward_model/lrm_tiny.py:steps=5"))


# ---- quiet runs: stages and summaries on the console, everything in W/logs/run.log ------------------------------
def test_log_file_gets_everything_console_gets_warnings(tmp_path):
  import logging as py_logging
  from absl import logging
  console, root = logging.get_absl_handler(), py_logging.getLogger()
  level, filters, handlers, verbosity, root_level = console.level, list(console.filters), list(root.handlers), \
      logging.get_verbosity(), root.level
  try:
    path = run_files.log_to_file(str(tmp_path))
    mjx = py_logging.getLogger("mujoco.mjx._src.io")
    for _ in range(300):  # the demo placed an MJX model on a device hundreds of times, one INFO line each
      mjx.info("Using JAX default device: %s.", "TFRT_CPU_0")
    logging.info("an info line of a stage")
    logging.warning("a warning")
    for h in root.handlers:
      h.flush()
    text = open(path).read()
    assert text.count("Using JAX default device") == 1 and "an info line" in text and "a warning" in text
    assert console.level == py_logging.WARNING  # INFO stays in the file
    noisy = py_logging.LogRecord("mujoco", py_logging.WARNING, "", 0, "Using JAX default device: %s.", ("x",), None)
    assert not all(f.filter(noisy) for f in console.filters)
    import warnings
    warnings.warn("os.fork() was called. os.fork() is incompatible with multithreaded code", RuntimeWarning)
    for h in root.handlers:
      h.flush()
    assert "os.fork() was called" in open(path).read()  # a Python warning: in the file, not on the console
    fork = py_logging.LogRecord("py.warnings", py_logging.WARNING, "", 0, "%s", ("x.py:1: os.fork() was called",),
                                None)
    assert not all(f.filter(fork) for f in console.filters)
  finally:
    for h in root.handlers:
      if h not in handlers:
        root.removeHandler(h)
        h.close()
    console.setLevel(level)
    console.filters[:] = filters
    logging.set_verbosity(verbosity)
    root.setLevel(root_level)
    py_logging.captureWarnings(False)


def test_tfds_banners_go_to_the_log_not_stdout(tmp_path, capfd, caplog):
  from data_pipelines import export
  import logging as py_logging
  images = np.full((5, 16, 16, 3), 100, np.uint8)
  ep = dict(images=images, state=np.zeros((5, 5), np.float32), action=np.zeros((5, 4), np.float32),
            reward=np.zeros(5, np.float32), stage=np.zeros(5, np.int32), instruction="push the red cube",
            task="push_cube", success=True, embodiment="gripper", seed=0, noise="clean", num_stages=1)
  caplog.set_level(py_logging.INFO, logger="data_pipelines.tfds_io")
  export.write_oxe_rlds(str(tmp_path), [ep], 16)
  out = capfd.readouterr().out
  assert "Downloading and preparing" not in out and "downloaded and prepared" not in out
  assert "Downloading and preparing" in caplog.text


def test_multi_process_user_error_is_its_one_line_without_traceback():
  """With several processes `distributed.exit_on_error` ends the process itself; a user error must still read as
  one line there (a bug keeps its traceback)."""
  code = ("from lrm_jax.utils import distributed, config_args\n"
          "def fail():\n  raise config_args.ConfigError('config.batch_size', 'an integer >= 1', 0)\n"
          "distributed.exit_on_error(fail, True)\n")
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  env.pop("LRM_JAX_DEBUG", None)
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
  assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
  assert out.stderr.strip().splitlines() == ["lrm_jax: process 0 of 1 stopped: this process failed: ConfigError: "
                                             "config.batch_size: expected an integer >= 1, got 0"]
  bug = subprocess.run([sys.executable, "-c", code.replace("raise config_args.ConfigError('config.batch_size', "
                                                           "'an integer >= 1', 0)", "raise KeyError('x')")],
                       env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
  assert bug.returncode == 1 and "Traceback" in bug.stderr
