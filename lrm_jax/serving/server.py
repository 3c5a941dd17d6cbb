"""Runs the app with uvicorn on a socket bound here (port 0 = a free port, known before serving starts).

SIGTERM / SIGINT: uvicorn stops accepting connections, answers the requests in flight (up to `graceful_s`), then
the app's lifespan drains the batcher; the process exits 0.
"""
import ipaddress
import json
import logging
import os
import signal
import socket
from typing import Callable, Optional

import uvicorn

log = logging.getLogger("lrm_jax.serving")


def bind(host: str, port: int) -> socket.socket:
  family = socket.AF_INET6 if ":" in host else socket.AF_INET
  sock = socket.socket(family, socket.SOCK_STREAM)
  sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  try:
    sock.bind((host, port))
  except OSError as e:
    sock.close()
    raise OSError(f"cannot bind {host}:{port}: {e.strerror}") from None
  return sock


def is_loopback(host: str) -> bool:
  try:
    return ipaddress.ip_address(host).is_loopback
  except ValueError:
    return host == "localhost"


class _Server(uvicorn.Server):
  """uvicorn's server, telling the caller once the socket accepts requests."""

  def __init__(self, config, on_ready: Optional[Callable[[], None]]):
    super().__init__(config)
    self._on_ready = on_ready

  def handle_exit(self, sig, frame):
    super().handle_exit(sig, frame)
    # uvicorn re-raises a caught signal after its graceful shutdown, so SIGTERM would still kill the process (exit
    # 143) after every request was answered; SIGTERM is our normal stop, so the job returns and exits 0 instead.
    if sig == signal.SIGTERM and sig in getattr(self, "_captured_signals", []):
      self._captured_signals.remove(sig)

  async def startup(self, sockets=None):
    await super().startup(sockets=sockets)
    if self.started and self._on_ready is not None:
      self._on_ready()


def make_server(app, sock: socket.socket, *, graceful_s: float = 30.0, on_ready=None,
                log_level: str = "warning") -> _Server:
  config = uvicorn.Config(app, lifespan="on", log_level=log_level, access_log=False,
                          timeout_graceful_shutdown=graceful_s, timeout_keep_alive=30)
  return _Server(config, on_ready)


def url_of(sock: socket.socket) -> str:
  host, port = sock.getsockname()[:2]
  return f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"


def serve(app, host: str = "127.0.0.1", port: int = 5001, *, ready_file: Optional[str] = None,
          graceful_s: float = 30.0, log_level: str = "warning") -> None:
  """Blocks until SIGTERM / SIGINT. `ready_file` gets {"url": ...} (written atomically) once requests are taken."""
  if not is_loopback(host):
    log.warning("serving on %s: reachable from other machines; the server has no authentication", host)
  sock = bind(host, port)
  url = url_of(sock)

  def ready():
    print(f"reward server ready at {url}", flush=True)
    if ready_file:
      tmp = ready_file + ".tmp"
      with open(tmp, "w") as f:
        json.dump({"url": url, "pid": os.getpid()}, f)
      os.replace(tmp, ready_file)

  server = make_server(app, sock, graceful_s=graceful_s, on_ready=ready, log_level=log_level)
  try:
    server.run(sockets=[sock])
  finally:
    sock.close()
