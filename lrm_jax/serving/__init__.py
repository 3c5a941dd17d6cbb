"""Serving the reward model over HTTP: a drop-in for the paper's reward-server API, with dynamic batching.

`engine` (padded pre-compiled batches), `batcher` (gathers concurrent requests), `codec` (request validation),
`app` (routes), `server` (uvicorn on a bound socket, graceful SIGTERM), `client` (Python client, the paper's request
bodies). The job `lrm_jax/jobs/serve.py` loads a model and runs it.
"""
