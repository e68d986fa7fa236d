"""The server's worker thread: every call on the same native thread, the hub free meanwhile, errors re-raised."""

import threading
import time
import weakref

import eventlet
import pytest

from follower.worker import WorkerThread


def test_every_call_runs_on_one_native_thread_off_the_hub():
    worker = WorkerThread()
    threads = {worker.run(threading.get_ident) for _ in range(5)}
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert worker.run(lambda a, b: a + b, 2, 3) == 5


def test_the_hub_serves_other_green_threads_while_a_call_runs():
    worker = WorkerThread()
    ticks = []

    def tick():
        for _ in range(10):
            ticks.append(time.monotonic())
            eventlet.sleep(0.01)

    ticker = eventlet.spawn(tick)
    started = time.monotonic()
    worker.run(time.sleep, 0.2)  # blocks the worker thread, not the hub
    ticker.wait()
    assert len(ticks) == 10 and ticks[-1] - started < 0.2


def test_an_error_in_the_call_is_raised_in_the_caller_and_the_thread_goes_on():
    worker = WorkerThread()
    with pytest.raises(ZeroDivisionError):
        worker.run(lambda: 1 / 0)
    assert worker.run(lambda: "still here") == "still here"


def test_the_worker_lets_a_call_s_arguments_go_once_it_returns():
    class Frame:
        pass

    worker, frame = WorkerThread(), Frame()
    gone = weakref.ref(frame)
    worker.run(id, frame)
    del frame
    assert gone() is None  # a 15 MB frame must not stay alive until the next one


def test_a_call_whose_waiter_was_interrupted_does_not_answer_the_next_one():
    worker = WorkerThread()
    with eventlet.Timeout(0.05, False):
        worker.run(lambda: time.sleep(0.2) or "late")
    assert worker.run(lambda: "mine") == "mine"


def test_a_rejected_frame_is_not_kept_alive_by_its_error():
    from follower.config import FollowerConfig
    from follower.server import FollowerServer
    from follower.state import Pending
    from sim_bridge.protocol import ProtocolError

    class Message(dict):  # a dict that a weak reference can follow
        pass

    server = FollowerServer(lambda rgb: rgb, FollowerConfig(), {"model": "none"})
    message = Message(rgb_image=12)
    gone = weakref.ref(message)
    processed = server._process(Pending("sid", message, 0.0))
    assert isinstance(processed.error, ProtocolError) and processed.result is None
    del message, processed
    assert gone() is None  # freed at once, not when the garbage collector finds a cycle (a 15 MB frame, say)
