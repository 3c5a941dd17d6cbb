"""Dynamic batching: concurrent requests are gathered into one model call.

Each request hands its work to `submit` and awaits the answer. One worker task takes the first waiting request, then
keeps gathering until the batch holds `max_batch` pairs or `max_wait_ms` have passed since that first request,
and runs the whole batch in one call on a single worker thread (so the event loop keeps accepting requests while the
model runs, and JAX sees one caller; the thread is also the paper's "global lock": with max_batch=1 requests are
answered strictly one at a time). A failing batch fails its own requests only.
"""
import asyncio
import concurrent.futures
import time
from typing import Callable, Sequence


class Batcher:

  def __init__(self, run: Callable[[Sequence], list], max_batch: int, max_wait_ms: float, size=len):
    if max_batch < 1:
      raise ValueError(f"max_batch: expected >= 1, got {max_batch}")
    self._run, self.max_batch, self.max_wait = run, int(max_batch), float(max_wait_ms) / 1000.0
    self._size = size
    self._queue: asyncio.Queue = asyncio.Queue()
    self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="model")
    self._task = None

  def start(self) -> None:
    self._task = asyncio.get_running_loop().create_task(self._loop())

  async def stop(self) -> None:
    """Answers what is queued, then stops (the server calls it after in-flight requests are done)."""
    await self._queue.join()
    if self._task is not None:
      self._task.cancel()
      try:
        await self._task
      except asyncio.CancelledError:
        pass
    self._pool.shutdown(wait=True)

  async def submit(self, item):
    fut = asyncio.get_running_loop().create_future()
    await self._queue.put((item, fut))
    return await fut

  async def _gather(self) -> list:
    batch = [await self._queue.get()]
    total = self._size(batch[0][0])
    deadline = time.monotonic() + self.max_wait
    while total < self.max_batch:
      try:
        nxt = self._queue.get_nowait()
      except asyncio.QueueEmpty:
        left = deadline - time.monotonic()
        if left <= 0:
          break
        try:
          nxt = await asyncio.wait_for(self._queue.get(), left)
        except asyncio.TimeoutError:
          break
      batch.append(nxt)
      total += self._size(nxt[0])
    return batch

  async def _loop(self) -> None:
    loop = asyncio.get_running_loop()
    while True:
      batch = await self._gather()
      items = [item for item, _ in batch]
      try:
        results = await loop.run_in_executor(self._pool, self._run, items)
        for (_, fut), res in zip(batch, results):
          if not fut.done():
            fut.set_result(res)
      except Exception as e:  # pylint: disable=broad-except
        for _, fut in batch:
          if not fut.done():
            fut.set_exception(e)
      finally:
        for _ in batch:
          self._queue.task_done()
