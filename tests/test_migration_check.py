"""The migration check a deploy runs in the new image (servicekit's check_migrations): it reads what a migration
does to the schema, on SQLite and on the stack's own database server, so no way of writing a drop slips past it.

Each case is one migration added to a service, put into its image as a file (a mount), checked as `make deploy`
checks it (ComposeProject.check_migrations). On main, django-migration-linter let every disguise through.
"""

import pytest

from project import ACCOUNTS, CATALOG, NOTIFICATIONS, ORDERS, SERVICES, ToolError
from stack import DATABASE

# What the check runs on: SQLite always, and the stack's database server when it has one.
VENDORS = ["sqlite", *(["postgresql"] if DATABASE == "postgres" else [])]
CATALOG_MIGRATIONS = "catalog/migrations"
SERVICEKIT_MIGRATIONS = "servicekit"  # in the image's site-packages: where_servicekit_migrations_are
HEADER = "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n"
AFTER_CATALOG = '    dependencies = [("catalog", "0002_demo_products")]\n'
AFTER_SERVICEKIT = '    dependencies = [("servicekit", "0001_initial")]\n'
GONE = "column catalog_product.updated_at is gone (dropped or renamed)"
TOKEN_GONE = "column servicekit_acceptedservicetoken.expires_at is gone (dropped or renamed)"

RUN_PYTHON = """from django.db import migrations

def drop(apps, schema_editor):
    schema_editor.execute("ALTER TABLE catalog_product DROP COLUMN updated_at")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_demo_products")]
    operations = [migrations.RunPython(drop, migrations.RunPython.noop)]
"""
IGNORED_BY_THE_LINTER = """from django.db import migrations

try:
    from django_migration_linter import IgnoreMigration
except ImportError:  # where the linter is not installed
    def IgnoreMigration():
        return migrations.RunPython(migrations.RunPython.noop)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_demo_products")]
    operations = [IgnoreMigration(), migrations.RemoveField("product", "updated_at")]
"""


def catalog(operation: str, extra: str = "") -> str:
    """A catalog migration of one operation (of django.db.migrations), after its last one."""
    return f"{HEADER}{AFTER_CATALOG}{extra}    operations = [migrations.{operation}]\n"


def remove_token_expiry() -> str:
    return (
        f'{HEADER}{AFTER_SERVICEKIT}    operations = [migrations.RemoveField("acceptedservicetoken", "expires_at")]\n'
    )


NARROWED = "column catalog_product.name changed type: CharField(200) NOT NULL → CharField(50) NOT NULL"
NOT_NULL_ADDED = "column catalog_product.sku added NOT NULL without a database default"
MADE_NOT_NULL = "column catalog_reservation.product_id is now NOT NULL"
FOREIGN_KEY = 'models.ForeignKey("catalog.product", on_delete=models.PROTECT, related_name="reservations")'
ACCEPTED = '    accept_backward_incompatible = "release 2026.12 stopped reading updated_at"\n'
IN_CATALOG = (CATALOG, CATALOG_MIGRATIONS)
SERVICEKIT_USERS = (ACCOUNTS, ORDERS, NOTIFICATIONS)

