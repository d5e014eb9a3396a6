"""What the migration check calls breaking, between two snapshots of a schema (the databases' part runs in the
integration suite: tests/test_migration_check.py)."""

import pytest

from servicekit.schema_changes import Column, breaking_changes, narrowed


def column(type: str = "CharField", size: int | None = 200, null: bool = False, default: bool = False, **kw) -> Column:
    return Column(type=type, size=size, precision=kw.get("precision", (None, None)), null=null, has_default=default)


BEFORE = {"catalog_product": {"id": column("AutoField", None), "name": column(), "note": column(null=True)}}


@pytest.mark.parametrize(
    ("after", "said"),
    [
        ({}, "table catalog_product is gone (dropped or renamed)"),
        ({"catalog_product": {"id": column("AutoField", None), "note": column(null=True)}},
         "column catalog_product.name is gone (dropped or renamed)"),
        ({"catalog_product": {**BEFORE["catalog_product"], "name": column(size=50)}},
         "column catalog_product.name changed type: CharField(200) NOT NULL → CharField(50) NOT NULL"),
        ({"catalog_product": {**BEFORE["catalog_product"], "note": column()}},
         "column catalog_product.note is now NOT NULL: the running release may write NULL"),
        ({"catalog_product": {**BEFORE["catalog_product"], "sku": column()}},
         "column catalog_product.sku added NOT NULL without a database default: the running release's inserts "
         "leave it out"),
    ],
)  # fmt: skip
def test_what_the_running_release_cannot_run_against_is_named(after, said):
    assert breaking_changes(BEFORE, after) == [said]


@pytest.mark.parametrize(
    "after",
    [
        {**BEFORE, "catalog_review": {"id": column("AutoField", None), "text": column("TextField", None)}},
        {"catalog_product": {**BEFORE["catalog_product"], "sku": column(null=True)}},
        {"catalog_product": {**BEFORE["catalog_product"], "rank": column("IntegerField", None, default=True)}},
        {"catalog_product": {**BEFORE["catalog_product"], "name": column("TextField", None)}},
        {"catalog_product": {**BEFORE["catalog_product"], "name": column(size=400)}},
        {"catalog_product": {**BEFORE["catalog_product"], "name": column(null=True)}},
    ],
    ids=["a new table", "a nullable column", "a column with a database default", "to text", "longer", "nullable"],
)
def test_an_expansion_is_not(after):
    assert breaking_changes(BEFORE, after) == []


@pytest.mark.parametrize(
    ("before", "after", "narrower"),
    [
        (column("IntegerField", None), column("BigIntegerField", None), False),
        (column("BigIntegerField", None), column("IntegerField", None), True),
        (column("TextField", None), column("CharField", 200), True),
        (column("DecimalField", None, precision=(10, 2)), column("DecimalField", None, precision=(12, 2)), False),
        (column("DecimalField", None, precision=(10, 2)), column("DecimalField", None, precision=(12, 3)), True),
        (column("DateTimeField", None), column("DateField", None), True),
    ],
)
def test_a_type_is_narrowed_unless_every_old_value_still_fits(before, after, narrower):
    assert narrowed(before, after) is narrower
