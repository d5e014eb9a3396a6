"""Calls to another service, always through the gateway's internal listener, never to its database.

The internal listener is a unix socket in a volume only the gateway and the services mount (http+unix:// URLs),
or an address on a private network where the stack spans hosts. Every call carries a token signed for that one
request (servicekit.identity) and the current X-Request-ID.

Every call fails fast:
- it waits at most what is left of the incoming request's time budget (the gateway's timeout), less a margin,
  and never longer than HTTP_READ_TIMEOUT; with no time left it is not made at all;
- only a connection that was refused or could not be made is tried again (nothing was sent); a read that timed
  out, or an answer of 502/503/504, is not: the dependency is slow or down, and trying again only waits longer;
- a circuit breaker per dependency, shared by every worker of the replica (servicekit.breaker), stops calling a
  dependency that keeps failing, so callers get an answer at once instead of a timeout each; a probe of the
  dependency's health, not a client's request, tells when it is back.

Whatever goes wrong surfaces as DependencyUnavailable, which the API answers as 503 with Retry-After.
"""

import math
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests_unixsocket.adapters import UnixAdapter, UnixHTTPConnectionPool
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.util.retry import Retry

from servicekit import identity
from servicekit.breaker import CircuitBreaker, CircuitOpen
from servicekit.context import request_id_var, seconds_left
from servicekit.exceptions import DependencyUnavailable
from servicekit.server import calls_at_once

# The gateway answers these when the dependency itself is down or stuck.
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})
# Of the time left to the incoming request, what a call leaves for the caller to answer with (a 503, say).
DEADLINE_MARGIN_SECONDS = 0.25
# Connections kept open to one socket or host: more than a replica's threads, so none is opened and dropped.
POOL_SIZE = 16


def fail_max() -> int:
    """Failures in a row that open a breaker: CIRCUIT_FAIL_MAX, but never more than the calls the replica can
    have in flight at once. A stuck dependency then opens it within one round of timeouts, not two: with every
    thread waiting, no call can make a fifth failure before the first four have timed out."""
    in_flight = calls_at_once()
    return min(settings.CIRCUIT_FAIL_MAX, in_flight) if in_flight else settings.CIRCUIT_FAIL_MAX


class SocketConnectionPool(UnixHTTPConnectionPool):
    """A pool of POOL_SIZE connections to one unix socket (UnixHTTPConnectionPool keeps one)."""

    def __init__(self, socket_url: str, timeout: float):
        HTTPConnectionPool.__init__(self, "localhost", timeout=timeout, maxsize=POOL_SIZE)
        self.socket_path = socket_url
        self.timeout = timeout  # type: ignore[assignment]  # a float, as UnixHTTPConnectionPool keeps it


class PooledUnixAdapter(UnixAdapter):
    """requests-unixsocket2's adapter, with one pool per socket instead of one per URL of a single connection:
    with that, threads calling one route at once each opened a connection, and urllib3 logged "Connection pool
    is full, discarding connection" for each it could not keep."""

    def get_connection(self, url, proxies=None):
        if proxies and proxies.get("http+unix"):
            raise ValueError("a unix socket is not reached through a proxy")
        socket_url = urlsplit(url)._replace(path="", query="", fragment="").geturl()
        with self.pools.lock:
            pool = self.pools.get(socket_url)
            if pool is None:
                pool = self.pools[socket_url] = SocketConnectionPool(socket_url, self.timeout)
        return pool


class UpstreamFailure(Exception):
    """A response that counts as a failure of the dependency (for the breaker)."""


def connect_retrying_session() -> requests.Session:
    """A session that tries a connection again when it could not be made, and nothing else."""
    retry = Retry(
        total=settings.HTTP_RETRIES,
        connect=settings.HTTP_RETRIES,
        read=0,
        status=0,
        other=0,
        backoff_factor=0.05,
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=POOL_SIZE))
    session.mount("http+unix://", PooledUnixAdapter(max_retries=retry))
    # The Host the services' ALLOWED_HOSTS expect of a call through the gateway (a socket path is no host name).
    session.headers["Host"] = settings.GATEWAY_INTERNAL_HOST
    return session


