"""Request parsing and validation: JSON fields -> numpy frames and instruction strings, or a one-line 4xx error.

Images travel as in the "Large Reward Models" paper's client: raw array bytes, base64, with shape and dtype, either
as an object `{"data": b64, "shape": [H, W, 3], "dtype": "uint8"}` or as a bare base64 string in `<name>` with
sibling fields `<name>_shape` / `<name>_dtype` (dtype defaults to uint8). The native route also takes one object
for a whole batch (`shape` [N, H, W, 3]). Every check names the field and what was expected, so a client sees e.g.
`field 'image_shape': expected [64, 64, 3] (the model's image size), got [480, 640, 3]` and the server keeps
serving.
"""
import base64
import binascii
import json
from typing import Any, Optional

import numpy as np


class RequestError(Exception):
  """A bad request: HTTP `status` with a one-line message."""

  def __init__(self, message: str, status: int = 422):
    super().__init__(message)
    self.status = status


def _short(value: Any, limit: int = 60) -> str:
  text = repr(value)
  return text if len(text) <= limit else text[:limit] + "..."


def parse_json(body: bytes) -> dict:
  """The body as a JSON object (400 otherwise)."""
  try:
    obj = json.loads(body)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise RequestError(f"body: expected a JSON object, got malformed JSON ({e.msg if hasattr(e, 'msg') else e})",
                       400) from None
  if not isinstance(obj, dict):
    raise RequestError(f"body: expected a JSON object, got {type(obj).__name__}", 400)
  return obj


def require(body: dict, name: str) -> Any:
  if name not in body or body[name] is None:
    raise RequestError(f"field '{name}': missing (required)", 400)
  return body[name]


class Limits:
  """What a request may contain: the model's image size (or any size when `resize`), instruction length in
  characters and in tokens, pairs per request."""

  def __init__(self, image_size: int, resize: bool = False, max_instruction_chars: int = 512,
               max_pairs: int = 1024, max_side: int = 4096):
    self.image_size, self.resize = int(image_size), bool(resize)
    self.max_instruction_chars, self.max_pairs, self.max_side = int(max_instruction_chars), int(max_pairs), max_side


def _b64(field: str, data: Any) -> bytes:
  if not isinstance(data, str):
    raise RequestError(f"field '{field}': expected a base64 string, got {type(data).__name__}")
  try:
    return base64.b64decode(data, validate=True)
  except (binascii.Error, ValueError) as e:
    raise RequestError(f"field '{field}': invalid base64 ({e})", 400) from None


