"""Reward server: the paper's requests get the scorer's numbers, bad input gets a one-line 4xx, concurrent clients
are batched correctly, SIGTERM answers in-flight requests. The server runs in-process on 127.0.0.1 (a uvicorn
thread) except for the SIGTERM test, which starts the real `serve` job."""
import base64
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest
import requests

from data_pipelines import prompts
from lrm_jax.jobs import reward_model as reward_model_job
from lrm_jax.models import paligemma
from lrm_jax.models import tokenizer as tokenizer_lib
from lrm_jax.rewards import scoring
from lrm_jax.serving import app as app_lib
from lrm_jax.serving import client as client_lib
from lrm_jax.serving import codec
from lrm_jax.serving import engine as engine_lib
from lrm_jax.serving import server as server_lib
from lrm_jax.utils import config_args

RES = 32
RM_ARG = f"res={RES},width=32,depth=1,patch=16"
TASK = "put the red cube on the plate"
MAX_BODY = 200_000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def model():
  config = config_args.load_file(os.path.join(ROOT, "configs/reward_model/cpu_demo.py") + ":" + RM_ARG)
  tok = tokenizer_lib.load(None)
  m = reward_model_job.build_model(config, tok)
  params = jax.device_get(paligemma.init(m, jax.random.PRNGKey(0), RES, num_images=2))
  scorer = scoring.Scorer(m, tok, RES)
  return scorer, params, jax.jit(scorer.__call__)


def direct(model, a, b, texts):
  """The scorer called directly (no server): the numbers every route must reproduce."""
  scorer, params, fn = model
  enc = scorer.encode_instructions(texts)
  return {k: np.asarray(v) for k, v in jax.device_get(fn(params, a, b, enc["tokens"], enc["mask"])).items()}


@pytest.fixture(scope="module")
def server(model):
  scorer, params, _ = model
  engine = engine_lib.Engine(scorer, params, batch_sizes=(1, 4, 8))
  engine.warmup()
  app = app_lib.create_app(engine, max_batch=8, max_wait_ms=30, max_body_bytes=MAX_BODY,
                           limits=codec.Limits(RES, max_instruction_chars=200))
  sock = server_lib.bind("127.0.0.1", 0)
  ready = threading.Event()
  srv = server_lib.make_server(app, sock, on_ready=ready.set)
  thread = threading.Thread(target=srv.run, kwargs=dict(sockets=[sock]), daemon=True)
  thread.start()
  assert ready.wait(60), "server did not start"
  yield server_lib.url_of(sock), engine
  srv.should_exit = True
  thread.join(30)
  sock.close()


def frames(seed, n=None):
  shape = (RES, RES, 3) if n is None else (n, RES, RES, 3)
  return np.random.RandomState(seed).randint(0, 256, shape).astype(np.uint8)


# The paper's client, as the reference doc describes it: raw bytes, base64, shape and dtype either as sibling
# fields (`image`, `image_shape`, `image_dtype`) or as one object {data, shape, dtype}.
def b64(x):
  return base64.b64encode(x.tobytes()).decode("utf-8")


def paper_image(name, x, as_object):
  if as_object:
    return {name: {"data": b64(x), "shape": list(x.shape), "dtype": str(x.dtype)}}
  return {name: b64(x), f"{name}_shape": list(x.shape), f"{name}_dtype": str(x.dtype)}


def post(url, route, body):
  r = requests.post(url + route, json=body, timeout=60)
  return r.status_code, r.json()


