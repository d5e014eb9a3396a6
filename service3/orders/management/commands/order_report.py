"""`django-admin order_report`: every order that holds stock (pending or placed) with its product and quantity (JSON).

Checked against the catalog's `stock_report`: each reservation the catalog holds belongs to one of these.
"""

import json

from django.core.management.base import BaseCommand

from orders.models import Order


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, **options) -> None:
        holding = Order.objects.filter(status__in=[Order.Status.PENDING, Order.Status.PLACED])
        orders = {
            str(order.id): {"product_id": order.product_id, "quantity": order.quantity, "status": order.status}
            for order in holding
        }
        self.stdout.write(json.dumps({"orders": orders}))
