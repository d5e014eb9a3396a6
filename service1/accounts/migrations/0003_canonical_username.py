"""Each username's canonical form (NFKC and case folding), unique, for every existing user; it replaces the index
on LOWER(username), which SQLite applies to ASCII letters only. Names that clash in canonical form are reported
and the migration stops: merging two people's accounts is not a migration's decision."""

import unicodedata

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def canonical(username: str) -> str:
    """accounts.models.canonical_username as it was when this migration was written."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def clashes(usernames: list[str]) -> list[list[str]]:
    """The groups of usernames that share a canonical form."""
    groups: dict[str, list[str]] = {}
    for username in usernames:
        groups.setdefault(canonical(username), []).append(username)
    return [sorted(group) for group in groups.values() if len(group) > 1]


def fill(apps, schema_editor):
    user_model = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    users = list(user_model.objects.only("id", "username"))
    found = clashes([user.username for user in users])
    if found:
        named = "; ".join(", ".join(repr(name) for name in group) for group in found)
        raise RuntimeError(
            f"usernames that are one name in canonical form (NFKC, case folded): {named}. Rename all but one of "
            "each group (django-admin shell), then migrate again."
        )
    canonical_username = apps.get_model("accounts", "CanonicalUsername")
    canonical_username.objects.bulk_create(
        [canonical_username(user=user, canonical=canonical(user.username)) for user in users]
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_username_unique_ignoring_case"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="CanonicalUsername",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("canonical", models.CharField(max_length=600, unique=True)),
            ],
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.RunSQL(
            sql="DROP INDEX accounts_username_unique_ignoring_case",
            reverse_sql="CREATE UNIQUE INDEX accounts_username_unique_ignoring_case ON auth_user (LOWER(username))",
        ),
    ]