@pytest.mark.parametrize("as_object", [False, True], ids=["sibling_fields", "object"])
def test_paper_routes_give_the_scorers_numbers(model, server, as_object):
  url, _ = server
  img, init, other = frames(1), frames(2), frames(3)

  body = dict(paper_image("image", img, as_object), task_description=TASK, reward_type="progress",
              **paper_image("initial_image", init, as_object))
  assert body == client_lib.paper_request("/compute_reward", TASK, image=img, initial_image=init,
                                          reward_type="progress", as_objects=as_object)
  status, out = post(url, "/compute_reward", body)
  want = direct(model, init[None], img[None], [TASK])
  assert status == 200 and out["success"] is True
  np.testing.assert_allclose(out["score"], want["progress"][0], rtol=1e-5, atol=1e-6)
  assert out["response"] == prompts.PROGRESS_ANSWERS[int(np.argmax(want["progress_probs"][0]))]

  status, out = post(url, "/compute_reward", dict(paper_image("image", img, as_object), task_description=TASK))
  np.testing.assert_allclose(out["score"], direct(model, img[None], img[None], [TASK])["progress"][0], rtol=1e-5,
                             atol=1e-6)  # no initial image: the frame is its own context

  status, out = post(url, "/compute_completion", dict(paper_image("image", img, as_object), task_description=TASK))
  want = direct(model, img[None], img[None], [TASK])["completion"][0]
  assert status == 200 and set(out) == {"success", "score", "response", "completed"}
  np.testing.assert_allclose(out["score"], want, rtol=1e-5, atol=1e-6)
  assert out["completed"] == (want >= 0.5) and out["response"] in ("yes", "no")

  body = dict(paper_image("image_a", img, as_object), **paper_image("image_b", other, as_object),
              task_description=TASK)
  status, out = post(url, "/compute_comparison", body)
  want = direct(model, img[None], other[None], [TASK])["contrastive"][0]
  assert status == 200 and set(out) == {"success", "result", "response", "score"}
  np.testing.assert_allclose(out["score"], want, rtol=1e-5, atol=1e-6)
  assert out["result"] == ("ImageB" if want > 0 else "ImageA")

  imgs = frames(4, 5)
  texts = [TASK, "press the blue button", TASK, "open the drawer", "stack the cubes"]
  body = {"images": [{"data": b64(x), "shape": list(x.shape), "dtype": str(x.dtype)} for x in imgs],
          "task_descriptions": texts, "reward_type": "completion"}
  status, out = post(url, "/compute_rewards_batch", body)
  want = direct(model, imgs, imgs, texts)["completion"]
  assert status == 200 and len(out["results"]) == 5
  np.testing.assert_allclose([r["score"] for r in out["results"]], want, rtol=1e-5, atol=1e-6)

  status, out = requests.get(url + "/health", timeout=10).status_code, requests.get(url + "/health").json()
  assert status == 200 and out["status"] == "healthy" and out["model_loaded"] is True
  assert out["adapters"] == list(prompts.KINDS)


def test_native_route_and_client(model, server):
  url, _ = server
  a, b = frames(5, 6), frames(6, 6)
  texts = [TASK, "press the blue button"] * 3
  got = client_lib.Client(url).score(a, b, texts)
  want = direct(model, a, b, texts)
  for k in prompts.KINDS:
    np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)
  # a list of image objects is the same request as one [N, H, W, 3] object
  body = {"frames_a": [client_lib.encode_image(x) for x in a], "frames_b": client_lib.encode_image(b),
          "instructions": texts, "kinds": ["contrastive"]}
  status, out = post(url, "/v1/score", body)
  assert status == 200 and set(out) == {"success", "n", "contrastive"}
  np.testing.assert_allclose(out["contrastive"], want["contrastive"], rtol=1e-5, atol=1e-6)


def _good():
  return dict(paper_image("image", frames(7), False), task_description=TASK)


def _with(**changes):
  body = _good()
  body.update(changes)
  return {k: v for k, v in body.items() if v is not None}


