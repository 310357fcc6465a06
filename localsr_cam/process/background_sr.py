"""One SR call at a time off the frame thread, so that a frame can stop waiting for it.

On a shared CPU the SR of the person box is the step whose time swings most (19 ms on an
idle 2-core laptop, 25–60 ms when two other processes keep both cores busy). A frame that
waits for it past its period delays the video and makes the next captured frame drop.
With :class:`BackgroundSR` the processor starts the SR of a frame's crop here and waits
only until the frame's deadline: in time, the result is used as always; late, the frame
goes out without it (the last SR result stands in over the cells of the crop that did
not change) and the call runs on. Its result, once done, is what the next frames reuse;
no new call starts while one runs, so a slow SR lowers the rate of fresh results instead
of the frame rate.

Thread use: ``start``, ``wait``, ``take``, ``discard`` and ``close`` are called by the
processing thread only; the call runs on one worker thread. The callable must not touch
buffers the frame thread will reuse (give it copies).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K")


@dataclasses.dataclass(frozen=True)
class Finished(Generic[K, T]):
    """A finished call: the ``key`` and ``tag`` it was started with, its result, and
    how long it ran on the worker (``seconds``, wall time)."""

    key: K
    tag: Any
    result: T
    seconds: float = 0.0


class BackgroundSR(Generic[K, T]):
    """At most one call in flight; its result is taken once (see the module docstring)."""

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                           thread_name_prefix="sr")
        self._future: concurrent.futures.Future[tuple[T, float]] | None = None
        self.held_call: Callable[[], T] | None = None
        """The callable of the held call (a waiting thread may share its work)."""
        self._key: K | None = None
        self._tag: Any = None
        self.late = 0  # calls that outlived the wait of the frame that started them

    @property
    def busy(self) -> bool:
        """A call is still running."""
        return self._future is not None and not self._future.done()

    @property
    def holding(self) -> bool:
        """A call was started and its result not taken yet (running or done)."""
        return self._future is not None

    def start(self, call: Callable[[], T], key: K, tag: Any = None) -> None:
        """Run ``call`` on the worker. ``key`` and ``tag`` come back with its result.
        Raises RuntimeError when a call is still held (take or discard it first)."""
        if self._future is not None:
            raise RuntimeError("BackgroundSR: the previous call was not taken")
        self._future = self._pool.submit(_timed, call)
        self._key, self._tag, self.held_call = key, tag, call

    def wait(self, timeout_s: float | None) -> bool:
        """Wait for the held call up to ``timeout_s`` (``None``: as long as it takes);
        True when it is done. A call that is not done counts as late (once)."""
        if self._future is None:
            return False
        done, _ = concurrent.futures.wait([self._future],
                                          timeout=None if timeout_s is None
                                          else max(0.0, timeout_s))
        if not done:
            self.late += 1
        return bool(done)

    def take(self) -> Finished[K, T] | None:
        """The held call's result once it is done (then it is no longer held), else
        ``None``. The call's exception, if it raised, is raised here."""
        future = self._future
        if future is None or not future.done():
            return None
        self._future, self.held_call = None, None
        key, tag = self._key, self._tag
        self._key, self._tag = None, None
        assert key is not None
        result, seconds = future.result()
        return Finished(key, tag, result, seconds)

    def discard(self) -> None:
        """Forget the held call (a new scene, a reset); a running one finishes unseen."""
        self._future, self.held_call = None, None
        self._key, self._tag = None, None

    def close(self) -> None:
        """Wait for a running call and stop the worker thread."""
        self.discard()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _timed(call: Callable[[], T]) -> tuple[T, float]:
    """``call()`` and the seconds it took (on the worker thread)."""
    began = time.perf_counter()
    result = call()
    return result, time.perf_counter() - began
