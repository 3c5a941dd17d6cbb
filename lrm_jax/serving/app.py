"""The HTTP app (Starlette, served by uvicorn): the paper's reward-server routes and JSON, plus a native batched route.

Paper routes (request and response JSON as the "Large Reward Models" reward server, so its `VLMRewardClient` works
unchanged; see WORKSPACE.md "Reward server"):
  GET  /health                 -> status, model_loaded, adapters (our signals) (+ image_size, mode, max_batch)
  POST /compute_reward         image, task_description, reward_type ("progress" default, "completion",
                               "contrastive"), optional initial_image (the context frame A; default: the image
                               itself), optional goal_image (checked, not used: the model has no goal input)
                               -> success, score, response
  POST /compute_completion     image, task_description (optional initial_image) -> success, score = P(yes),
                               response, completed (score >= 0.5)
  POST /compute_comparison     image_a, image_b (+ _shape / _dtype), task_description -> success, result
                               ("ImageB" / "ImageA" / null), response, score = P(B) - P(A) (+1: B closer)
  POST /compute_rewards_batch  images [{data, shape, dtype}], task_descriptions (list or one string), reward_type
                               -> success, results [{score, response}]
The paper's scores for completion and comparison are parsed from generated text (1/0, +1/-1/0); ours are the
expectations the scorer reads from the answer distribution (same sign and range, continuous). The paper's baseline
routes (/compute_roboreward, /compute_topreward, /compute_robometer) answer 501.

Native: POST /v1/score  frames_a, frames_b (lists of image objects, or one object [N, H, W, 3] each),
instructions (list or one string), optional kinds -> success, n, progress [N], completion [N], contrastive [N].
GET /v1/stats: requests, pairs, model calls, padded pairs since start.

Errors: HTTP 4xx with {"success": false, "error": "<one line naming the field and what was expected>"} (400
malformed / missing, 413 too large, 422 wrong value); 500 only for server faults.
"""
import contextlib
import logging

from starlette import applications
from starlette import exceptions as starlette_exceptions
from starlette import requests as starlette_requests
from starlette import responses
from starlette import routing

from data_pipelines import prompts
from lrm_jax.serving import batcher as batcher_lib
from lrm_jax.serving import codec
from lrm_jax.serving import engine as engine_lib

log = logging.getLogger("lrm_jax.serving")

REWARD_TYPES = prompts.KINDS  # the paper's "progress" plus our other two signals
BASELINE_ROUTES = ("/compute_roboreward", "/compute_topreward", "/compute_robometer")


def _error(status: int, message: str) -> responses.JSONResponse:
  return responses.JSONResponse({"success": False, "error": message}, status_code=status)


async def _read_body(request: starlette_requests.Request, limit: int) -> bytes:
  declared = request.headers.get("content-length")
  if declared is not None and declared.isdigit() and int(declared) > limit:
    raise codec.RequestError(f"body: expected at most {limit} bytes, got {declared}", 413)
  chunks, size = [], 0
  async for chunk in request.stream():
    size += len(chunk)
    if size > limit:
      raise codec.RequestError(f"body: expected at most {limit} bytes, got more", 413)
    chunks.append(chunk)
  return b"".join(chunks)


