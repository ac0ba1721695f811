"""The embedded serving gateway (``mlx serve``): the data plane of the ``gateway`` provider.

One ASGI process (Starlette on uvicorn) serving every endpoint whose route document the
control plane wrote into the state database (``dataplane.table``, ``docs/gateway.md``).
Modules, one job each:

* ``config``: the route document, parsed and checked (``RouteError`` names what is wrong)
* ``control``: the served snapshot and the poller that swaps it when a route moves
* ``routing``: weights, sticky hashing, mirror and payload sampling (pure functions)
* ``models`` / ``inputs``: loading a model by flavor; MLflow scoring-server input parsing
  and the checks against a version's input schema; ``integrity``: only the gated bytes load
* ``prompts`` / ``rules`` / ``params``: rendering a prompt version, its ``routing`` rules,
  what a caller may set (``allow_params``)
* ``llm``: the OpenAI-compatible upstream (httpx: timeouts, retries, ``Retry-After``, a
  bounded answer)
* ``cache``, ``pricing``, ``metrics``, ``auth``, ``records``, ``keys`` (upstream API keys)
* ``pool`` (prediction threads), ``batching`` (requests waiting for one model share a
  ``predict``), ``shadow`` + ``worker`` (shadow copies; the low-priority
  process model copies run in)
* ``http`` (answers, errors, request ids, dispatch), ``core`` (the shared steps, health,
  metrics, feedback), ``invocations`` and ``chat`` (the endpoint routes), ``streaming``
  (server-sent events passed on, replayed from the cache), ``openai_root`` (one OpenAI base
  URL: ``/v1/chat/completions``, ``/v1/models``), ``retry_advice`` (``x-should-retry``),
  ``v2`` + ``tensors`` (KServe's Open Inference Protocol), ``app`` (all of them), ``server``
  (uvicorn, graceful SIGTERM)

Nothing here is imported by ``mlx --help``: ``engine/commands/serve.py`` imports it when the
command runs.
"""
