from __future__ import annotations

import threading

from app.runs.request_gate import RequestGate

DEADLINE_S = 30.0


def waiting_thread(gate: RequestGate) -> tuple[threading.Thread, threading.Event]:
    """A pipeline thread at a checkpoint; the event is set once the checkpoint lets it go on."""
    went_on = threading.Event()

    def checkpoint() -> None:
        gate.wait_quiet()
        went_on.set()

    thread = threading.Thread(target=checkpoint, daemon=True)
    thread.start()
    return thread, went_on


def test_a_checkpoint_goes_on_at_once_while_no_request_is_answered() -> None:
    gate = RequestGate(max_wait_s=3600)
    gate.enter()
    gate.leave()

    _, went_on = waiting_thread(gate)

    assert went_on.wait(DEADLINE_S)


def test_a_checkpoint_waits_while_a_request_is_answered_and_goes_on_when_it_ends() -> None:
    gate = RequestGate(max_wait_s=3600)
    gate.enter()
    gate.enter()

    _, went_on = waiting_thread(gate)
    assert not went_on.wait(0.2)
    gate.leave()
    assert not went_on.wait(0.2), "one of two requests is still being answered"
    gate.leave()

    assert went_on.wait(DEADLINE_S)
    assert gate.serving == 0


def test_a_checkpoint_waits_no_longer_than_its_bound() -> None:
    gate = RequestGate(max_wait_s=0.05)
    gate.enter()  # a request that is never answered

    _, went_on = waiting_thread(gate)

    assert went_on.wait(DEADLINE_S)


def test_every_waiting_checkpoint_goes_on_when_the_last_request_ends() -> None:
    gate = RequestGate(max_wait_s=3600)
    gate.enter()
    waiters = [waiting_thread(gate) for _ in range(3)]
    assert not any(went_on.wait(0.05) for _, went_on in waiters)

    gate.leave()

    assert all(went_on.wait(DEADLINE_S) for _, went_on in waiters)
