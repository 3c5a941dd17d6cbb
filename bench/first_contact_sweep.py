"""First-contact sweep (issue 14): bad inputs and faults a new user meets, each checked for the promised behaviour.

  python bench/first_contact_sweep.py [--only SUBSTRING] [--json OUT.json]

Three kinds of case:
  cli   `python -m lrm_jax.main ...` in a subprocess (no debug switch): exit status non-zero, no "Traceback" in the
        output, stderr exactly one line `error: ...` containing the expected words (the field), and no lost files:
        every workdir starts with a sentinel file (and a run record where the case needs one) that must be
        byte-identical afterwards.
  api   the scoring API and the readers called in one Python process: the bad input raises a UserError whose
        first line names the argument/field and says "expected"; inputs that used to be scored silently wrong are
        refused or flagged (`frames_ok` False).
  fault a damaged newest orbax checkpoint: the training run resumes from the newest complete step, warns in one
        line naming the skipped folder, ends with the same parameters as the undamaged run, and keeps the damaged
        folder.
Prints one row per case and the totals (ok, tracebacks, not one line, silently wrong, lost files); exit 1 if any
case fails. Results: bench/RESULTS.md, "First-contact sweep".
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's lrm_jax, not an installed copy
SENTINEL = "keep_me.txt"


def _env(extra=None):
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), JAX_PLATFORMS="cpu")
  env.pop("LRM_JAX_DEBUG", None)
  env.update(extra or {})
  return env


def _digest(root):
  """{relative path: sha1} of every file under root (a file root: itself)."""
  if os.path.isfile(root):
    return {"": hashlib.sha1(open(root, "rb").read()).hexdigest()}
  out = {}
  for d, _, files in os.walk(root):
    for f in files:
      p = os.path.join(d, f)
      out[os.path.relpath(p, root)] = hashlib.sha1(open(p, "rb").read()).hexdigest()
  return out


# ---- cases ----------------------------------------------------------------------------------------------------------
def cli_cases(tmp):
  """(name, argv after `-m lrm_jax.main` with {W} for the workdir, env, words the error line must contain,
  set-up(workdir) or None)."""
  bad_npz = os.path.join(tmp, "truncated.npz")
  rand_npz = os.path.join(tmp, "random.npz")
  import numpy as np
  buf = os.path.join(tmp, "good.npz")
  np.savez(buf, **{"params/a": np.arange(5000, dtype=np.float32)})
  open(bad_npz, "wb").write(open(buf, "rb").read()[:3000])
  open(rand_npz, "wb").write(np.random.default_rng(0).bytes(4000))
  a_file = os.path.join(tmp, "a_file")
  with open(a_file, "w") as f:
    f.write("not a directory")

  def record(config_json):
    def setup(w):
      os.makedirs(w, exist_ok=True)
      with open(os.path.join(w, "config.json"), "w") as f:
        f.write(config_json)
    return setup

  other_run = json.dumps({"job": "datagen", "episodes_per_task": 99, "image_size": 64, "tasks": ["push_cube"]})
  dg, rd, rm, rl, sv, demo = ("configs/datagen.py", "configs/reward_data.py", "configs/reward_model/cpu_demo.py",
                              "configs/refine.py", "configs/serve.py", "configs/demo.py")
  c = []
  add = lambda name, argv, words, env=None, setup=None, workdir=True: c.append(
      (name, argv + (["--workdir={W}"] if workdir else []), env or {}, words, setup))
  # -- the command line
  add("missing --workdir", [f"--config={dg}"], ["--workdir"], workdir=False)
  add("missing --config", [], ["--config"])
  add("unknown flag", [f"--config={dg}", "--bogus"], ["bogus"])
  add("config file missing", ["--config=configs/nope.py"], ["--config=configs/nope.py", "no such file"])
  add("config file missing with arg", ["--config=configs/nope.py:steps=1"], ["no such file"])
  add("unknown config arg", [f"--config={rm}:stepz=10"], ["unknown config arg 'stepz'", "expected one of"])
  add("non-integer config arg", [f"--config={rm}:steps=abc"], ["config arg steps", "expected an integer", "'abc'"])
  add("non-number config arg", [f"--config={rm}:lr=fast"], ["config arg lr", "expected a number"])
  add("non-boolean config arg", [f"--config={dg}:videos=maybe"], ["config arg videos", "boolean"])
  add("unknown --config.field", [f"--config={rm}", "--config.nosuchfield=1"], ["--config.nosuchfield", "unknown field"])
  add("misspelt nested field", [f"--config={rl}", "--config.ppo.num_envz=3"], ["num_envz", "did you mean num_envs"])
  add("field of a tuple", [f"--config={dg}", "--config.tasks.x=1"], ["--config.tasks.x"])
  add("wrongly typed field", [f"--config={rm}", "--config.batch_size=abc"], ["batch_size", "abc"])
  add("unknown job", [f"--config={dg}", "--config.job=nope"], ["config.job", "unknown job 'nope'"])
  # -- config values (validated before any work)
  add("refine unknown task", [f"--config={rl}:task=fly_to_moon"], ["config.task", "unknown task 'fly_to_moon'"])
  add("refine training task", [f"--config={rl}:task=push_cube"], ["config.task", "held-out", "training task"])
  add("refine unknown reward", [f"--config={rl}:rewards=oracle+bogus"], ["config.rewards", "'bogus'"])
  add("refine empty reward", [f"--config={rl}:rewards="], ["config.rewards"])
  add("refine num_envs=0", [f"--config={rl}:envs=0,rewards=oracle"], ["num_envs", "0"])
  add("refine no reward model", [f"--config={rl}:rewards=lrm_tri"], ["reward_model_workdir", "expected"])
  add("refine missing reward model", [f"--config={rl}:rewards=lrm_tri,rm_workdir=/nonexistent"],
      ["reward_model_workdir", "/nonexistent"])
  add("refine envs not divisible by devices", [f"--config={rl}:envs=3,rewards=oracle"], ["num_envs", "devices"],
      env={"LRM_JAX_CPU_DEVICES": "2"})
  add("refine eval_episodes=0", [f"--config={rl}:eval_episodes=0,rewards=oracle"], ["num_episodes"])
  add("reward model batch=0", [f"--config={rm}:batch=0"], ["config.batch_size", "expected an integer >= 1", "0"])
  add("reward model res=-1", [f"--config={rm}:res=-1"], ["image_size", ">= 8", "-1"])
  add("reward model res below patch", [f"--config={rm}:res=8"], ["image_size", "patch size 16"])
  add("reward model episodes=0", [f"--config={rm}:episodes=0"], ["episodes_per_task", "0"])
  add("reward model steps=0", [f"--config={rm}:steps=0"], ["total_steps", "0"])
  add("reward model training task in eval_data", [f"--config={rm}", "--config.eval_data.tasks=('push_cube',)"],
      ["eval_data.tasks", "held-out", "training task"])
  add("reward model missing init.ckpt", [f"--config={rm}", "--config.init.ckpt=/nope/pt_224.npz"],
      ["init.ckpt", "/nope/pt_224.npz"])
  add("reward model truncated init.ckpt", [f"--config={rm}", f"--config.init.ckpt={bad_npz}"],
      [bad_npz, "expected a big_vision .npz"])
  add("reward model random-bytes init.ckpt", [f"--config={rm}", f"--config.init.ckpt={rand_npz}"],
      [rand_npz, "expected a big_vision .npz"])
  add("reward model missing tokenizer", [f"--config={rm}", "--config.init.tokenizer=/nope/tok.model"],
      ["init.tokenizer", "/nope/tok.model"])
  add("reward_data episodes_per_task=0", [f"--config={rd}:episodes_per_task=0"], ["episodes_per_task", "0"])
  add("reward_data held-out task", [f"--config={rd}:tasks=two_on_plate"], ["datagen.tasks", "training tasks only"])
  add("reward_data unknown task", [f"--config={rd}:tasks=nosuch"], ["unknown task 'nosuch'"])
  add("reward_data image_size=-1", [f"--config={rd}:image_size=-1"], ["image_size", "-1"])
  add("reward_data failure_fraction=1.5", [f"--config={rd}:failure_fraction=1.5"], ["failure_fraction", "1.5"])
  add("reward_data real data root missing", [f"--config={rd}:real,root=/nonexistent_data"],
      ["/nonexistent_data"])
  add("datagen episodes_per_task=0", [f"--config={dg}:episodes_per_task=0"], ["episodes_per_task", "0"])
  add("datagen batch_size=0", [f"--config={dg}:batch_size=0"], ["batch_size", "0"])
  add("datagen unknown camera", [f"--config={dg}", "--config.camera=top"], ["camera", "'top'"])
  add("datagen unknown failure mode", [f"--config={dg}", "--config.failure_modes=('explode',)"],
      ["failure_modes", "'explode'"])
  add("serve missing ckpt", [f"--config={sv}:ckpt=/nope/model.npz"], ["config.ckpt", "/nope/model.npz"])
  add("serve truncated ckpt", [f"--config={sv}:ckpt={bad_npz}"], [bad_npz, "expected a big_vision .npz"])
  add("serve port out of range", [f"--config={sv}:port=70000"], ["port", "70000"])
  add("demo num_envs=0", [f"--config={demo}:quick", "--config.refine.ppo.num_envs=0"], ["num_envs"])
  add("demo rm_arg batch=0", [f"--config={demo}:rm_arg=batch=0"], ["batch_size", "0"])
  # -- environment
  add("LRM_JAX_CPU_DEVICES=abc", [f"--config={dg}"], ["LRM_JAX_CPU_DEVICES", "'abc'"],
      env={"LRM_JAX_CPU_DEVICES": "abc"})
  add("LRM_JAX_CPU_DEVICES=-1", [f"--config={dg}"], ["LRM_JAX_CPU_DEVICES", "-1"], env={"LRM_JAX_CPU_DEVICES": "-1"})
  add("JAX_NUM_PROCESSES=abc", [f"--config={dg}"], ["JAX_NUM_PROCESSES", "'abc'"], env={"JAX_NUM_PROCESSES": "abc"})
  # -- workdirs and run records
  c.append(("workdir is a file", [f"--config={dg}", f"--workdir={a_file}"], {}, ["expected a directory",
                                                                                   "existing file"], None))
  c.append(("workdir under a file", [f"--config={dg}", f"--workdir={a_file}/sub"], {}, ["create and write"], None))
  c.append(("workdir unwritable", [f"--config={dg}", "--workdir=/proc/lrm_jax_sweep"], {}, ["create and write"],
            None))
  add("rerun with a different config", [f"--config={dg}:episodes_per_task=3"],
      ["config.json", "difference", "episodes_per_task: 99 -> 3"], setup=record(other_run))
  return c, [bad_npz, rand_npz, a_file]


def run_cli(name, argv, env, words, setup, tmp, i, timeout=600):
  w = os.path.join(tmp, f"w{i}")
  argv = [a.replace("{W}", w) for a in argv]
  if any("{W}" in a for a in argv) or any(a == f"--workdir={w}" for a in argv):
    os.makedirs(w, exist_ok=True)
    with open(os.path.join(w, SENTINEL), "w") as f:
      f.write(f"case {name}")
    if setup:
      setup(w)
  watched = [a.split("=", 1)[1] for a in argv if a.startswith("--workdir=") and os.path.exists(a.split("=", 1)[1])]
  before = {p: _digest(p) for p in watched}
  t0 = time.time()
  try:
    out = subprocess.run([sys.executable, "-m", "lrm_jax.main"] + argv, cwd=ROOT, env=_env(env),
                         capture_output=True, text=True, timeout=timeout)
  except subprocess.TimeoutExpired:  # still working (late validation) or hung: no message within the limit
    after = {p: _digest(p) for p in watched}
    lost = [p for p in watched if any(after[p].get(k) != v for k, v in before[p].items())]
    return dict(case=name, kind="cli", seconds=round(time.time() - t0, 1), rc=None, traceback=False,
                one_line=False, names_field=False, lost_files=bool(lost), silently_wrong=False, ok=False,
                message=f"no result within {timeout} s (still working, or hung)")
  lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
  text = out.stdout + out.stderr
  after = {p: _digest(p) for p in watched}
  lost = [p for p in watched if any(after[p].get(k) != v for k, v in before[p].items())]
  r = dict(case=name, kind="cli", seconds=round(time.time() - t0, 1), rc=out.returncode,
           traceback="Traceback" in text, one_line=len(lines) == 1 and lines[0].startswith("error: "),
           names_field=bool(lines) and all(wd in lines[-1] for wd in words), lost_files=bool(lost),
           silently_wrong=out.returncode == 0, message=lines[-1][:300] if lines else "")
  r["ok"] = (r["rc"] != 0 and not r["traceback"] and r["one_line"] and r["names_field"] and not r["lost_files"])
  return r


# ---- in-process API cases -------------------------------------------------------------------------------------------
def api_cases(tmp):
  """(name, fn) where fn() returns ("raised", exception) or ("flagged", bool) or ("ok", None)."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from lrm_jax.models import paligemma
  from lrm_jax.models import tokenizer as tokenizer_lib
  from lrm_jax.rewards import scoring
  tok = tokenizer_lib.load()
  model = paligemma.Model(**paligemma.get_config("tiny", llm=dict(vocab_size=tok.vocab_size)))
  img = 16
  params = paligemma.init(model, jax.random.PRNGKey(0), img, num_images=2)
  scorer = scoring.Scorer(model, tok, img, guard=True)
  rng = np.random.default_rng(0)
  a = rng.integers(0, 256, (3, img, img, 3), dtype=np.uint8)
  enc = scorer.encode_instructions(["open the drawer"] * 3)
  call = jax.jit(scorer.__call__)
  score = lambda x, y=None, t=None, m=None: call(params, a if y is None else y, x,
                                                 enc["tokens"] if t is None else t, enc["mask"] if m is None else m)

  def raises(fn):
    def run():
      try:
        fn()
      except Exception as e:  # noqa: BLE001 -- the sweep records what was raised
        return ("raised", e)
      return ("ok", None)
    return run

  def flagged(x):
    def run():
      return ("flagged", not bool(np.asarray(score(x)["frames_ok"]).all()))
    return run

  nan = a.astype(np.float32)
  nan[0, 0, 0, 0] = np.nan
  fn = scoring.score_fn_for_rl(scorer, params, ["open the drawer"])
  cases = [
      ("scoring channels-first frames", raises(lambda: score(a.transpose(0, 3, 1, 2))), "images_b"),
      ("scoring [B,H,W] frames", raises(lambda: score(a[..., 0])), "images_b"),
      ("scoring int64 frames up to 2550", raises(lambda: score(a.astype(np.int64) * 10)), "images_b"),
      ("scoring empty batch", raises(lambda: score(a[:0], a[:0], enc["tokens"][:0], enc["mask"][:0])), "images_b"),
      ("scoring mismatched frame batches", raises(lambda: score(a, a[:2])), "images_a"),
      ("scoring mismatched instruction batch", raises(lambda: score(a, t=enc["tokens"][:2], m=enc["mask"][:2])),
       "prefix_tokens"),
      ("scoring empty instruction", raises(lambda: scorer.encode_instructions(["open the drawer", ""])),
       "instructions[1]"),
      ("scoring None instruction", raises(lambda: scorer.encode_instructions([None])), "instructions[0]"),
      ("scoring no instructions", raises(lambda: scorer.encode_instructions([])), "instructions"),
      ("scoring a string for the instruction list", raises(lambda: scorer.encode_instructions("open it")),
       "instructions"),
      ("rl score_fn wrong instruction_ids", raises(lambda: fn(a, a, jnp.zeros((2,), jnp.int32))),
       "instruction_ids"),
      ("scoring NaN frames (guard)", flagged(nan), None),
      ("scoring frames in [-1, 1] (guard)", flagged(a.astype(np.float32) / 127.5 - 1.0), None),
      ("check_frame_values NaN", raises(lambda: scoring.check_frame_values(nan)), "frames"),
      ("check_frame_values [-1, 1]", raises(lambda: scoring.check_frame_values(a / 127.5 - 1.0)), "frames"),
  ]
  # Data and checkpoint files.
  from lrm_jax.models import checkpoint
  from data_pipelines.oxe import OxeReader
  from data_pipelines.ssv2 import Ssv2Reader
  from tests import fixtures_rlds
  from tests import fixtures_video
  trunc = os.path.join(tmp, "truncated.npz")
  rand = os.path.join(tmp, "random.npz")
  cases += [
      ("load_npz truncated", raises(lambda: checkpoint.load_npz(trunc)), trunc),
      ("load_npz random bytes", raises(lambda: checkpoint.load_npz(rand)), rand),
      ("OxeReader on a folder that is not TFDS", raises(lambda: OxeReader(tmp)), "dataset_info.json"),
      ("Ssv2Reader without labels", raises(lambda: list(Ssv2Reader(os.path.join(tmp, "no_ssv2")))), "labels"),
  ]
  bridge, _ = fixtures_rlds.write_oxe(os.path.join(tmp, "oxe"), "bridge_dataset", num_episodes=3, T=3,
                                      instructions=["open the drawer", "", "close the drawer"])

  def bridge_reads():
    r = OxeReader(bridge)
    n = len(list(r))
    return ("flagged", n == 2 and r.no_instruction_count == 1)  # read on, and counted
  ssv2_root = os.path.join(tmp, "ssv2")
  fixtures_video.write_ssv2(ssv2_root, [("1", "Pushing [something]", ["a box"], 4)],
                            videos_subdir="20bn-something-something-v2")

  def ssv2_reads():
    return ("flagged", len(list(Ssv2Reader(ssv2_root))) == 1)
  cases += [("Bridge episode without language", bridge_reads, None),
            ("SSv2 videos in 20bn-something-something-v2/", ssv2_reads, None)]
  return cases


