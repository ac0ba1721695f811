"""The shadow worker: a child process of ``mlx serve`` running model shadow calls at low priority.

A shadow call to a model candidate is CPU work. Run in the gateway's own process it would take
the interpreter's lock from the requests being answered (and double the CPU each request
costs), so the candidate runs here instead, in a process the kernel schedules after everything
else (``SCHED_IDLE``, else ``nice 19``): when the machine is idle the shadow runs on a free
core; when callers need the CPU, shadows wait, expire and are dropped (counted), never the
other way round.

It costs the gateway as little as it can: the jobs waiting when the worker gets the CPU run
as one ``predict`` per model (``gateway.batching.predict_all``), and the worker writes each
shadow call's inference-log record itself (``--log URL``, the gateway's log), so the gateway
only reads a short answer for its metrics. Started without ``--log`` (or when that log cannot
be opened) it sends the outputs back for the gateway to log instead.

Protocol (stdin → stdout), frames of ``>II`` (meta length, body length), meta JSON, body bytes:

* ``{"op": "load", "key", "flavor", "artifact", "digest", "input_schema"}``: load a model
  now (a thread; jobs go on) — from bytes that hash to ``digest`` only, as the gateway does
  (``gateway.models.load``): a candidate whose artifact was swapped is never unpickled here
* ``{"op": "keep", "keys"}``: forget every model but these (candidates no longer mirrored)
* ``{"op": "job", "id", "key", "timeout", "sent", "record", "keep"}`` +
  the request body (JSON; ``record``: the log record's fields the gateway knows; ``keep``:
  whether the request's payloads are sampled): answered ``{"id", "status", "latency_ms",
  "error"?, "logged": true}`` (or with ``"outputs"`` and no ``logged``) — status 400 for a
  request the model's schema refuses, 500 for the model's own failure — or ``{"id",
  "skipped": why}``
  when it never ran (its model is still loading or failed to load, or it waited past its
  timeout before starting: it says nothing about the candidate)
* at the end of its input it writes every record still queued and answers
  ``{"op": "closed", "written", "lost"}`` before it exits

A batch that runs past its timeout is answered 504 and the worker exits: the thread stuck in
the model cannot be stopped, so the gateway starts a fresh worker.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import struct
import sys
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, BinaryIO

import orjson

HEADER = struct.Struct(">II")
EXIT_STUCK = 75
MAX_BATCH = 64  # jobs taken from the queue at once
#: how long the worker's log writer may retry its last records at the end (a database down);
#: the gateway waits that long, and a little more, for the worker to exit
LOG_CLOSE_S = 30.0


def encode(meta: dict[str, Any], body: bytes = b"") -> bytes:
    blob = orjson.dumps(meta, option=orjson.OPT_SERIALIZE_NUMPY)
    return HEADER.pack(len(blob), len(body)) + blob + body


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


class Worker:
    def __init__(self, out: BinaryIO, writer: Any = None):
        self.out = out
        self.writer = writer  # inference.writer.LogWriter, or None: the gateway logs
        self.models: dict[str, Any] = {}
        self.known: dict[str, dict[str, Any]] = {}  # what each key loads (its "load" op)
        self.failed: dict[str, str] = {}
        self.loading: set[str] = set()
        self.lock = threading.Lock()
        #: the predict thread's work: the main thread waits with a timeout, so a model that
        #: hangs is noticed (the thread itself cannot be stopped: the worker exits)
        self._calls: queue.SimpleQueue[tuple[Future[Any], Any, list[bytes]]] = queue.SimpleQueue()
        threading.Thread(target=self._predict, name="shadow-predict", daemon=True).start()

    def _predict(self) -> None:
        while True:
            fut, model, bodies = self._calls.get()
            try:
                fut.set_result(_outcomes(model, bodies))
            except BaseException as exc:  # pragma: no cover - _outcomes catches per request
                fut.set_exception(exc)

    def reply_all(self, metas: list[dict[str, Any]]) -> None:
        """Answers in one write: the gateway reads them in one wake-up."""
        self.out.write(b"".join(encode(m) for m in metas))
        self.out.flush()

    def load(self, meta: dict[str, Any]) -> None:
        key = meta["key"]
        with self.lock:
            if meta.get("op") == "load":
                self.known[key] = meta
            if key in self.models or key in self.loading or key in self.failed:
                return
            self.loading.add(key)
        threading.Thread(target=self._load, args=(meta,), daemon=True).start()

    def _load(self, meta: dict[str, Any]) -> None:
        from gateway.models import LoadError, load, one_line

        key = meta["key"]
        try:
            model: Any = load(
                meta.get("flavor"),
                meta["artifact"],
                Path("/"),
                meta.get("digest"),
                meta.get("input_schema"),
            )
            error = None
        except Exception as exc:  # LoadError: its one line names no path
            model, error = None, str(exc) if isinstance(exc, LoadError) else one_line(exc)
        with self.lock:
            self.loading.discard(key)
            if model is not None:
                self.models[key] = model
            else:
                self.failed[key] = str(error)

    def keep(self, keys: set[str]) -> None:
        """Forget the models of candidates no longer mirrored."""
        with self.lock:
            for key in [k for k in self.models if k not in keys]:
                del self.models[key]
            for key in [k for k in self.known if k not in keys]:
                del self.known[key]
            for key in [k for k in self.failed if k not in keys]:
                del self.failed[key]

    # -- jobs ----------------------------------------------------------------------------
    def run(self, jobs: queue.SimpleQueue[tuple[dict[str, Any], bytes] | None]) -> None:
        """Until the end of the input: every job waiting runs in one batch per model."""
        while True:
            first = jobs.get()
            if first is None:
                return
            batch, end = [first], False
            while len(batch) < MAX_BATCH:
                try:
                    item = jobs.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    end = True
                    break
                batch.append(item)
            groups: dict[str, list[tuple[dict[str, Any], bytes]]] = {}
            for meta, body in batch:
                groups.setdefault(meta["key"], []).append((meta, body))
            for key, group in groups.items():
                self.run_group(key, group)
            if end:
                return

    def run_group(self, key: str, group: list[tuple[dict[str, Any], bytes]]) -> None:
        with self.lock:
            model = self.models.get(key)
            failed = self.failed.get(key)
        if model is None:
            if failed is None:
                self.load(self.known.get(key) or group[0][0])
            why = f"load failed: {failed}" if failed else "loading"
            self.reply_all([{"id": meta["id"], "skipped": why} for meta, _ in group])
            return
        now = time.monotonic()
        live, expired = [], []
        for meta, body in group:
            if now - float(meta["sent"]) <= float(meta["timeout"]):
                live.append((meta, body))
            else:
                expired.append({"id": meta["id"], "skipped": "expired"})
        if expired:
            self.reply_all(expired)
        if not live:
            return
        timeout = min(float(m["timeout"]) for m, _ in live)
        fut: Future[list[Any]] = Future()
        started = time.perf_counter()
        self._calls.put((fut, model, [b for _, b in live]))
        try:
            outcomes = fut.result(timeout)
        except FutureTimeout:
            error = f"shadow: the model did not answer within {timeout:g}s"
            latency = (time.perf_counter() - started) * 1000.0
            self.finish(live, [({"status": 504, "error": error}, None, None)] * len(live), latency)
            self.close()
            os._exit(EXIT_STUCK)
        self.finish(live, outcomes, (time.perf_counter() - started) * 1000.0)

    def finish(
        self,
        live: list[tuple[dict[str, Any], bytes]],
        outcomes: list[tuple[dict[str, Any], Any, Any]],
        latency: float,
    ) -> None:
        """Log each call (when the worker has the log) and answer the gateway, in one write."""
        from inference.records import SHADOW, InferenceRecord

        answers = []
        for (meta, body), (answer, doc, outputs) in zip(live, outcomes, strict=True):
            answer = {**answer, "id": meta["id"], "latency_ms": latency}
            fields = meta.get("record")
            if self.writer is not None and fields is not None:
                keep = bool(meta.get("keep"))
                if keep and doc is None:  # a call that failed still logs what it was sent
                    doc = _document(body)
                self.writer.submit(
                    InferenceRecord(
                        **fields,
                        variant=SHADOW,
                        status=answer["status"],
                        latency_ms=latency,
                        error=answer.get("error"),
                        inputs=doc if keep else None,
                        outputs=outputs if keep else None,
                    )
                )
                answer["logged"] = True
            else:
                answer["outputs"] = outputs
            answers.append(answer)
        self.reply_all(answers)

    def close(self) -> dict[str, Any]:
        """Write every record still queued; what was written and what was lost."""
        if self.writer is None:
            return {"op": "closed", "written": 0, "lost": 0}
        self.writer.close(LOG_CLOSE_S)
        stats = self.writer.stats()
        return {"op": "closed", "written": stats.written, "lost": stats.lost + stats.pending}


def _document(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _outcomes(model: Any, bodies: list[bytes]) -> list[tuple[dict[str, Any], Any, Any]]:
    """Each body's (answer, request document, outputs): batched for a model that batches."""
    from gateway.batching import predict_all
    from gateway.inputs import InputError
    from gateway.models import ModelFailure, one_line, predict_body

    if getattr(model, "batchable", False):
        results, _ = predict_all(model, bodies)
    else:
        results = []
        for body in bodies:
            try:
                results.append(predict_body(model, body))
            except Exception as exc:
                results.append(exc)
    out: list[tuple[dict[str, Any], Any, Any]] = []
    for result in results:
        if isinstance(result, InputError):
            out.append(({"status": 400, "error": f"shadow: {result}"}, None, None))
        elif isinstance(result, ModelFailure):  # the candidate's own failure: its text logged
            out.append(({"status": 500, "error": f"shadow: {result.detail}"}, None, None))
        elif isinstance(result, BaseException) or result is None:
            why = one_line(result) if result is not None else "not run"
            out.append(({"status": 500, "error": f"shadow: {why}"}, None, None))
        else:
            doc, outputs = result
            out.append(({"status": 200}, doc, outputs))
    return out