def timeouts() -> tuple[float, float]:
    """Connect and read timeouts for a call made now (HTTP_READ_TIMEOUT at most); raises NoTimeLeft when the
    incoming request has none left."""
    read = settings.HTTP_READ_TIMEOUT
    left = seconds_left()
    if left is not None:
        read = min(read, left - DEADLINE_MARGIN_SECONDS)
        if read <= 0:
            raise NoTimeLeft()
    return (min(settings.HTTP_CONNECT_TIMEOUT, read), read)


class NoTimeLeft(Exception):
    """The incoming request's budget is spent: its caller has stopped waiting."""


_gateway_session: requests.Session | None = None


def gateway_get(path: str) -> requests.Response:
    """A GET of the gateway's own internal resources (the services' public keys); raises DependencyUnavailable."""
    global _gateway_session
    if _gateway_session is None:
        _gateway_session = connect_retrying_session()
    try:
        return _gateway_session.get(settings.GATEWAY_INTERNAL_URL + path, timeout=timeouts())
    except (requests.RequestException, NoTimeLeft) as error:
        raise DependencyUnavailable("gateway", type(error).__name__) from error


class ServiceClient:
    """HTTP calls from this service to one other service (by its name in the stack)."""

    def __init__(self, service: str, *, circuit_reset_seconds: float | None = None):
        self.service = service
        self.base_url = f"{settings.GATEWAY_INTERNAL_URL}/api/{service}"
        self.session = connect_retrying_session()
        reset_seconds = circuit_reset_seconds or settings.CIRCUIT_RESET_SECONDS
        self.breaker = CircuitBreaker(
            f"{service}/{reset_seconds}",  # a client with other breaker settings keeps a state of its own
            fail_max=fail_max(),
            reset_seconds=reset_seconds,
            trial_seconds=settings.HTTP_CONNECT_TIMEOUT + settings.HTTP_READ_TIMEOUT,
            probe=self.is_healthy,
        )

    def is_healthy(self) -> bool:
        """The dependency answers its health check: the breaker's trial, made by no client's request."""
        try:
            timeout = (settings.HTTP_CONNECT_TIMEOUT, settings.HTTP_READ_TIMEOUT)
            response = self.session.get(f"{self.base_url}/health", timeout=timeout)
        except requests.RequestException:
            return False
        return response.status_code == 200

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """The dependency's response for any status but 502/503/504; raises DependencyUnavailable otherwise."""
        try:
            timeout = timeouts()
            self.breaker.before_call()
        except CircuitOpen as error:
            raise DependencyUnavailable(self.service, str(error), retry_after=math.ceil(error.retry_after)) from None
        except NoTimeLeft:
            raise DependencyUnavailable(self.service, "no time left of the request's budget") from None
        try:
            response = self._send(method, path, timeout, **kwargs)
        except (requests.RequestException, UpstreamFailure) as error:
            self.breaker.failed()
            raise DependencyUnavailable(self.service, type(error).__name__) from error
        self.breaker.succeeded()
        return response

    def _send(self, method: str, path: str, timeout: tuple[float, float], **kwargs) -> requests.Response:
        headers = {"X-Request-ID": request_id_var.get(), **kwargs.pop("headers", {})}
        prepared = self.session.prepare_request(
            requests.Request(method, self.base_url + path, headers=headers, **kwargs)
        )
        url = urlsplit(str(prepared.url))
        bound_path = url.path + (f"?{url.query}" if url.query else "")
        if not isinstance(prepared.body, bytes | str | None):  # the token signs the body's digest: it is sent whole
            raise TypeError("a call to another service sends its body whole, not streamed")
        prepared.headers[identity.TOKEN_HEADER] = identity.service_token(
            self.service, method, bound_path, prepared.body
        )
        response = self.session.send(prepared, timeout=timeout)
        if response.status_code in UNAVAILABLE_STATUSES:
            raise UpstreamFailure(f"{self.service} answered {response.status_code}")
        return response


_clients: dict[tuple[str, float | None], ServiceClient] = {}


def client_for(service: str, *, circuit_reset_seconds: float | None = None) -> ServiceClient:
    """One client per dependency (and breaker setting) per process, so its connection pool is shared."""
    key = (service, circuit_reset_seconds)
    if key not in _clients:
        _clients[key] = ServiceClient(service, circuit_reset_seconds=circuit_reset_seconds)
    return _clients[key]


def forget_clients() -> None:
    """Drops every client and every breaker's state (for tests)."""
    from servicekit.breaker import shared_state

    _clients.clear()
    shared_state.clear()
