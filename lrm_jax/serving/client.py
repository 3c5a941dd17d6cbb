"""Small Python clients for the reward server.

`Client` speaks the native batched route: `Client(url).score(frames_a, frames_b, instructions)` -> {kind: [N]
float32}. `paper_request(...)` builds the JSON bodies of the paper's routes exactly as the paper's
`VLMRewardClient` does (raw array bytes, base64, `<name>_shape` / `<name>_dtype` siblings, or `{data, shape,
dtype}` objects in the batch route), for tests, benchmarks and anyone porting that client's calls.
"""
import base64
from typing import Optional, Sequence, Union

import numpy as np
import requests


class ServerError(RuntimeError):
  """A non-200 answer: the HTTP status and the server's one-line error."""

  def __init__(self, status: int, message: str):
    super().__init__(f"HTTP {status}: {message}")
    self.status, self.message = status, message


def encode_image(image: np.ndarray) -> dict:
  """{data, shape, dtype}: one frame [H, W, 3] or a batch [N, H, W, 3] of uint8."""
  image = np.ascontiguousarray(image)
  return {"data": base64.b64encode(image.tobytes()).decode("ascii"), "shape": list(image.shape),
          "dtype": str(image.dtype)}


def _flat(name: str, image: np.ndarray) -> dict:
  """The paper client's bare encoding: `name` (base64 string) + `name_shape` + `name_dtype`."""
  enc = encode_image(image)
  return {name: enc["data"], f"{name}_shape": enc["shape"], f"{name}_dtype": enc["dtype"]}


def paper_request(route: str, task_description: Union[str, Sequence[str]], *, image=None, image_a=None,
                  image_b=None, images=None, initial_image=None, goal_image=None,
                  reward_type: Optional[str] = None, as_objects: bool = False) -> dict:
  """The body the paper's client posts to `route` (`as_objects`: images as `{data, shape, dtype}` objects, the
  other encoding the paper's server accepts)."""
  enc = (lambda name, im: {name: encode_image(im)}) if as_objects else _flat
  if route == "/compute_reward":
    body = dict(enc("image", image), task_description=task_description, reward_type=reward_type or "progress")
    if goal_image is not None:
      body.update(enc("goal_image", goal_image))
    if initial_image is not None:
      body.update(enc("initial_image", initial_image))
    return body
  if route == "/compute_completion":
    return dict(enc("image", image), task_description=task_description)
  if route == "/compute_comparison":
    return dict(enc("image_a", image_a), **enc("image_b", image_b), task_description=task_description)
  if route == "/compute_rewards_batch":
    texts = [task_description] * len(images) if isinstance(task_description, str) else list(task_description)
    return {"images": [encode_image(im) for im in images], "task_descriptions": texts,
            "reward_type": reward_type or "progress"}
  raise ValueError(f"route: expected one of /compute_reward, /compute_completion, /compute_comparison, "
                   f"/compute_rewards_batch, got {route!r}")


class Client:
  """Keeps one HTTP connection (requests.Session); one Client per thread."""

  def __init__(self, url: str, timeout: float = 60.0):
    self.url, self.timeout = url.rstrip("/"), float(timeout)
    self.session = requests.Session()

  def post(self, route: str, body: dict) -> dict:
    resp = self.session.post(self.url + route, json=body, timeout=self.timeout)
    out = resp.json()
    if resp.status_code != 200:
      raise ServerError(resp.status_code, out.get("error", resp.text))
    return out

  def health(self) -> dict:
    return self.session.get(self.url + "/health", timeout=self.timeout).json()

  def score(self, frames_a: np.ndarray, frames_b: np.ndarray, instructions: Union[str, Sequence[str]],
            kinds: Optional[Sequence[str]] = None) -> dict:
    """frames uint8 [N, H, W, 3] (context, current) -> {kind: float32 [N]} for every signal (or `kinds`)."""
    body = {"frames_a": encode_image(np.asarray(frames_a, np.uint8)),
            "frames_b": encode_image(np.asarray(frames_b, np.uint8)),
            "instructions": instructions if isinstance(instructions, str) else list(instructions)}
    if kinds is not None:
      body["kinds"] = list(kinds)
    out = self.post("/v1/score", body)
    return {k: np.asarray(v, np.float32) for k, v in out.items() if isinstance(v, list)}

  def close(self):
    self.session.close()
