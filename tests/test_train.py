"""Reward-model training: freeze schedules, and exact resumption after `kill -9`."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from lrm_jax.train import optim

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cfg(freeze=(), lr_scale=()):
  return ml_collections.ConfigDict(dict(optim=dict(lr=0.1, warmup_steps=0, weight_decay=0.0), freeze=freeze,
                                        lr_scale=lr_scale))


def test_freeze_schedule_zeroes_updates_until_the_given_step():
  params = {"img": {"w": jnp.ones(3)}, "llm": {"w": jnp.ones(3)}, "head": {"w": jnp.ones(3)}}
  opt = optim.make_optimizer(_cfg(freeze=(("img/.*", -1), ("head/.*", 2))), params, total_steps=10)
  state = opt.init(params)
  grads = jax.tree.map(jnp.ones_like, params)
  moved = []
  for _ in range(4):
    updates, state = opt.update(grads, state, params)
    moved.append({k: bool(jnp.any(v["w"] != 0)) for k, v in updates.items()})
  assert [m["img"] for m in moved] == [False] * 4  # frozen for the whole run
  assert [m["llm"] for m in moved] == [True] * 4
  assert [m["head"] for m in moved] == [False, False, True, True]  # unfrozen at step 2


def test_always_frozen_marks_only_rules_that_never_unfreeze():
  params = {"img": {"w": jnp.ones(3)}, "llm": {"w": jnp.ones(3)}, "head": {"w": jnp.ones(3)}}
  mask = optim.always_frozen(_cfg(freeze=(("img/.*", -1), ("head/.*", 2))), params)
  assert mask == {"img": {"w": True}, "llm": {"w": False}, "head": {"w": False}}
  assert not any(jax.tree.leaves(optim.always_frozen(_cfg(), params)))


def test_lr_scale_multiplies_the_matching_updates_only():
  params = {"img": {"w": jnp.ones(3)}, "llm": {"w": jnp.ones(3)}}
  grads = {"img": {"w": jnp.array([1.0, -2.0, 3.0])}, "llm": {"w": jnp.array([1.0, -2.0, 3.0])}}
  plain = optim.make_optimizer(_cfg(), params, total_steps=10)
  scaled = optim.make_optimizer(_cfg(lr_scale=(("img/.*", 0.1),)), params, total_steps=10)
  u0, _ = plain.update(grads, plain.init(params), params)
  u1, _ = scaled.update(grads, scaled.init(params), params)
  np.testing.assert_allclose(u1["img"]["w"], 0.1 * u0["img"]["w"], rtol=1e-6)
  np.testing.assert_allclose(u1["llm"]["w"], u0["llm"]["w"], rtol=1e-6)
  assert np.all(np.abs(u0["img"]["w"]) > 0)
  with pytest.raises(ValueError, match="config.lr_scale: expected a factor >= 0"):
    optim.make_optimizer(_cfg(lr_scale=(("img/.*", -1.0),)), params, 5)


def test_bad_freeze_regex_is_a_clear_error():
  with pytest.raises(ValueError, match="config.freeze: bad regex"):
    optim.make_optimizer(_cfg(freeze=(("img/[", -1),)), {"img": {"w": jnp.ones(1)}}, 5)


def _run(workdir, steps, sleep=0.0):
  return subprocess.Popen([sys.executable, "-m", "tests.train_worker", str(workdir), str(steps), str(sleep)],
                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=dict(os.environ, PYTHONPATH=ROOT))


def _losses(workdir):
  out = {}
  for line in open(os.path.join(workdir, "losses.txt")):
    step, loss = line.split()
    out[int(step)] = loss  # steps after the last checkpoint are logged twice by a killed+resumed run: keep the last
  return out


def test_resume_after_kill_9_matches_an_uninterrupted_run(tmp_path):
  steps = 10
  full, cut = tmp_path / "full", tmp_path / "cut"
  a = _run(full, steps)
  b = _run(cut, steps, sleep=0.5)
  ckpts = cut / "checkpoints"
  deadline = time.time() + 300
  while not (ckpts / "4").exists():  # let it pass two checkpoints, then kill it hard between saves
    assert b.poll() is None, b.stderr.read().decode()[-2000:]
    assert time.time() < deadline, "the run never reached its second checkpoint"
    time.sleep(0.1)
  time.sleep(0.7)
  b.send_signal(signal.SIGKILL)
  b.wait()
  assert not (cut / "final.json").exists()
  c = _run(cut, steps)
  assert c.wait() == 0, c.stderr.read().decode()[-2000:]
  assert a.wait() == 0, a.stderr.read().decode()[-2000:]
  fa, fc = (json.load(open(d / "final.json")) for d in (full, cut))
  assert fa["step"] == fc["step"] == steps
  np.testing.assert_allclose(fc["first"], fa["first"], rtol=0, atol=0)
  assert fc["checksum"] == fa["checksum"]
  la, lc = _losses(full), _losses(cut)
  assert set(la) == set(range(1, steps + 1)) and set(lc) == set(la)
  assert all(lc[s] == la[s] for s in la)  # identical validation metrics at every step, before and after the kill


def _damage(step_dir, what):
  if what == "metadata":  # garbled _METADATA
    with open(step_dir / "default" / "_METADATA", "r+b") as f:
      f.write(b"\x00garbled{")
  else:  # the largest array file cut in half (a disk that filled up, a copy cut short)
    files = [p for p in step_dir.rglob("*") if p.is_file() and p.parent.name == "d"]
    big = max(files, key=lambda p: p.stat().st_size)
    big.write_bytes(big.read_bytes()[: big.stat().st_size // 2])


def test_damaged_newest_checkpoint_falls_back_to_the_newest_complete_one(tmp_path, capsys):
  """Issue 14: a damaged newest orbax step gave a 226-line tensorstore traceback and no fallback. Now the run
  resumes from the newest step that restores, says which folder it skipped, and ends where an undamaged run ends."""
  from data_pipelines.errors import DataFormatError
  from lrm_jax.models import paligemma
  from lrm_jax.models import tokenizer as tokenizer_lib
  from lrm_jax.train import trainer as trainer_lib
  from tests import train_worker
  w = tmp_path / "w"
  train_worker.main(str(w), 4)  # checkpoints at steps 2 and 4
  reference = json.load(open(w / "final.json"))
  for damage in ("metadata", "array"):
    _damage(w / "checkpoints" / "4", damage)
    capsys.readouterr()
    train_worker.main(str(w), 4)  # resumes from step 2, trains steps 3 and 4 again
    out = capsys.readouterr().out
    assert f"warning: skipped damaged checkpoint {w / 'checkpoints' / '4'}" in out and "resuming from step 2" in out
    assert json.load(open(w / "final.json"))["checksum"] == reference["checksum"], damage
    assert sorted(os.listdir(w / "checkpoints")) == ["2", "4"]  # step 4 written again, complete
  assert sorted(os.listdir(w / trainer_lib.CORRUPT_DIR)) == ["4", "4.1"]  # both damaged folders kept, not deleted
  # Every step damaged (or written by another model config): one line, and nothing is moved.
  _damage(w / "checkpoints" / "2", "metadata")
  _damage(w / "checkpoints" / "4", "metadata")
  tok = tokenizer_lib.load()
  model = paligemma.Model(**paligemma.get_config("tiny", llm=dict(vocab_size=tok.vocab_size)))
  trainer = trainer_lib.Trainer(train_worker.config(4), model, lambda: None, str(w))
  with pytest.raises(DataFormatError, match=r"checkpoints/4: field 'checkpoint': expected a restorable orbax"):
    trainer.initial_state(set_aside_damaged=True)
  assert sorted(os.listdir(w / "checkpoints")) == ["2", "4"]
