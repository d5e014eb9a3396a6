"""Errors a service raises to answer with the stack's error shape, and the one for a failing dependency."""

from typing import Any


class ApiError(Exception):
    """Answered as {"error": {"code", "message", "details"}} with the given status."""

    def __init__(self, status: int, code: str, message: str, details: Any = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


class DependencyUnavailable(ApiError):
    """Another service could not be reached, timed out, failed, or its circuit is open: answered as 503."""

    def __init__(self, dependency: str, reason: str):
        super().__init__(
            503,
            "dependency_unavailable",
            f"{dependency} is unavailable",
            {"dependency": dependency, "reason": reason},
        )
        self.dependency = dependency
