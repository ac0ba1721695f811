"""Whether a caller should retry an upstream failure: the ``x-should-retry`` header.

The gateway retries an LLM upstream's 429/5xx itself (``gateway.llm``, ``client.retries``);
an OpenAI client then retries the gateway's 429/5xx answer again (the ``openai`` package: twice
by default), so one failure became (retries + 1) x 3 upstream calls. The ``openai`` client (and
the clients built on it: LangChain's ``ChatOpenAI``, LiteLLM) obeys ``x-should-retry: false``
before looking at the status, so the gateway says it when a retry by the caller cannot help:

* the gateway retried already (more than one attempt): a retry would multiply the calls;
* the gateway was allowed to retry (``client.retries`` > 0) and did not: its policy judged the
  failure final (a bad key, a wrong URL, an answer too large or not JSON) or no retry fitted
  in the endpoint's deadline;
* the upstream answered something other than a 429/5xx (401/403: the gateway's key; 404: a
  wrong ``base_url`` or model; 400/422: the request; a 200 that was too large or not JSON) —
  known from the upstream's own status when the failure carries it, and always for a
  caller-facing 400 (the upstream refused the request);
* a 429 the gateway gave up on keeps the upstream's ``Retry-After`` (for a caller who retries
  later by design) but is told not to retry at once.

Left without the header — the caller's client decides, as for any 5xx/429 — is only an upstream
failure a retry may fix that the gateway was configured not to retry (``client.retries: 0``):
a timeout, a 429/5xx, an unreachable upstream. The gateway's own refusals (no version loaded, an
unset upstream key, a busy limit) never pass through here: a retry may well fix those.
"""

from __future__ import annotations

#: The header the ``openai`` client obeys (``BaseClient._should_retry``).
NO_RETRY = (b"x-should-retry", b"false")


def caller_should_not_retry(
    status: int, attempts: int, retries: int, upstream_status: int | None = None
) -> bool:
    """Whether an upstream failure the caller is answered ``status`` (``UpstreamError.status``)
    after ``attempts`` calls, under a policy of ``retries`` retries, gets ``x-should-retry:
    false``. ``upstream_status``: the upstream's own last HTTP status, when the failure says it
    (None: unknown, or no answer at all — a timeout, a connection error)."""
    if attempts > 1:
        return True  # the gateway retried: the caller's retries would multiply the calls
    if upstream_status is not None and upstream_status < 500 and upstream_status != 429:
        return True  # not a 429/5xx: a key, a URL, a request or an answer no retry changes
    if status < 500 and status != 429:
        return True  # the upstream refused the request itself (400): it will again
    # allowed to retry, the gateway did not: final, or past the deadline; ``retries: 0`` leaves
    # a retryable failure's retry to the caller
    return retries > 0
