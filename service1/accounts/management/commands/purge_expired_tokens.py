"""`django-admin purge_expired_tokens`: deletes expired tokens; uWSGI runs it every ten minutes (uwsgi.ini)."""

from django.core.management.base import BaseCommand

from accounts.services import token_purge_expired


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"purged {token_purge_expired()} expired token(s)")