_SMALL = frames(8)[:16, :16]
BAD = [  # (route, body (bytes = sent raw), status, words the one-line error must contain)
    ("/compute_reward", b"{not json", 400, ["body", "malformed JSON"]),
    ("/compute_reward", b"[1, 2]", 400, ["body", "JSON object"]),
    ("/compute_reward", _with(image=None), 400, ["'image'", "missing"]),
    ("/compute_reward", _with(task_description=None), 400, ["'task_description'", "missing"]),
    ("/compute_reward", _with(image="not base64!"), 400, ["'image'", "base64"]),
    ("/compute_reward", _with(image=b64(frames(8)[:, :16])), 422, ["'image'", "bytes do not match", "[32, 32, 3]"]),
    ("/compute_reward", _with(image_dtype="float32"), 422, ["'image_dtype'", "uint8"]),
    ("/compute_reward", _with(image=b64(_SMALL), image_shape=[16, 16, 3]), 422, ["'image_shape'", "[32, 32, 3]"]),
    ("/compute_reward", _with(image=b64(np.zeros((32, 32, 4), np.uint8)), image_shape=[32, 32, 4]), 422,
     ["'image_shape'", "3 channels"]),
    ("/compute_reward", _with(image_shape=None), 400, ["'image_shape'", "missing"]),
    ("/compute_reward", _with(image_shape="32x32"), 422, ["'image_shape'", "[H, W, 3]"]),
    ("/compute_reward", _with(task_description="   "), 422, ["'task_description'", "non-empty"]),
    ("/compute_reward", _with(task_description="a" * 201), 422, ["'task_description'", "200 characters"]),
    ("/compute_reward", _with(task_description=" ".join(["cube"] * 40)), 422, ["'task_description'", "tokens"]),
    ("/compute_reward", _with(task_description=7), 422, ["'task_description'", "string"]),
    ("/compute_reward", _with(reward_type="quality"), 422, ["'reward_type'", "progress"]),
    ("/compute_reward", _with(initial_image=b64(_SMALL)), 422, ["'initial_image", "[32, 32, 3]"]),
    ("/compute_reward", _with(pad="x" * MAX_BODY), 413, ["body", f"{MAX_BODY} bytes"]),
    ("/compute_comparison", dict(paper_image("image_a", frames(1), False), task_description=TASK), 400,
     ["'image_b'", "missing"]),
    ("/compute_rewards_batch", {"images": [], "task_descriptions": [], "reward_type": "progress"}, 422,
     ["'images'", "at least one"]),
    ("/compute_rewards_batch", {"images": [{"data": b64(frames(1)), "shape": [RES, RES, 3], "dtype": "uint8"}],
                                "task_descriptions": [TASK, TASK]}, 422, ["'task_descriptions'", "1 instructions"]),
    ("/compute_rewards_batch", {"images": [{"shape": [RES, RES, 3]}], "task_descriptions": [TASK]}, 400,
     ["'images[0].data'", "missing"]),
    ("/v1/score", {"frames_a": client_lib.encode_image(frames(1, 2)), "frames_b": client_lib.encode_image(
        frames(1, 3)), "instructions": TASK}, 422, ["'frames_b'", "shape of frames_a"]),
    ("/v1/score", {"frames_a": client_lib.encode_image(frames(1, 2)), "frames_b": client_lib.encode_image(
        frames(1, 2)), "instructions": TASK, "kinds": ["quality"]}, 422, ["'kinds'"]),
    ("/compute_robometer", {"frames": [], "task_description": TASK}, 501, ["not served by lrm_jax"]),
    ("/no_such_route", {}, 404, ["/no_such_route", "Not Found"]),
]


@pytest.mark.parametrize("route,body,status,words", BAD, ids=[f"{i}{b[0]}" for i, b in enumerate(BAD)])
def test_bad_input_gets_one_line_4xx_and_server_keeps_serving(server, route, body, status, words):
  url, _ = server
  if isinstance(body, bytes):
    r = requests.post(url + route, data=body, headers={"Content-Type": "application/json"}, timeout=30)
  else:
    r = requests.post(url + route, json=body, timeout=30)
  out = r.json()
  assert r.status_code == status, out
  assert out["success"] is False and "\n" not in out["error"] and len(out["error"]) < 300, out
  for w in words:
    assert w in out["error"], (w, out["error"])
  status, out = post(url, "/compute_reward", _good())
  assert status == 200 and out["success"] is True