def _shape(field: str, shape: Any, batched: bool) -> tuple:
  rank = 4 if batched else 3
  want = "[N, H, W, 3]" if batched else "[H, W, 3]"
  if (not isinstance(shape, (list, tuple)) or len(shape) != rank
      or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
    raise RequestError(f"field '{field}': expected a shape {want} of positive integers, got {_short(shape)}")
  if shape[-1] != 3:
    raise RequestError(f"field '{field}': expected 3 channels (RGB) in the last dimension, got {_short(shape)}")
  return tuple(shape)


def _dtype(field: str, dtype: Any) -> np.dtype:
  if dtype != "uint8":
    raise RequestError(f"field '{field}': expected 'uint8', got {_short(dtype)}")
  return np.dtype(np.uint8)


def _check_size(field: str, shape: tuple, limits: Limits) -> None:
  h, w = shape[-3], shape[-2]
  if limits.resize:
    if max(h, w) > limits.max_side:
      raise RequestError(f"field '{field}': expected height and width <= {limits.max_side}, got {list(shape)}")
  elif (h, w) != (limits.image_size, limits.image_size):
    raise RequestError(f"field '{field}': expected [{limits.image_size}, {limits.image_size}, 3] (the model's image "
                       f"size; start the server with resize=true to accept other sizes), got {list(shape)}")


def _array(data_field: str, shape_field: str, dtype_field: str, data: Any, shape: Any, dtype: Any,
           limits: Limits, batched: bool) -> np.ndarray:
  shape = _shape(shape_field, shape, batched)
  dt = _dtype(dtype_field, dtype)
  _check_size(shape_field, shape, limits)
  raw = _b64(data_field, data)
  want = int(np.prod(shape)) * dt.itemsize
  if len(raw) != want:
    raise RequestError(f"field '{data_field}': {len(raw)} bytes do not match shape {list(shape)} {dt.name} "
                       f"(expected {want} bytes)")
  return np.frombuffer(raw, dt).reshape(shape)


def image(body: dict, name: str, limits: Limits, fallback: Optional[tuple] = None) -> np.ndarray:
  """One frame [H, W, 3] uint8 from `body[name]` in either of the paper's encodings. `fallback` = (shape, dtype)
  used when a bare string comes without `<name>_shape` (the paper's server reuses the main image's)."""
  value = require(body, name)
  if isinstance(value, dict):
    return _array(f"{name}.data", f"{name}.shape", f"{name}.dtype", require_in(value, "data", name),
                  require_in(value, "shape", name), value.get("dtype", "uint8"), limits, batched=False)
  shape = body.get(f"{name}_shape")
  dtype = body.get(f"{name}_dtype")
  if shape is None and fallback is not None:
    shape, dtype = fallback[0], dtype or fallback[1]
  if shape is None:
    raise RequestError(f"field '{name}_shape': missing (required when '{name}' is a bare base64 string)", 400)
  return _array(name, f"{name}_shape", f"{name}_dtype", value, shape, dtype or "uint8", limits, batched=False)


def require_in(obj: dict, key: str, parent: str) -> Any:
  if key not in obj or obj[key] is None:
    raise RequestError(f"field '{parent}.{key}': missing (required)", 400)
  return obj[key]


def image_list(body: dict, name: str, limits: Limits) -> np.ndarray:
  """Frames [N, H, W, 3] from a list of image objects, or from one object with shape [N, H, W, 3]."""
  value = require(body, name)
  if isinstance(value, dict):
    out = _array(f"{name}.data", f"{name}.shape", f"{name}.dtype", require_in(value, "data", name),
                 require_in(value, "shape", name), value.get("dtype", "uint8"), limits, batched=True)
  elif isinstance(value, list):
    if not value:
      raise RequestError(f"field '{name}': expected at least one image, got an empty list")
    frames = []
    for i, item in enumerate(value):
      if not isinstance(item, dict):
        raise RequestError(f"field '{name}[{i}]': expected an object {{data, shape, dtype}}, got "
                           f"{type(item).__name__}")
      f = f"{name}[{i}]"
      frames.append(_array(f"{f}.data", f"{f}.shape", f"{f}.dtype", require_in(item, "data", f),
                           require_in(item, "shape", f), item.get("dtype", "uint8"), limits, batched=False))
    if len({fr.shape for fr in frames}) > 1:
      raise RequestError(f"field '{name}': expected frames of one shape, got {sorted({fr.shape for fr in frames})}")
    out = np.stack(frames)
  else:
    raise RequestError(f"field '{name}': expected a list of image objects or one batched image object, got "
                       f"{type(value).__name__}")
  if len(out) > limits.max_pairs:
    raise RequestError(f"field '{name}': expected at most {limits.max_pairs} frames per request, got {len(out)}", 413)
  return out


def instruction(field: str, value: Any, limits: Limits) -> str:
  if not isinstance(value, str):
    raise RequestError(f"field '{field}': expected a string, got {type(value).__name__}")
  text = " ".join(value.split())
  if not text:
    raise RequestError(f"field '{field}': expected a non-empty instruction, got {_short(value)}")
  if len(text) > limits.max_instruction_chars:
    raise RequestError(f"field '{field}': expected at most {limits.max_instruction_chars} characters, got "
                       f"{len(text)}")
  return text


def instructions(body: dict, name: str, n: int, limits: Limits) -> list:
  """A list of n instructions, or one string broadcast to n."""
  value = require(body, name)
  if isinstance(value, str):
    return [instruction(name, value, limits)] * n
  if not isinstance(value, list):
    raise RequestError(f"field '{name}': expected a string or a list of {n} strings, got {type(value).__name__}")
  if len(value) != n:
    raise RequestError(f"field '{name}': expected {n} instructions (one per image), got {len(value)}")
  return [instruction(f"{name}[{i}]", v, limits) for i, v in enumerate(value)]


def choice(body: dict, name: str, options: tuple, default: str) -> str:
  value = body.get(name, default)
  if value not in options:
    raise RequestError(f"field '{name}': expected one of {list(options)}, got {_short(value)}")
  return value
