"""What the accounts service refuses; its API (accounts.api) says which status each is answered with."""

from servicekit.exceptions import DomainError


class UsernameTaken(DomainError):
    code = "username_taken"


class InvalidCredentials(DomainError):
    code = "invalid_credentials"


class LoginsBusy(DomainError):
    """Every password-check slot of this replica is taken."""

    code = "busy"
    retry_after = 1
