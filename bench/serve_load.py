"""Load test of the reward server: dynamic batching vs the paper's one-request-at-a-time design, same model.

  python bench/serve_load.py                                   # 1,000 requests, 16 clients, 64 px cpu_demo model
  python bench/serve_load.py --requests=200 --clients=16 --servers=batched,unbatched,unbatched_text

Each server is the real `serve` job (`python -m lrm_jax.main --config=configs/serve.py:...`) in its own process on
127.0.0.1 (loopback only, a free port); the clients are threads of this process, each with one keep-alive
connection, posting `/compute_reward` requests (progress with an initial-image anchor) built exactly as the paper's
`VLMRewardClient` builds them, until the total is reached or --max_seconds pass. Servers:

  batched         max_batch = clients, compiled batch sizes 1/4/8/16/..., max_wait_ms (default 5)
  batched_dp      the same, each batch split over the local devices (one CPU device per core)
  unbatched       the paper's design: one request at a time (max_batch 1, one compiled size), same scoring
  unbatched_text  the paper's design in full: one at a time, answers by greedy text decoding, then parsed

Reported per server: errors, p50 / p99 latency, requests/s, model calls and mean pairs per call (from /v1/stats),
and the batched / unbatched throughput ratio. The model is the cpu_demo architecture, randomly initialised (speed
does not depend on the weights). Warm-up requests (compilation is done at server start) are not timed.
"""
import argparse
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lrm_jax.serving import client as client_lib  # pylint: disable=g-import-not-at-top,wrong-import-position

TASK = "press the buttons in order: red, green, blue"


def sizes_up_to(n: int) -> str:
  out = [1]
  while out[-1] < n:
    out.append(min(out[-1] * 4 if out[-1] < 4 else out[-1] * 2, n))
  return "+".join(str(s) for s in out)


def server_arg(kind: str, clients: int, image_size: int, max_wait_ms: float) -> str:
  common = f"port=0,rm_arg=res={image_size},graceful_s=10"
  if kind in ("batched", "batched_dp"):
    dp = ",data_parallel" if kind == "batched_dp" else ""
    return f"{common},max_batch={clients},batch_sizes={sizes_up_to(clients)},max_wait_ms={max_wait_ms}{dp}"
  if kind == "unbatched":
    return f"{common},max_batch=1,batch_sizes=1,max_wait_ms=0"
  if kind == "unbatched_text":
    return f"{common},max_batch=1,batch_sizes=1,max_wait_ms=0,text"
  raise ValueError(f"--servers: expected batched, batched_dp, unbatched or unbatched_text, got {kind!r}")


class Server:
  """The serve job in a subprocess; its URL from W/serve.json once it takes requests."""

  def __init__(self, arg: str, start_timeout_s: float = 600):
    self.workdir = tempfile.mkdtemp(prefix="serve_load_")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    self.log = open(os.path.join(self.workdir, "server.log"), "w")
    self.proc = subprocess.Popen([sys.executable, "-m", "lrm_jax.main", f"--config={ROOT}/configs/serve.py:{arg}",
                                  f"--workdir={self.workdir}"], stdout=self.log, stderr=subprocess.STDOUT, env=env)
    ready = os.path.join(self.workdir, "serve.json")
    deadline = time.time() + start_timeout_s
    while not os.path.exists(ready):
      if self.proc.poll() is not None or time.time() > deadline:
        self.stop()
        raise RuntimeError(f"server did not start; log: {self.log.name}")
      time.sleep(0.5)
    with open(ready) as f:
      self.url = json.load(f)["url"]
    assert self.url.startswith("http://127.0.0.1:"), self.url

  def stop(self):
    if self.proc.poll() is None:
      self.proc.send_signal(signal.SIGTERM)
      try:
        self.proc.wait(60)
      except subprocess.TimeoutExpired:
        self.proc.kill()
        self.proc.wait()
    self.log.close()


def bodies(n: int, image_size: int) -> list:
  rng = np.random.RandomState(0)
  out = []
  for _ in range(n):
    img, init = (rng.randint(0, 256, (image_size, image_size, 3)).astype(np.uint8) for _ in range(2))
    out.append(json.dumps(client_lib.paper_request("/compute_reward", TASK, image=img, initial_image=init)))
  return out


