"""`django-admin prune_outbox`: deletes outbox messages delivered more than OUTBOX_RETENTION_DAYS ago; uWSGI runs
it every hour (uwsgi.ini)."""

from django.core.management.base import BaseCommand

from orders.outbox import prune_delivered


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"pruned {prune_delivered()} delivered outbox message(s)")
