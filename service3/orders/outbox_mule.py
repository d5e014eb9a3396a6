"""Entry point of service3's uWSGI mule (see service3/uwsgi.ini): its two jobs are in orders/mule.py."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from orders.mule import work_forever  # noqa: E402  (needs Django set up)

work_forever()