def load(url: str, payloads: list, total: int, clients: int, max_seconds: float) -> dict:
  """`clients` threads post until `total` requests are sent or `max_seconds` pass; latencies in seconds."""
  counter, lock = iter(range(total)), threading.Lock()
  deadline = time.perf_counter() + max_seconds

  def worker(_):
    session = requests.Session()
    lat, errors = [], []
    while time.perf_counter() < deadline:
      with lock:
        i = next(counter, None)
      if i is None:
        break
      t = time.perf_counter()
      try:
        r = session.post(url + "/compute_reward", data=payloads[i % len(payloads)],
                         headers={"Content-Type": "application/json"}, timeout=120)
        ok = r.status_code == 200 and r.json().get("success") is True
      except requests.RequestException as e:
        ok, r = False, e
      lat.append(time.perf_counter() - t)
      if not ok:
        errors.append(str(getattr(r, "text", r))[:200])
    session.close()
    return lat, errors

  t0 = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(clients) as pool:
    parts = list(pool.map(worker, range(clients)))
  seconds = time.perf_counter() - t0
  lat = np.array([x for p in parts for x in p[0]])
  errors = [e for p in parts for e in p[1]]
  return dict(n=len(lat), errors=len(errors), first_error=errors[0] if errors else "", seconds=seconds,
              rps=len(lat) / seconds, p50=float(np.percentile(lat, 50)) * 1e3, p99=float(np.percentile(lat, 99)) * 1e3)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--requests", type=int, default=1000)
  p.add_argument("--clients", type=int, default=16)
  p.add_argument("--servers", default="batched,unbatched")
  p.add_argument("--image_size", type=int, default=64)
  p.add_argument("--max_wait_ms", type=float, default=5.0)
  p.add_argument("--max_seconds", type=float, default=600, help="each load run stops by itself after this")
  a = p.parse_args()
  payloads = bodies(64, a.image_size)
  print(f"# reward server load test: {a.requests} /compute_reward requests (paper client's encoding, progress with "
        f"initial image), {a.clients} concurrent clients, loopback; cpu_demo model at {a.image_size} px")
  print(f"# machine: {os.cpu_count()} CPUs")
  rows = {}
  for kind in a.servers.split(","):
    server = Server(server_arg(kind, a.clients, a.image_size, a.max_wait_ms))
    try:
      load(server.url, payloads, 2 * a.clients, a.clients, 120)  # warm-up: connections, first-call costs
      before = requests.get(server.url + "/v1/stats", timeout=30).json()
      res = load(server.url, payloads, a.requests, a.clients, a.max_seconds)
      after = requests.get(server.url + "/v1/stats", timeout=30).json()
      res["calls"] = after["batches"] - before["batches"]
      res["pairs_per_call"] = (after["pairs"] - before["pairs"]) / max(res["calls"], 1)
      res["model_ms"] = 1e3 * (after["model_s"] - before["model_s"]) / max(res["n"], 1)
      rows[kind] = res
    finally:
      server.stop()
  print("| server | requests | errors | p50 ms | p99 ms | req/s | model calls | pairs / call | model ms / request |")
  print("|---|---|---|---|---|---|---|---|---|")
  for kind, r in rows.items():
    print(f"| {kind} | {r['n']} | {r['errors']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['rps']:.1f} | {r['calls']} | "
          f"{r['pairs_per_call']:.1f} | {r['model_ms']:.1f} |")
  for kind, r in rows.items():
    if r["errors"]:
      print(f"{kind}: first error: {r['first_error']}")
  for fast in ("batched", "batched_dp"):
    for kind in ("unbatched", "unbatched_text"):
      if fast in rows and kind in rows:
        print(f"{fast} / {kind} throughput: {rows[fast]['rps'] / rows[kind]['rps']:.2f}x")
  if any(r["errors"] for r in rows.values()):
    sys.exit(1)


if __name__ == "__main__":
  main()