# Each case: the service, where its migration goes, the migration, what the check says of it.
REFUSED = {
    "RunPython whose function drops a column": (*IN_CATALOG, RUN_PYTHON, GONE),
    "lower-case RunSQL": (*IN_CATALOG, catalog('RunSQL("alter table catalog_product drop column updated_at")'), GONE),
    "RunSQL DROP without COLUMN": (*IN_CATALOG, catalog('RunSQL("ALTER TABLE catalog_product DROP updated_at")'), GONE),
    "the linter's IgnoreMigration behind a guarded import": (*IN_CATALOG, IGNORED_BY_THE_LINTER, GONE),
    "plain RemoveField": (*IN_CATALOG, catalog('RemoveField("product", "updated_at")'), GONE),
    "a column narrowed":
        (*IN_CATALOG, catalog('AlterField("product", "name", models.CharField(max_length=50, unique=True))'), NARROWED),
    "NOT NULL without a database default":
        (*IN_CATALOG, catalog('AddField("product", "sku", models.TextField(default="x"))'), NOT_NULL_ADDED),
    "a nullable column made NOT NULL":
        (*IN_CATALOG, catalog(f'AlterField("reservation", "product", {FOREIGN_KEY})'), MADE_NOT_NULL),
    **{f"servicekit's RemoveField of an indexed column, in {service}":
           (service, SERVICEKIT_MIGRATIONS, remove_token_expiry(), TOKEN_GONE) for service in SERVICEKIT_USERS},
}  # fmt: skip
LET_THROUGH = {
    "an added nullable column": catalog('AddField("product", "note", models.TextField(null=True))'),
    "a column widened": catalog('AlterField("product", "name", models.CharField(max_length=400, unique=True))'),
    "a column with a database default": catalog('AddField("product", "rank", models.IntegerField(db_default=0))'),
    "a drop that says why": catalog('RemoveField("product", "updated_at")', ACCEPTED),
}  # fmt: skip


@pytest.fixture(scope="module")
def servicekit_migrations(stack) -> str:
    """Where servicekit's migrations are in the images (their Python's site-packages)."""
    found = stack.container(ACCOUNTS).exec_run(
        ["python", "-c", "import servicekit.migrations as m; print(m.__path__[0])"]
    )
    assert found.exit_code == 0, found.output
    return found.output.decode().strip()


def check(stack, tmp_path, servicekit_migrations: str, service: str, folder: str, source: str) -> None:
    """The check on the service's image with source added as a new migration, as make deploy runs it."""
    migration = tmp_path / "0099_release_under_check.py"
    migration.write_text(source)
    inside = servicekit_migrations if folder == SERVICEKIT_MIGRATIONS else f"/srv/{service}/{folder}"
    stack.check_migrations(service, "test", f"{migration}:{inside}/{migration.name}")


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_migration_that_breaks_the_running_release_is_refused_however_it_is_written(
    stack, tmp_path, servicekit_migrations, case
):
    service, folder, source, said = REFUSED[case]
    with pytest.raises(ToolError) as refusal:
        check(stack, tmp_path, servicekit_migrations, service, folder, source)
    refused = str(refusal.value)
    for vendor in VENDORS:
        assert f"check_migrations: {service} (on {vendor}) has a migration the running release cannot run" in refused
    assert refused.count(f"0099_release_under_check: {said}") == len(VENDORS), refused
    assert "1. expand" in refused and "4. contract" in refused


@pytest.mark.parametrize("case", list(LET_THROUGH))
def test_a_migration_that_only_expands_or_says_why_is_let_through(stack, tmp_path, servicekit_migrations, case, capsys):
    check(stack, tmp_path, servicekit_migrations, CATALOG, CATALOG_MIGRATIONS, LET_THROUGH[case])
    printed = capsys.readouterr().out
    for vendor in VENDORS:
        assert f"test: check_migrations: {CATALOG} (on {vendor}): every migration is one" in printed, printed
    accepted = f"0099_release_under_check: {GONE}; accepted: release 2026.12 stopped reading updated_at"
    assert printed.count(accepted) == (len(VENDORS) if case == "a drop that says why" else 0), printed


@pytest.mark.parametrize("service", SERVICES)
def test_every_released_migration_passes_or_says_why_on_the_stacks_engine(stack, service, capsys):
    """make lint checks on SQLite only; the stack's engine is PostgreSQL too, where each migration's SQL differs."""
    stack.check_migrations(service, "test")
    printed = capsys.readouterr().out
    for vendor in VENDORS:
        assert f"test: check_migrations: {service} (on {vendor}): every migration is one" in printed, printed
