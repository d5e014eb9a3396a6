"""A few products so a first run has something to order (see README's walk-through)."""

from decimal import Decimal

from django.db import migrations

DEMO_PRODUCTS = [
    ("Espresso beans, 1 kg", Decimal("24.90"), 100),
    ("Ceramic mug", Decimal("9.50"), 100),
    ("Hand grinder", Decimal("59.00"), 20),
]


def add_demo_products(apps, schema_editor):
    Product = apps.get_model("catalog", "Product")
    for name, price, stock in DEMO_PRODUCTS:
        Product.objects.get_or_create(name=name, defaults={"price": price, "stock": stock})


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(add_demo_products, migrations.RunPython.noop)]
