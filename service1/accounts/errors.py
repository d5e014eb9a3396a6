"""What the accounts service refuses; its API (accounts.api) says which status each is answered with."""

from servicekit.exceptions import DomainError


class UsernameTaken(DomainError):
    code = "username_taken"


class PasswordRefused(DomainError):
    """The password breaks one of the rules every password of this service meets (AUTH_PASSWORD_VALIDATORS);
    details name the field and each rule broken, as any other invalid field's do."""

    code = "validation_error"

    def __init__(self, messages: list[str]):
        details = [{"field": "password", "message": message, "type": "password_rule"} for message in messages]
        super().__init__("The request is not valid", details)


class InvalidCredentials(DomainError):
    code = "invalid_credentials"


class LoginsBusy(DomainError):
    """Every password-check slot of this replica is taken."""

    code = "busy"
    retry_after = 1
