"""The shadow worker: a child process of ``mlx serve`` running model shadow calls at low priority.

A shadow call to a model candidate is CPU work. Run in the gateway's own process it would take
the interpreter's lock from the requests being answered (and double the CPU each request
costs), so the candidate runs here instead, in a process the kernel schedules after everything
else (``nice 19``): when the machine is idle the shadow runs on a free core; when callers need
the CPU, shadows wait, expire and are dropped (counted), never the other way round.

Protocol (stdin → stdout), frames of ``>II`` (meta length, body length), meta JSON, body bytes:

* ``{"op": "load", "key", "flavor", "artifact"}``: load a model now (a thread; jobs go on)
* ``{"op": "keep", "keys"}``: forget every model but these (candidates no longer mirrored)
* ``{"op": "job", "id", "key", "flavor", "artifact", "timeout", "sent"}`` + the request body:
  answered ``{"id", "status", "latency_ms", "outputs" | "error"}``, or ``{"id", "skipped": why}``
  when it never ran (its model is still loading or failed to load, or it waited past its
  timeout before starting: it says nothing about the candidate)

Jobs run one at a time. One that runs past its timeout is answered 504 and the worker exits:
the thread stuck in the model cannot be stopped, so the gateway starts a fresh worker.
"""

from __future__ import annotations

import contextlib
import os
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
    def __init__(self, out: BinaryIO):
        self.out = out
        self.models: dict[str, Any] = {}
        self.failed: dict[str, str] = {}
        self.loading: set[str] = set()
        self.lock = threading.Lock()

    def reply(self, meta: dict[str, Any]) -> None:
        self.out.write(encode(meta))
        self.out.flush()

    def load(self, meta: dict[str, Any]) -> None:
        key = meta["key"]
        with self.lock:
            if key in self.models or key in self.loading or key in self.failed:
                return
            self.loading.add(key)
        threading.Thread(target=self._load, args=(meta,), daemon=True).start()

    def _load(self, meta: dict[str, Any]) -> None:
        from gateway.models import load, one_line

        key = meta["key"]
        try:
            model: Any = load(meta.get("flavor"), meta["artifact"], Path("/"))
            error = None
        except Exception as exc:
            model, error = None, one_line(exc)
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
            for key in [k for k in self.failed if k not in keys]:
                del self.failed[key]

    def job(self, meta: dict[str, Any], body: bytes) -> None:
        from gateway.inputs import InputError
        from gateway.models import ModelFailure, one_line, predict_body

        key, job_id = meta["key"], meta["id"]
        with self.lock:
            model = self.models.get(key)
            failed = self.failed.get(key)
        if model is None:
            if failed is None:
                self.load(meta)
            self.reply({"id": job_id, "skipped": f"load failed: {failed}" if failed else "loading"})
            return
        timeout = float(meta["timeout"])
        if time.monotonic() - float(meta["sent"]) > timeout:
            self.reply({"id": job_id, "skipped": "expired"})
            return
        fut: Future[Any] = Future()

        def run() -> None:
            try:
                fut.set_result(predict_body(model, body))
            except BaseException as exc:
                fut.set_exception(exc)

        started = time.perf_counter()
        threading.Thread(target=run, daemon=True).start()
        try:
            _doc, outputs = fut.result(timeout)
            answer: dict[str, Any] = {"status": 200, "outputs": outputs}
        except FutureTimeout:
            latency = (time.perf_counter() - started) * 1000.0
            self.reply(
                {
                    "id": job_id,
                    "status": 504,
                    "latency_ms": latency,
                    "error": f"shadow: the model did not answer within {timeout:g}s",
                }
            )
            os._exit(EXIT_STUCK)
        except InputError as exc:
            answer = {"status": 400, "error": f"shadow: {exc}"}
        except ModelFailure as exc:
            answer = {"status": 500, "error": f"shadow: {exc}"}
        except Exception as exc:
            answer = {"status": 500, "error": f"shadow: {one_line(exc)}"}
        answer["latency_ms"] = (time.perf_counter() - started) * 1000.0
        answer["id"] = job_id
        self.reply(answer)


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


def main() -> None:
    # the gateway decides when this process ends (it closes stdin): a SIGTERM or a Ctrl-C sent
    # to the whole process group must not kill it before the gateway has read its answers
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _lower_priority()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    worker = Worker(stdout)
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
        if meta.get("op") == "load":
            worker.load(meta)
        elif meta.get("op") == "job":
            worker.job(meta, body)
        elif meta.get("op") == "keep":
            worker.keep(set(meta.get("keys") or ()))


if __name__ == "__main__":
    main()
