"""A gateway stand-in for the signal tests: submits numbered records through a LogWriter.

``python -m tests.inference.writer_child URL MODE``

* ``sigterm``: a long flush interval, so everything is still queued when SIGTERM arrives; the
  handler only sets a flag (as uvicorn's does) and the main loop calls ``close()``. Prints
  ``ready`` once 1,000 records are queued, and the stats as JSON after closing.
* ``sigkill``: a short flush interval; prints ``flushed N`` after each completed flush (N: the
  highest sequence number in the batch), until it is killed.
* ``atexit``: queues 500 records and returns without calling ``close()``.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict

from inference.records import InferenceRecord
from inference.store import open_log
from inference.writer import Item, LogWriter


def record(seq: int) -> InferenceRecord:
    return InferenceRecord(
        request_id=f"{seq:08d}",
        endpoint="fraud",
        variant="stable",
        status=200,
        latency_ms=1.0 + seq % 50,
        inputs={"seq": seq} if seq % 10 == 0 else None,
    )


def main(url: str, mode: str) -> None:
    store = open_log(url)
    if mode == "sigterm":
        stop = False

        def on_term(_sig: int, _frame: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, on_term)
        writer = LogWriter(store, flush_interval=3600.0, batch_size=10**6, max_pending=10**6)
        seq = 0
        while not stop:
            writer.submit(record(seq))
            seq += 1
            if seq == 1000:
                print("ready", flush=True)
            if seq % 100 == 0:
                time.sleep(0.001)
        queued = writer.stats()
        ok = writer.close(timeout=60)
        after = writer.stats()
        print(json.dumps({"queued": asdict(queued), "closed": asdict(after), "ok": ok}), flush=True)
    elif mode == "sigkill":

        def on_flush(batch: Sequence[Item]) -> None:
            top = max(int(i.request_id) for i in batch)
            sys.stdout.write(f"flushed {top}\n")
            sys.stdout.flush()

        writer = LogWriter(store, flush_interval=0.05, batch_size=200, on_flush=on_flush)
        seq = 0
        while True:
            writer.submit(record(seq))
            seq += 1
            if seq % 20 == 0:
                time.sleep(0.001)
    elif mode == "atexit":
        writer = LogWriter(store, flush_interval=3600.0, batch_size=10**6)
        for seq in range(500):
            writer.submit(record(seq))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
