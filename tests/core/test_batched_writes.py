"""The one batched-write mechanism (the Repository request log and the SREPT recorder stand on it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from smki.core.batched_writes import BatchedWriter


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.refuse = False
        self.lock = threading.Lock()

    def write(self, batch: Sequence[int]) -> bool:
        with self.lock:
            if self.refuse:
                return False
            self.batches.append(list(batch))
            return True


def wait_until(condition, seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_items_are_written_together_off_the_callers_thread_and_the_flusher_then_exits() -> None:
    sink = Sink()
    writer: BatchedWriter[int] = BatchedWriter(sink.write, name="t", flush_seconds=0.05, flush_rows=1000,
                                               max_pending=10_000)
    for n in range(50):
        writer.add(n)
    wait_until(lambda: writer.pending == 0 and sink.batches)
    assert [n for batch in sink.batches for n in batch] == list(range(50))
    wait_until(lambda: not any(t.name == "t" for t in threading.enumerate()))


def test_a_refused_write_keeps_the_oldest_items_first_within_the_bound() -> None:
    sink = Sink()
    sink.refuse = True
    writer: BatchedWriter[int] = BatchedWriter(sink.write, name="t2", flush_seconds=60, flush_rows=1000,
                                               max_pending=5)
    for n in range(4):
        writer.add(n)
    assert writer.flush() == 0 and writer.pending == 4
    writer.add(4)           # reaches the bound: the caller writes, is refused, and the newest five are kept
    writer.add(5)
    assert writer.pending == 5   # 0 and 1 were dropped, with an error in the log
    sink.refuse = False
    assert writer.flush() == 5 and writer.pending == 0
    written = [n for batch in sink.batches for n in batch]
    assert written == sorted(written) and written[-1] == 5


def test_many_threads_lose_nothing_and_write_nothing_twice() -> None:
    sink = Sink()
    writer: BatchedWriter[int] = BatchedWriter(sink.write, name="t3", flush_seconds=0.01, flush_rows=7,
                                               max_pending=50)
    threads = [threading.Thread(target=lambda k=k: [writer.add(k * 1000 + n) for n in range(300)]) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.flush()
    written = [n for batch in sink.batches for n in batch]
    assert sorted(written) == sorted(k * 1000 + n for k in range(8) for n in range(300))
