"""engine.py against a fake engine: passing refusals are waited out within the bound, lasting ones are not, and
a network kept by a stale endpoint is forced, or left with one line said."""

import docker
import pytest

import engine


class FakeClock:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Refusing:
    """A call the engine refuses `times` times with `message`, then answers."""

    def __init__(self, times: float, message: str):
        self.times, self.message, self.calls = times, message, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise docker.errors.APIError(self.message)
        return "done"


FREEZER = "Cannot pause container: OCI runtime pause failed: unable to freeze: unknown"
STALE = "error while removing network: network microstack-bench-1_backend id 4f2a has active endpoints"


def test_a_passing_refusal_is_asked_again_until_the_engine_answers():
    clock, call = FakeClock(), Refusing(3, FREEZER)
    assert engine.patiently(call, clock=clock, sleep=clock.sleep) == "done"
    assert call.calls == 4
    assert clock.now < engine.PATIENCE_SECONDS


def test_a_refusal_that_lasts_is_raised_once_the_bound_has_passed():
    clock, call = FakeClock(), Refusing(float("inf"), FREEZER)
    with pytest.raises(docker.errors.APIError, match="unable to freeze"):
        engine.patiently(call, within=10, clock=clock, sleep=clock.sleep)
    assert 5 < clock.now <= 10
    assert call.calls > 3


def test_any_other_refusal_is_raised_at_once():
    clock, call = FakeClock(), Refusing(1, "invalid reference format")
    with pytest.raises(docker.errors.APIError):
        engine.patiently(call, clock=clock, sleep=clock.sleep)
    assert call.calls == 1 and clock.slept == []


def test_a_refusal_saying_it_is_already_so_is_no_failure():
    call = Refusing(1, "No such container: microstack-service1-1")
    assert engine.patiently(call) is None
    assert call.calls == 1


def test_a_call_that_makes_something_fails_on_not_found_instead_of_passing_for_done():
    """`compose up` or `stack deploy` failing on a missing image is a failure, not an object already removed."""
    call = Refusing(1, "pull access denied: microstack-service1 not found")
    with pytest.raises(docker.errors.APIError, match="not found"):
        engine.patiently(call, already_so=None)


def test_a_failed_command_is_judged_by_what_it_said_too():
    """The CLI's failures reach the tools as their own errors (project.ToolError), not the SDK's."""
    attempts = iter([RuntimeError("`docker volume rm x` failed: volume is in use - [4f2a]"), None])

    def remove_volume():
        error = next(attempts)
        if error:
            raise error
        return "removed"

    clock = FakeClock()
    assert engine.patiently(remove_volume, clock=clock, sleep=clock.sleep) == "removed"


class FakeNetwork:
    def __init__(self, engine_state: "FakeEngine", name: str):
        self.engine, self.name = engine_state, name
        self.attrs: dict = {"Containers": {}}

    def reload(self) -> None:
        self.attrs = {"Containers": {eid: {"Name": name} for eid, name in self.engine.listed.items()}}

    def remove(self) -> None:
        self.engine.removals += 1
        if self.engine.stale_for_good or self.engine.endpoints:
            raise docker.errors.APIError(STALE)
        self.engine.removed = True


class FakeEngine:
    """One network whose endpoints outlived their containers: each goes when disconnected by force by its
    container's name; with stale_for_good, one the engine never lets go (only its restart would)."""

    def __init__(self, endpoints: set[str], listed: dict[str, str] | None = None, stale_for_good: bool = False):
        self.endpoints, self.listed, self.stale_for_good = set(endpoints), listed or {}, stale_for_good
        self.removals, self.removed = 0, False
        self.forced: list[str] = []
        self.networks = self
        self.api = self

    def get(self, name: str) -> FakeNetwork:
        if self.removed:
            raise docker.errors.NotFound(f"network {name} not found")
        return FakeNetwork(self, name)

    def disconnect_container_from_network(self, container: str, network: str, force: bool = False) -> None:
        assert force
        self.forced.append(container)
        if container not in self.endpoints:
            raise docker.errors.APIError(f"container {container} is not connected to network {network}")
        self.endpoints.discard(container)


def test_a_stale_endpoint_is_disconnected_by_force_by_its_containers_name_and_the_network_removed():
    fake = FakeEngine(endpoints={"bench-nginx-1"})
    assert engine.remove_network(fake, "bench_backend", endpoints=["bench-service1-1", "bench-nginx-1"])
    assert fake.removed
    assert fake.forced == ["bench-service1-1", "bench-nginx-1"]


def test_an_endpoint_the_network_still_lists_is_forced_too():
    fake = FakeEngine(endpoints={"gone-1"}, listed={"4f2a": "gone-1"})
    assert engine.remove_network(fake, "bench_backend")
    assert fake.forced == ["gone-1"]


def test_a_network_the_engine_keeps_for_good_is_left_with_one_line_said(capsys, monkeypatch):
    monkeypatch.setattr(engine, "patiently", lambda call, **options: _once(call))
    fake = FakeEngine(endpoints=set(), stale_for_good=True)
    assert not engine.remove_network(fake, "bench_backend", endpoints=["bench-nginx-1"])
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 1 and said[0].startswith("engine: left the network bench_backend")


def _once(call):
    """patiently without waiting: one try, a refusal that says it is already so ignored."""
    try:
        return call()
    except docker.errors.APIError as error:
        if engine.ALREADY_SO.search(str(error)):
            return None
        raise


def test_a_network_already_gone_is_removed():
    fake = FakeEngine(endpoints=set())
    fake.removed = True
    assert engine.remove_network(fake, "bench_backend")
    assert fake.removals == 0
