"""Entry point of service3's uWSGI mule (see service3/uwsgi.ini): delivers the outbox for as long as it runs."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from orders.outbox import deliver_forever  # noqa: E402  (needs Django set up)

deliver_forever()
