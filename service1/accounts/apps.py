"""The accounts app: loads its login capacity in the uWSGI master, so that every worker forked from it shares it,
and connects the signal that keeps canonical usernames."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from accounts import (
            capacity,  # noqa: F401  (made here, before uWSGI forks its workers)
            signals,  # noqa: F401  (connects its receiver)
        )
