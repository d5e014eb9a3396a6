"""`django-admin stock_report`: per product its stock and what reservations hold, and each held reservation (JSON)."""

import json

from django.core.management.base import BaseCommand

from catalog.selectors import stock_report


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, **options) -> None:
        self.stdout.write(json.dumps(stock_report()))
