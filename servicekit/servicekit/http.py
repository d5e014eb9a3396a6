"""Calls to another service, always through the gateway's internal listener, never to its database.

The internal listener is a unix socket in a volume only the gateway and the services mount (http+unix:// URLs),
or an address on a private network where the stack spans hosts. Every call carries this service's signed token
(servicekit.identity) and the current X-Request-ID, and has a connect and a read timeout. A call that could not
connect is retried whatever its method (nothing was sent); one that failed later, or was answered 502/503/504,
only when its method is idempotent, never a POST. Every call goes through a circuit breaker: a dependency that
keeps failing is not called again until its reset timeout passes. Whatever goes wrong surfaces as
DependencyUnavailable, which the API answers as 503.
"""

import pybreaker
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests_unixsocket import UnixAdapter
from urllib3.util.retry import Retry

from servicekit import identity
from servicekit.context import request_id_var
from servicekit.exceptions import DependencyUnavailable

# The gateway answers these when the dependency itself is down or stuck.
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


class UpstreamFailure(Exception):
    """A response that counts as a failure of the dependency (for the breaker)."""


def retrying_session() -> requests.Session:
    retry = Retry(
        total=settings.HTTP_RETRIES,
        backoff_factor=0.1,
        status_forcelist=sorted(UNAVAILABLE_STATUSES),
        # Read errors and these statuses retry idempotent methods only; urllib3 retries connect errors for any.
        allowed_methods=Retry.DEFAULT_ALLOWED_METHODS,
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=16))
    session.mount("http+unix://", UnixAdapter(max_retries=retry))
    # The Host the services' ALLOWED_HOSTS expect of a call through the gateway (a socket path is no host name).
    session.headers["Host"] = settings.GATEWAY_INTERNAL_HOST
    return session


def timeouts() -> tuple[float, float]:
    return (settings.HTTP_CONNECT_TIMEOUT, settings.HTTP_READ_TIMEOUT)


_gateway_session: requests.Session | None = None


def gateway_get(path: str) -> requests.Response:
    """A GET of the gateway's own internal resources (the services' public keys); raises DependencyUnavailable."""
    global _gateway_session
    if _gateway_session is None:
        _gateway_session = retrying_session()
    try:
        return _gateway_session.get(settings.GATEWAY_INTERNAL_URL + path, timeout=timeouts())
    except requests.RequestException as error:
        raise DependencyUnavailable("gateway", type(error).__name__) from error


class ServiceClient:
    """HTTP calls from this service to one other service (by its name in the stack)."""

    def __init__(self, service: str, *, circuit_reset_seconds: float | None = None):
        self.service = service
        self.base_url = f"{settings.GATEWAY_INTERNAL_URL}/api/{service}"
        self.session = retrying_session()
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=settings.CIRCUIT_FAIL_MAX,
            reset_timeout=circuit_reset_seconds or settings.CIRCUIT_RESET_SECONDS,
            exclude=[lambda error: not isinstance(error, (requests.RequestException, UpstreamFailure))],
            name=service,
        )

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """The dependency's response for any status but 502/503/504; raises DependencyUnavailable otherwise."""
        try:
            return self.breaker.call(self._send, method, path, **kwargs)
        except pybreaker.CircuitBreakerError:
            raise DependencyUnavailable(self.service, "circuit open after repeated failures") from None
        except (requests.RequestException, UpstreamFailure) as error:
            raise DependencyUnavailable(self.service, type(error).__name__) from error

    def _send(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {
            "X-Request-ID": request_id_var.get(),
            identity.TOKEN_HEADER: identity.service_token(self.service),
            **kwargs.pop("headers", {}),
        }
        response = self.session.request(method, self.base_url + path, headers=headers, timeout=timeouts(), **kwargs)
        if response.status_code in UNAVAILABLE_STATUSES:
            raise UpstreamFailure(f"{self.service} answered {response.status_code}")
        return response


_clients: dict[tuple[str, float | None], ServiceClient] = {}


def client_for(service: str, *, circuit_reset_seconds: float | None = None) -> ServiceClient:
    """One client per dependency (and breaker setting) per process, so its pool and breaker are shared."""
    key = (service, circuit_reset_seconds)
    if key not in _clients:
        _clients[key] = ServiceClient(service, circuit_reset_seconds=circuit_reset_seconds)
    return _clients[key]


def forget_clients() -> None:
    """Drops every client, and so every breaker's state (for tests)."""
    _clients.clear()