def test_concurrent_clients_are_batched_and_each_gets_its_own_answer(model, server):
  url, engine = server
  before = dict(engine.stats)
  n_clients, per_client = 16, 3
  imgs, inits = frames(10, n_clients * per_client), frames(11, n_clients * per_client)
  texts = [f"press the button number {i % 5}" for i in range(len(imgs))]
  want = direct(model, inits, imgs, texts)["progress"]

  def one_client(c):
    cl = client_lib.Client(url)
    out = []
    for j in range(per_client):
      i = c * per_client + j
      body = client_lib.paper_request("/compute_reward", texts[i], image=imgs[i], initial_image=inits[i])
      out.append((i, cl.post("/compute_reward", body)["score"]))
    return out

  with concurrent.futures.ThreadPoolExecutor(n_clients) as pool:
    results = [r for rs in pool.map(one_client, range(n_clients)) for r in rs]
  got = np.zeros(len(imgs))
  for i, s in results:
    got[i] = s
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  requests_done = engine.stats["requests"] - before["requests"]
  calls = engine.stats["batches"] - before["batches"]
  assert requests_done == len(imgs)
  assert calls < requests_done, f"{calls} model calls for {requests_done} concurrent requests: nothing was batched"


def test_other_frame_sizes_are_resized_like_the_scorer_does(model):
  """resize=true servers take e.g. camera-sized frames: the engine resizes them as `preprocess.images` would."""
  scorer, params, _ = model
  engine = engine_lib.Engine(scorer, params, batch_sizes=(2,))
  big_a = np.random.RandomState(1).randint(0, 256, (2, 48, 40, 3)).astype(np.uint8)
  big_b = np.random.RandomState(2).randint(0, 256, (2, 48, 40, 3)).astype(np.uint8)
  tokens, mask = engine.encode([TASK, "open the drawer"])
  got = engine.run([engine_lib.Pairs(big_a, big_b, tokens, mask)])[0]
  want = direct(model, big_a, big_b, [TASK, "open the drawer"])
  for k in prompts.KINDS:
    np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5)
  limits = codec.Limits(RES, resize=True)
  body = paper_image("image", big_a[0], False)
  assert codec.image(body, "image", limits).shape == (48, 40, 3)
  with pytest.raises(codec.RequestError, match="'image_shape'"):
    codec.image(body, "image", codec.Limits(RES))


def test_text_mode_parses_greedy_answers(model):
  scorer, params, _ = model
  engine = engine_lib.Engine(scorer, params, batch_sizes=(2,), text=True)
  tokens, mask = engine.encode([TASK, "press the blue button"])
  out = engine.run([engine_lib.Pairs(frames(1, 2), frames(2, 2), tokens, mask)])[0]
  for k in prompts.KINDS:
    for text, score in zip(out[f"{k}_response"], out[k]):
      parsed = engine_lib.parse_answer(k, text)
      assert score == (0.0 if parsed is None else parsed)
  assert engine_lib.parse_answer("progress", " 0.3") == pytest.approx(0.3)
  assert engine_lib.parse_answer("progress", "1.0") == 1.0
  assert engine_lib.parse_answer("completion", "yes") == 1.0
  assert engine_lib.parse_answer("completion", "No") == 0.0
  assert engine_lib.parse_answer("contrastive", "B") == 1.0
  assert engine_lib.parse_answer("contrastive", "A") == -1.0
  assert engine_lib.parse_answer("contrastive", "cube") is None


