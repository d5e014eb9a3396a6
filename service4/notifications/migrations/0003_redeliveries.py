"""Counts the duplicate deliveries of an event (redeliveries), not its deliveries: a figure of 2 for an event that
arrived twice read as two notifications, when the feed held one."""

from django.db import migrations, models
from django.db.models import F


def deliveries_to_redeliveries(apps, schema_editor):
    apps.get_model("notifications", "Notification").objects.update(redeliveries=F("deliveries") - 1)


def redeliveries_to_deliveries(apps, schema_editor):
    apps.get_model("notifications", "Notification").objects.update(deliveries=F("redeliveries") + 1)


class Migration(migrations.Migration):
    accept_backward_incompatible = "released before migrations were checked (2026-12): applied everywhere"
    dependencies = [("notifications", "0002_deliveries")]

    operations = [
        migrations.AddField(
            model_name="notification", name="redeliveries", field=models.PositiveIntegerField(default=0)
        ),
        migrations.RunPython(deliveries_to_redeliveries, redeliveries_to_deliveries),
        migrations.RemoveField(model_name="notification", name="deliveries"),
    ]
