"""One account per username whatever its case: "ada" and "Ada" are one name to people. An index on the lowered
name, in the database, so two concurrent registrations cannot both pass it (Django's own User only has the
case-sensitive one). Same SQL on SQLite and PostgreSQL."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunSQL(
            sql="CREATE UNIQUE INDEX accounts_username_unique_ignoring_case ON auth_user (LOWER(username))",
            reverse_sql="DROP INDEX accounts_username_unique_ignoring_case",
        )
    ]
