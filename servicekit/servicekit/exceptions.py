"""Errors: a service's domain refusing what was asked (DomainError), a dependency failing, and the API's own.

A service's selectors and services raise DomainError subclasses of their own and know nothing of HTTP; its API
says once which status each answers with (create_api's `statuses`). ApiError is for the API layer itself.
"""

from typing import Any


class DomainError(Exception):
    """A rule of the service refused the operation; answered as {"error": {"code", "message", "details"}}."""

    code = "refused"
    # Seconds after which the same request may succeed (the API sends Retry-After), or None.
    retry_after: int | None = None

    def __init__(self, message: str, details: Any = None):
        super().__init__(message)
        self.message = message
        self.details = details


class DependencyUnavailable(DomainError):
    """Another service could not be reached, timed out, failed, or its circuit is open (answered as 503)."""

    code = "dependency_unavailable"

    # A dependency is tried again by the next request after at most this many seconds (the breaker's trial).
    retry_after = 1

    def __init__(self, dependency: str, reason: str, retry_after: int | None = None):
        super().__init__(f"{dependency} is unavailable", {"dependency": dependency, "reason": reason})
        self.dependency = dependency
        if retry_after is not None:
            self.retry_after = max(retry_after, 1)


class ApiError(Exception):
    """An error the API layer answers itself, with its status: {"error": {"code", "message", "details"}}."""

    def __init__(self, status: int, code: str, message: str, details: Any = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}
