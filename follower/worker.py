"""One native thread that runs the frames, awaited by a green thread without blocking eventlet's hub.

eventlet's ``tpool.execute`` hands each call to whichever of its 20 threads has waited longest, so consecutive
frames run on different threads, and its answer goes through a loopback TCP socket, a green thread of its own and
one more turn of the hub. `WorkerThread` keeps one thread for every call, and wakes the waiting green thread
directly through a socket pair (docs/performance.md measures both).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, TypeVar

from eventlet import hubs, patcher

T = TypeVar("T")

# The originals, should anything have monkey-patched them: a native thread, its queue, and a plain socket pair.
_queue, _socket, _threading = (patcher.original(name) for name in ("queue", "socket", "threading"))


class WorkerThread:
    """A daemon thread that runs the calls given to `run`, one at a time, in the order given."""

    def __init__(self, name: str = "follower-worker") -> None:
        self._calls = _queue.SimpleQueue()
        self._done, self._wake = _socket.socketpair()
        self._done.setblocking(False)
        self._tickets = itertools.count()
        self._outcome: tuple[int, Any, BaseException | None] = (-1, None, None)
        self._thread = _threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def run(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` on the worker thread; the calling green thread waits for it while the hub serves others.
        Re-raises what the call raised. One green thread at a time may wait here (the follower's single loop); the
        answer of a call whose waiter was interrupted is skipped."""
        ticket = next(self._tickets)
        self._calls.put((ticket, call, args))
        while True:
            hubs.trampoline(self._done, read=True)
            self._done.recv(1)
            answered, result, error = self._outcome
            if answered == ticket:
                break
        self._outcome = (-1, None, None)
        if error is not None:
            raise error
        return result

    def _work(self) -> None:
        while True:
            ticket, call, args = self._calls.get()
            try:
                self._outcome = (ticket, call(*args), None)
            except BaseException as error:  # noqa: BLE001 (handed to the waiting green thread)
                self._outcome = (ticket, None, error)
            call = args = None  # the frame goes now, not when the next one comes (a 15 MB one would stay)
            self._wake.send(b"\0")