def create_app(engine: engine_lib.Engine, *, max_batch: int = 64, max_wait_ms: float = 5.0,
               max_body_bytes: int = 64 << 20, limits: codec.Limits = None, description: str = "") -> applications.Starlette:
  limits = limits or codec.Limits(engine.image_size)
  state = {}

  @contextlib.asynccontextmanager
  async def lifespan(app):
    del app
    b = batcher_lib.Batcher(engine.run, max_batch, max_wait_ms)
    b.start()
    state["batcher"] = b
    yield
    await b.stop()  # uvicorn calls this after in-flight requests are answered

  def endpoint(fn):
    """JSON in, JSON out, RequestError -> 4xx, anything else -> 500 (logged); one line each."""
    async def handle(request: starlette_requests.Request):
      try:
        body = codec.parse_json(await _read_body(request, max_body_bytes))
        return responses.JSONResponse(await fn(body))
      except codec.RequestError as e:
        return _error(e.status, str(e))
      except Exception as e:  # pylint: disable=broad-except
        log.exception("internal error on %s", request.url.path)
        return _error(500, f"internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    return handle

  async def score(a, b, instructions, kinds, field):
    tokens, mask = engine.encode(instructions, field)
    return await state["batcher"].submit(engine_lib.Pairs(a, b, tokens, mask, tuple(kinds)))

  def one(body, field="task_description"):
    return [codec.instruction(field, codec.require(body, field), limits)]

  async def compute_reward(body):
    image = codec.image(body, "image", limits)
    fallback = (list(image.shape), "uint8")
    kind = codec.choice(body, "reward_type", REWARD_TYPES, prompts.PROGRESS)
    if body.get("goal_image"):
      codec.image(body, "goal_image", limits, fallback)  # checked so a bad one is reported; the model has no slot
    context = codec.image(body, "initial_image", limits, fallback) if body.get("initial_image") else image
    out = await score(context[None], image[None], one(body), (kind,), "task_description")
    return {"success": True, "score": float(out[kind][0]), "response": out[f"{kind}_response"][0]}

  async def compute_completion(body):
    image = codec.image(body, "image", limits)
    context = (codec.image(body, "initial_image", limits, (list(image.shape), "uint8"))
               if body.get("initial_image") else image)
    k = prompts.COMPLETION
    out = await score(context[None], image[None], one(body), (k,), "task_description")
    s = float(out[k][0])
    return {"success": True, "score": s, "response": out[f"{k}_response"][0], "completed": s >= 0.5}

  async def compute_comparison(body):
    a = codec.image(body, "image_a", limits)
    b = codec.image(body, "image_b", limits)
    k = prompts.CONTRASTIVE
    out = await score(a[None], b[None], one(body), (k,), "task_description")
    s = float(out[k][0])
    result = "ImageB" if s > 0 else "ImageA" if s < 0 else None
    return {"success": True, "result": result, "response": out[f"{k}_response"][0], "score": s}

  async def compute_rewards_batch(body):
    images = codec.image_list(body, "images", limits)
    instructions = codec.instructions(body, "task_descriptions", len(images), limits)
    kind = codec.choice(body, "reward_type", REWARD_TYPES, prompts.PROGRESS)
    out = await score(images, images, instructions, (kind,), "task_descriptions")
    return {"success": True, "results": [{"score": float(s), "response": r}
                                         for s, r in zip(out[kind], out[f"{kind}_response"])]}

  async def v1_score(body):
    a = codec.image_list(body, "frames_a", limits)
    b = codec.image_list(body, "frames_b", limits)
    if a.shape != b.shape:
      raise codec.RequestError(f"field 'frames_b': expected the shape of frames_a {list(a.shape)}, got "
                               f"{list(b.shape)}")
    kinds = body.get("kinds", list(engine.scorer.kinds))
    if (not isinstance(kinds, list) or not kinds
        or any(k not in engine.scorer.kinds for k in kinds)):
      raise codec.RequestError(f"field 'kinds': expected a non-empty list from {list(engine.scorer.kinds)}, got "
                               f"{kinds!r}"[:200])
    instructions = codec.instructions(body, "instructions", len(b), limits)
    out = await score(a, b, instructions, tuple(kinds), "instructions")
    return {"success": True, "n": len(b), **{k: [float(x) for x in out[k]] for k in kinds}}

  async def health(request):
    del request
    return responses.JSONResponse({
        "status": "healthy", "model_loaded": True, "adapters": list(engine.scorer.kinds),
        "image_size": engine.image_size, "mode": "text" if engine.text else "expectation",
        "max_batch": max_batch, "batch_sizes": list(engine.batch_sizes), "model": description})

  async def stats(request):
    del request
    return responses.JSONResponse(dict(engine.stats))

  async def baseline(request):
    return _error(501, f"route '{request.url.path}': the paper's baseline reward models (RoboReward, TOPReward, "
                  "Robometer) are not served by lrm_jax; use /compute_reward, /compute_completion, "
                  "/compute_comparison, /compute_rewards_batch or /v1/score")

  async def http_error(request, exc):
    return _error(exc.status_code, f"route '{request.method} {request.url.path}': {exc.detail}")

  post = lambda path, fn: routing.Route(path, endpoint(fn), methods=["POST"])
  routes = [
      routing.Route("/health", health, methods=["GET"]),
      routing.Route("/v1/stats", stats, methods=["GET"]),
      post("/compute_reward", compute_reward),
      post("/compute_completion", compute_completion),
      post("/compute_comparison", compute_comparison),
      post("/compute_rewards_batch", compute_rewards_batch),
      post("/v1/score", v1_score),
  ] + [routing.Route(p, baseline, methods=["POST"]) for p in BASELINE_ROUTES]
  return applications.Starlette(routes=routes, lifespan=lifespan,
                                exception_handlers={starlette_exceptions.HTTPException: http_error})