def _lower_priority() -> None:
    """SCHED_IDLE where the kernel has it (Linux): run only on a core nothing else wants, and
    give it up the moment a request arrives; else the lowest nice level."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError):
        pass
    with contextlib.suppress(OSError):  # not allowed here: run at the same priority
        os.nice(19)


def _open_writer(log_url: str | None) -> Any:
    """The gateway's inference log, for this process's own records; None if not given or it
    cannot be opened (the gateway then logs what the answers carry)."""
    if not log_url:
        return None
    try:
        from inference.store import open_log
        from inference.writer import LogWriter

        return LogWriter(open_log(log_url))
    except Exception as exc:
        print(
            f"mlx serve: shadow worker: cannot open the log ({exc}); the gateway logs",
            file=sys.stderr,
        )
        return None


def _read(stdin: BinaryIO, worker: Worker, jobs: queue.SimpleQueue[Any]) -> None:
    """The reader thread: loads and keeps at once, jobs to the queue, None at the end."""
    try:
        while True:
            head = _read_exact(stdin, HEADER.size)
            if head is None:  # the gateway closed the pipe: shut down
                return
            meta_len, body_len = HEADER.unpack(head)
            meta_blob = _read_exact(stdin, meta_len)
            body = _read_exact(stdin, body_len) if body_len else b""
            if meta_blob is None or body is None:
                return
            meta = orjson.loads(meta_blob)
            op = meta.get("op")
            if op == "load":
                worker.load(meta)
            elif op == "job":
                jobs.put((meta, body))
            elif op == "keep":
                worker.keep(set(meta.get("keys") or ()))
    finally:
        jobs.put(None)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m gateway.worker")
    parser.add_argument("--log", default=None, help="the inference log to write records to")
    args = parser.parse_args(argv)
    # the gateway decides when this process ends (it closes stdin): a SIGTERM or a Ctrl-C sent
    # to the whole process group must not kill it before the gateway has read its answers
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _lower_priority()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    worker = Worker(stdout, _open_writer(args.log))
    jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
    threading.Thread(target=_read, args=(stdin, worker, jobs), daemon=True).start()
    worker.run(jobs)
    closed = worker.close()
    with contextlib.suppress(OSError):  # the gateway is gone (killed): nobody to tell
        worker.reply_all([closed])


if __name__ == "__main__":
    main()