def test_default_model_is_the_shipped_release_only_when_its_architecture_is_asked_for():
  """No ckpt: the shipped LRM-tiny for plain cpu_demo; an rm_arg or another rm changes the architecture, which the
  release's params do not fit, so those get the untrained model of the asked-for sizes (the server says so)."""
  from lrm_jax.models import release
  load = lambda arg: config_args.load_file(os.path.join(ROOT, "configs/serve.py") + (":" + arg if arg else ""))
  assert load("").ckpt == (release.LRM_TINY if release.available() else "")
  assert load(f"rm_arg={RM_ARG.replace(',', '+')}").ckpt == ""
  assert load("rm=paligemma_3b").ckpt == ""
  assert load("ckpt=/some/run").ckpt == "/some/run"


@pytest.mark.slow
def test_serve_job_answers_in_flight_request_on_sigterm(tmp_path):
  """The one-command server (python -m lrm_jax.main ... serve) takes SIGTERM gracefully: the request waiting in
  the batcher (max_wait_ms=1500) is answered, then the process exits 0."""
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  cmd = [sys.executable, "-m", "lrm_jax.main",
         f"--config={ROOT}/configs/serve.py:port=0,batch_sizes=1+4,max_wait_ms=1500,rm_arg={RM_ARG.replace(',', '+')}",
         f"--workdir={tmp_path}"]
  proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
  try:
    ready = tmp_path / "serve.json"
    deadline = time.time() + 300
    while not ready.exists():
      assert proc.poll() is None, proc.stdout.read()
      assert time.time() < deadline, "server did not start in 300 s"
      time.sleep(0.5)
    url = json.loads(ready.read_text())["url"]
    assert url.startswith("http://127.0.0.1:")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
      t0 = time.time()
      pending = pool.submit(post, url, "/compute_completion", _good())
      time.sleep(0.5)  # the request now waits in the batcher
      proc.send_signal(signal.SIGTERM)
      status, out = pending.result(60)
    assert status == 200 and out["success"] is True and 0.0 <= out["score"] <= 1.0
    assert time.time() - t0 >= 1.0  # it really was in flight when SIGTERM arrived
    assert proc.wait(60) == 0
    log = proc.stdout.read()
    assert "UNTRAINED" in log and "reward server stopped" in log, log
    with pytest.raises(requests.ConnectionError):
      requests.get(url + "/health", timeout=5)
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()


_DP_CHECK = """
import json, sys
import numpy as np
from lrm_jax.utils import host_devices
host_devices.use_all_cores(2)
from lrm_jax.jobs import serve
from lrm_jax.rewards import scoring
from lrm_jax.serving import engine as engine_lib
from lrm_jax.utils import config_args
config = config_args.load_file(sys.argv[1])
model, tok, params, _ = serve.load_model(config)
scorer = scoring.Scorer(model, tok, config.reward_model.image_size)
out = {}
for dp in (True, False):
  engine = engine_lib.Engine(scorer, params, batch_sizes=(1, 4), data_parallel=dp)
  assert (engine._mesh is not None) == dp
  tokens, mask = engine.encode(["press the button", "open the drawer", "stack the cubes"])
  f = np.random.RandomState(0).randint(0, 256, (3, 32, 32, 3)).astype(np.uint8)
  res = engine.run([engine_lib.Pairs(f, f[::-1], tokens, mask)])[0]
  out[str(dp)] = {k: res[k].tolist() for k in scorer.kinds}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_data_parallel_batches_give_the_same_numbers():
  """Batches split over two CPU devices (data_parallel) score like one device (a subprocess: tests run on one)."""
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  config = f"{ROOT}/configs/serve.py:rm_arg={RM_ARG.replace(',', '+')}"
  out = subprocess.run([sys.executable, "-c", _DP_CHECK, config], env=env, capture_output=True, text=True,
                       timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  res = json.loads(out.stdout.strip().splitlines()[-1])
  for k in prompts.KINDS:
    np.testing.assert_allclose(res["True"][k], res["False"][k], rtol=1e-5, atol=1e-6)
