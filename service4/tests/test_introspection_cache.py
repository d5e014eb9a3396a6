"""servicekit.auth's cache: a worker keeps a live token's caller for a bounded time, and no longer (tested here, in a
service that asks accounts, because servicekit's own tests run without Django)."""

from servicekit.auth import Caller, IntrospectionCache

ADA = Caller(user_id=2, username="ada", is_staff=False)
GRACE = Caller(user_id=3, username="grace", is_staff=False)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_caller_is_kept_for_its_seconds_and_then_forgotten():
    clock = Clock()
    cache = IntrospectionCache(clock)
    cache.keep("ada-token", ADA, 5)
    clock.now += 4.9
    assert cache.get("ada-token") == ADA
    clock.now += 0.2
    assert cache.get("ada-token") is None


def test_nothing_is_kept_for_no_time():
    cache = IntrospectionCache(Clock())
    cache.keep("ada-token", ADA, 0)
    cache.keep("grace-token", GRACE, -3)  # a token that expired while it was asked about
    assert cache.get("ada-token") is None and cache.get("grace-token") is None


def test_each_token_has_its_own_caller_and_the_least_recently_used_goes_first():
    cache = IntrospectionCache(Clock(), size=2)
    cache.keep("ada-token", ADA, 5)
    cache.keep("grace-token", GRACE, 5)
    assert cache.get("ada-token") == ADA  # grace's is now the least recently used
    cache.keep("third-token", ADA, 5)
    assert (cache.get("ada-token"), cache.get("grace-token"), cache.get("third-token")) == (ADA, None, ADA)


def test_the_cache_holds_digests_of_tokens_not_tokens():
    cache = IntrospectionCache(Clock())
    cache.keep("ada-token", ADA, 5)
    assert "ada-token" not in repr(list(cache._callers.keys()))
