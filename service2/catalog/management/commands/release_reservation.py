"""`django-admin release_reservation ID [ID ...]`: gives each reservation's stock back, once, as the orders service's
release does; for an operator reconciling the catalog with a restored orders database (`make reconcile`)."""

import uuid

from django.core.management.base import BaseCommand, CommandError

from catalog import services


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        parser.add_argument("reservation_ids", nargs="+", metavar="ID")

    def handle(self, *args, **options) -> None:
        try:
            ids = [uuid.UUID(text) for text in options["reservation_ids"]]
        except ValueError as error:
            raise CommandError(f"not a reservation id: {error}") from error
        for reservation_id in ids:
            services.reservation_release(reservation_id=reservation_id)
        self.stdout.write(f"released {len(ids)} reservation(s)")
