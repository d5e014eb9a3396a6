"""Django's createsuperuser, which also checks the password rules (AUTH_PASSWORD_VALIDATORS) with --noinput:
Django's own skips them there, so a staff user could get a password /register would refuse."""

import os

from django.contrib.auth import get_user_model
from django.contrib.auth.management.commands import createsuperuser
from django.core.management.base import CommandError

from accounts.errors import PasswordRefused
from accounts.services import password_check


class Command(createsuperuser.Command):
    def handle(self, *args, **options):
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        if not options["interactive"] and password is not None:
            user_model = get_user_model()
            try:
                password_check(password=password, user=user_model(username=options.get(user_model.USERNAME_FIELD)))
            except PasswordRefused as error:
                rules = "; ".join(detail["message"] for detail in error.details)
                raise CommandError(f"DJANGO_SUPERUSER_PASSWORD breaks the password rules: {rules}") from None
        return super().handle(*args, **options)
