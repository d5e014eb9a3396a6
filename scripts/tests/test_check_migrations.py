"""make lint's run of the migration check (check-migrations.py), on a copy of the catalog: no Docker engine needed.
Every disguise, on each engine, is in the integration suite (tests/test_migration_check.py)."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DROP_IN_PYTHON = """from django.db import migrations


def drop(apps, schema_editor):
    schema_editor.execute("alter table catalog_product drop updated_at")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_demo_products")]
    operations = [migrations.RunPython(drop)]
"""


def check(tree: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "scripts" / "check-migrations.py"), "--root", str(tree), "service2"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_a_drop_in_python_is_refused_by_its_effect_and_the_released_migrations_pass(tmp_path):
    shutil.copytree(ROOT / "service2", tmp_path / "service2", ignore=shutil.ignore_patterns("var", "tests", "*_cache"))
    passed = check(tmp_path)
    assert passed.returncode == 0, passed.stderr
    (tmp_path / "service2" / "catalog" / "migrations" / "0003_drop.py").write_text(DROP_IN_PYTHON)

    refused = check(tmp_path)

    assert refused.returncode == 1
    assert "catalog.0003_drop: column catalog_product.updated_at is gone (dropped or renamed)" in refused.stderr
    assert "1. expand" in refused.stderr