def run_api(name, fn, field):
  from data_pipelines.errors import UserError
  t0 = time.time()
  kind, value = fn()
  r = dict(case=name, kind="api", seconds=round(time.time() - t0, 1), traceback=False, lost_files=False)
  if kind == "raised":
    first = str(value).splitlines()[0] if str(value) else ""
    r.update(message=first[:300], one_line=isinstance(value, UserError), names_field=field in first
             and "expected" in first, silently_wrong=False)
  elif kind == "flagged":
    r.update(message=f"flagged/handled: {value}", one_line=True, names_field=True, silently_wrong=not value)
  else:
    r.update(message="no error", one_line=False, names_field=False, silently_wrong=True)
  r["ok"] = r["one_line"] and r["names_field"] and not r["silently_wrong"]
  return r


# ---- fault: damaged newest checkpoint ---------------------------------------------------------------------------------
def run_checkpoint_fault(tmp):
  t0 = time.time()
  w = os.path.join(tmp, "ckpt_run")
  run = lambda: subprocess.run([sys.executable, "-m", "tests.train_worker", w, "4"], cwd=ROOT, env=_env(),
                               capture_output=True, text=True, timeout=900)
  first = run()
  reference = json.load(open(os.path.join(w, "final.json")))["checksum"] if first.returncode == 0 else None
  with open(os.path.join(w, "checkpoints", "4", "default", "_METADATA"), "r+b") as f:
    f.write(b"\x00garbled{")
  second = run()
  text = second.stdout + second.stderr
  warn = [ln for ln in second.stdout.splitlines() if ln.startswith("warning: skipped damaged checkpoint")]
  same = second.returncode == 0 and json.load(open(os.path.join(w, "final.json")))["checksum"] == reference
  kept = os.path.isdir(os.path.join(w, "checkpoints.corrupt", "4"))
  r = dict(case="damaged newest orbax checkpoint", kind="fault", seconds=round(time.time() - t0, 1),
           rc=second.returncode, traceback="Traceback" in text, one_line=len(warn) == 1,
           names_field=bool(warn) and os.path.join(w, "checkpoints", "4") in warn[0], lost_files=not kept,
           silently_wrong=not same, message=warn[0][:300] if warn else text[-300:])
  r["ok"] = (not r["traceback"] and r["one_line"] and r["names_field"] and not r["lost_files"]
             and not r["silently_wrong"])
  return r


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--only", default="", help="run only cases whose name contains this")
  p.add_argument("--json", default="", help="write the rows here")
  p.add_argument("--skip_fault", action="store_true", help="skip the checkpoint fault case (two training runs)")
  p.add_argument("--timeout", type=int, default=600, help="seconds a command-line case may take")
  p.add_argument("--skip", type=int, default=0, help="skip the first N command-line cases")
  args = p.parse_args()
  tmp = tempfile.mkdtemp(prefix="lrm_jax_sweep_")
  rows = []
  try:
    cases, _ = cli_cases(tmp)
    for i, (name, argv, env, words, setup) in enumerate(cases):
      if args.only in name and i >= args.skip:
        rows.append(run_cli(name, argv, env, words, setup, tmp, i, args.timeout))
        print(json.dumps(rows[-1]), flush=True)
    for name, fn, field in api_cases(tmp):
      if args.only in name:
        rows.append(run_api(name, fn, field))
        print(json.dumps(rows[-1]), flush=True)
    if not args.skip_fault and args.only in "damaged newest orbax checkpoint":
      rows.append(run_checkpoint_fault(tmp))
      print(json.dumps(rows[-1]), flush=True)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  totals = dict(cases=len(rows), ok=sum(r["ok"] for r in rows), tracebacks=sum(r["traceback"] for r in rows),
                not_one_line=sum(not r["one_line"] for r in rows),
                not_naming_the_field=sum(not r["names_field"] for r in rows),
                silently_wrong=sum(r["silently_wrong"] for r in rows), lost_files=sum(r["lost_files"] for r in rows),
                seconds=round(sum(r["seconds"] for r in rows), 1))
  print("\n| case | kind | ok | message |\n|---|---|---|---|")
  for r in rows:
    print(f"| {r['case']} | {r['kind']} | {'yes' if r['ok'] else 'NO'} | {r['message'][:140]} |")
  print("\n" + json.dumps(totals))
  if args.json:
    with open(args.json, "w") as f:
      json.dump(dict(rows=rows, totals=totals), f, indent=2)
  return 0 if totals["ok"] == totals["cases"] else 1


if __name__ == "__main__":
  sys.exit(main())
