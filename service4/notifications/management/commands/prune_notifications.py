"""`django-admin prune_notifications`: deletes notifications older than NOTIFICATION_RETENTION_DAYS; uWSGI runs it
every hour (uwsgi.ini)."""

from django.core.management.base import BaseCommand

from notifications.services import notification_prune


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"pruned {notification_prune()} notification(s)")
