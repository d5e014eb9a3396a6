"""A circuit breaker per dependency whose state every worker of a replica shares (uWSGI's cache), so a replica
opens once, not once per worker. Half-open, one trial decides: a probe of the dependency's health in the
background, while every caller still fails fast, so no client's request waits for a dependency that may be stuck.

Outside uWSGI (unit tests, django-admin) the state lives in the process. No lock is held while a call runs.
"""

import logging
import threading
import time
from collections.abc import Callable

from servicekit.server import uwsgi

# uWSGI's cache that holds the state (servicekit/uwsgi.ini declares it).
CACHE = "breakers"

log = logging.getLogger(__name__)


class SharedState:
    """Small integers by key, shared by the workers of a replica; update() is atomic across them."""

    def __init__(self):
        self._values: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> int:
        if uwsgi is not None:
            value = uwsgi.cache_get(key, CACHE)
            return int(value) if value else 0
        return self._values.get(key, 0)

    def update(self, changes: dict[str, int]) -> None:
        if uwsgi is not None:
            for key, value in changes.items():
                uwsgi.cache_update(key, str(value).encode(), 0, CACHE)
        else:
            self._values.update(changes)

    def locked(self):
        return _UwsgiLock() if uwsgi is not None else self._lock

    def clear(self) -> None:
        if uwsgi is not None:
            uwsgi.cache_clear(CACHE)
        self._values.clear()


class _UwsgiLock:
    """uWSGI's user lock 0: held across every worker of the replica, for a few cache reads and writes only."""

    def __enter__(self):
        uwsgi.lock()

    def __exit__(self, *exc_info):
        uwsgi.unlock()


shared_state = SharedState()


class CircuitOpen(Exception):
    """The dependency failed fail_max times in a row: no call until reset_seconds have passed."""

    def __init__(self, retry_after: float):
        super().__init__("circuit open after repeated failures")
        self.retry_after = retry_after


class CircuitBreaker:
    """Closed: calls go through, consecutive failures are counted. fail_max of them open it for reset_seconds:
    calls fail at once (CircuitOpen). Then one trial, for at most trial_seconds: the probe, in a thread of its
    own, while every call still fails fast (or, without a probe, the next call itself). Its success closes the
    breaker, its failure opens it again."""

    def __init__(
        self,
        name: str,
        *,
        fail_max: int,
        reset_seconds: float,
        trial_seconds: float,
        probe: Callable[[], bool] | None = None,
    ):
        self.name = name
        self.failures_key, self.open_until_key = f"{name}:failures", f"{name}:open-until-ms"
        self.fail_max, self.reset_seconds, self.trial_seconds = fail_max, reset_seconds, trial_seconds
        self.probe = probe

    def before_call(self) -> None:
        """Raises CircuitOpen while the breaker is open or on trial, unless this call is the trial."""
        now = milliseconds()
        open_until = shared_state.get(self.open_until_key)
        if not open_until:
            return
        if now < open_until:
            raise CircuitOpen((open_until - now) / 1000)
        with shared_state.locked():
            if shared_state.get(self.open_until_key) != open_until:  # another call started the trial first
                raise CircuitOpen(self.trial_seconds)
            # The trial: the others fail fast for as long as it may take.
            shared_state.update({self.open_until_key: now + round(self.trial_seconds * 1000)})
        if self.probe is not None:
            threading.Thread(target=self.run_probe, name=f"probe {self.name}", daemon=True).start()
            raise CircuitOpen(self.trial_seconds)

    def run_probe(self) -> None:
        try:
            healthy = self.probe is not None and self.probe()
        except Exception:  # a probe that cannot even ask is a failed trial, not a crashed worker
            log.warning("probing %s failed", self.name, exc_info=True)
            healthy = False
        if healthy:
            self.succeeded()
        else:
            self.failed()

    def succeeded(self) -> None:
        if shared_state.get(self.failures_key) or shared_state.get(self.open_until_key):
            with shared_state.locked():
                shared_state.update({self.failures_key: 0, self.open_until_key: 0})

    def failed(self) -> None:
        with shared_state.locked():
            failures = shared_state.get(self.failures_key) + 1
            if failures >= self.fail_max or shared_state.get(self.open_until_key):
                open_until = milliseconds() + round(self.reset_seconds * 1000)
                shared_state.update({self.failures_key: 0, self.open_until_key: open_until})
            else:
                shared_state.update({self.failures_key: failures})

    @property
    def is_open(self) -> bool:
        return milliseconds() < shared_state.get(self.open_until_key)


def milliseconds() -> int:
    return round(time.time() * 1000)
