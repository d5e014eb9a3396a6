"""The circuit breaker: opens after repeated failures, fails fast while open, lets one trial through at a time."""

import threading

import pytest

from servicekit import breaker
from servicekit.breaker import CircuitBreaker, CircuitOpen


@pytest.fixture
def clock(monkeypatch):
    """The breaker's clock in milliseconds, moved by the test."""
    now = {"ms": 1_000_000}
    monkeypatch.setattr(breaker, "milliseconds", lambda: now["ms"])
    breaker.shared_state.clear()
    yield now
    breaker.shared_state.clear()


def new_breaker(name="accounts"):
    return CircuitBreaker(name, fail_max=3, reset_seconds=5, trial_seconds=2)


def fail(times: int, circuit: CircuitBreaker) -> None:
    for _ in range(times):
        circuit.before_call()
        circuit.failed()


def on_trial(clock) -> CircuitBreaker:
    """A breaker that opened, reset_seconds ago: the call it lets through next is the trial."""
    circuit = new_breaker()
    fail(3, circuit)
    clock["ms"] += 5_000
    return circuit


def test_it_opens_after_fail_max_failures_in_a_row_and_then_fails_fast(clock):
    circuit = new_breaker()
    fail(2, circuit)
    circuit.before_call()  # still closed
    circuit.failed()
    with pytest.raises(CircuitOpen) as refused:
        circuit.before_call()
    assert refused.value.retry_after == 5


def test_a_success_between_failures_starts_the_count_again(clock):
    circuit = new_breaker()
    fail(2, circuit)
    circuit.succeeded()
    fail(2, circuit)
    circuit.before_call()


def test_every_client_of_the_dependency_in_the_replica_sees_it_open(clock):
    fail(3, new_breaker())
    with pytest.raises(CircuitOpen):
        new_breaker().before_call()  # another worker's breaker: the state is shared
    new_breaker("another dependency").before_call()


def test_after_the_reset_time_one_call_is_the_trial_and_the_others_still_fail_fast(clock):
    circuit = on_trial(clock)
    circuit.before_call()  # the trial
    with pytest.raises(CircuitOpen) as refused:
        circuit.before_call()
    assert refused.value.retry_after == 2


def test_a_trial_that_succeeds_closes_it(clock):
    circuit = on_trial(clock)
    circuit.before_call()
    circuit.succeeded()
    circuit.before_call()
    circuit.before_call()
    assert not circuit.is_open


def test_a_trial_that_fails_opens_it_for_another_reset_time(clock):
    circuit = on_trial(clock)
    circuit.before_call()
    circuit.failed()
    clock["ms"] += 4_000
    with pytest.raises(CircuitOpen):
        circuit.before_call()
    clock["ms"] += 1_000
    circuit.before_call()


def probed(clock, healthy: bool | Exception):
    """A breaker on trial whose probe answers healthy (or raises it) once the test lets it."""
    answer = threading.Event()

    def probe() -> bool:
        answer.wait(5)
        if isinstance(healthy, Exception):
            raise healthy
        return healthy

    circuit = CircuitBreaker("probed", fail_max=3, reset_seconds=5, trial_seconds=2, probe=probe)
    fail(3, circuit)
    clock["ms"] += 5_000
    return circuit, answer


def trial_ends() -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("probe "):
            thread.join(5)


def test_with_a_probe_no_caller_is_the_trial_every_one_fails_fast_while_it_runs(clock):
    circuit, answer = probed(clock, healthy=True)
    for _ in range(3):
        with pytest.raises(CircuitOpen):
            circuit.before_call()
    answer.set()
    trial_ends()
    circuit.before_call()  # closed by the probe
    assert not circuit.is_open


@pytest.mark.parametrize("healthy", [False, ConnectionError("refused")], ids=["unhealthy", "probe-raised"])
def test_a_probe_that_finds_it_unhealthy_opens_it_again(clock, healthy):
    circuit, answer = probed(clock, healthy)
    with pytest.raises(CircuitOpen):
        circuit.before_call()
    answer.set()
    trial_ends()
    with pytest.raises(CircuitOpen) as refused:
        circuit.before_call()
    assert refused.value.retry_after == 5
