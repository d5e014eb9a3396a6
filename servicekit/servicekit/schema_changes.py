"""What a migration does to the schema, read from the database and not from the migration's code: the running
release must still work on the schema a new release's migrations leave (docs/adr/0006), whatever operation made
the change (RunSQL in any spelling, RunPython, an operation of servicekit's own models, an ignore of a linter's).

A snapshot is Django's introspection of every table: its columns (type, size, nullability, database default).
Between two snapshots, what the running release cannot run against is a table or a column gone (dropped or
renamed), a column's type changed other than widened, a column made NOT NULL, or a NOT NULL column without a
database default added to a table the release writes (its inserts leave the new column out).
"""

from dataclasses import dataclass

# A type the old code's values still fit in: each type, and the wider ones it may become.
WIDER = {
    "SmallIntegerField": {"IntegerField", "BigIntegerField"},
    "PositiveSmallIntegerField": {"PositiveIntegerField", "PositiveBigIntegerField", "IntegerField", "BigIntegerField"},
    "PositiveIntegerField": {"PositiveBigIntegerField", "BigIntegerField"},
    "IntegerField": {"BigIntegerField"},
    "SmallAutoField": {"AutoField", "BigAutoField"},
    "AutoField": {"BigAutoField"},
    "CharField": {"TextField"},
}
# Django's own bookkeeping, which every migration writes.
IGNORED_TABLES = {"django_migrations"}


@dataclass(frozen=True)
class Column:
    type: str  # Django's field type for the column's database type (IntegerField, CharField, ...)
    size: int | None  # a character column's length; None when unbounded or not sized
    precision: tuple[int | None, int | None]  # a decimal's digits and decimal places
    null: bool
    has_default: bool  # a database default (db_default): what an insert that leaves the column out gets

    def describe(self) -> str:
        size = f"({self.size})" if self.size else ""
        digits = f"({self.precision[0]}, {self.precision[1]})" if self.precision[0] else ""
        return f"{self.type}{size}{digits}{'' if self.null else ' NOT NULL'}"


Schema = dict[str, dict[str, Column]]  # table → column → Column


def snapshot(connection) -> Schema:
    """Every table of the connection's database, as the database describes it."""
    introspection = connection.introspection
    schema: Schema = {}
    with connection.cursor() as cursor:
        for table in introspection.get_table_list(cursor):
            if table.type != "t" or table.name in IGNORED_TABLES:
                continue
            columns = {}
            for column in introspection.get_table_description(cursor, table.name):
                try:
                    kind = introspection.get_field_type(column.type_code, column)
                except KeyError:  # a type Django has no field for (PostgreSQL's OID, as it is)
                    kind = f"type {column.type_code}"
                columns[column.name] = Column(
                    type=kind,
                    size=column.display_size if kind in ("CharField", "SlugField") else None,
                    precision=(column.precision, column.scale) if kind == "DecimalField" else (None, None),
                    null=bool(column.null_ok),
                    has_default=column.default is not None,
                )
            schema[table.name] = columns
    return schema


def narrowed(before: Column, after: Column) -> bool:
    """The new type may reject a value the old one held (or the old code writes)."""
    if before.type != after.type:
        return after.type not in WIDER.get(before.type, set())
    if before.size != after.size:
        return before.size is None or (after.size is not None and after.size < before.size)
    if before.precision != after.precision:
        (digits_before, places_before), (digits_after, places_after) = before.precision, after.precision
        return places_after != places_before or (digits_after or 0) < (digits_before or 0)
    return False


def breaking_changes(before: Schema, after: Schema) -> list[str]:
    """What in after the release that ran on before cannot run against, a sentence each."""
    found = []
    for table, columns_before in sorted(before.items()):
        columns_after = after.get(table)
        if columns_after is None:
            found.append(f"table {table} is gone (dropped or renamed)")
            continue
        for name, column in sorted(columns_before.items()):
            new = columns_after.get(name)
            if new is None:
                found.append(f"column {table}.{name} is gone (dropped or renamed)")
            elif narrowed(column, new):
                found.append(f"column {table}.{name} changed type: {column.describe()} → {new.describe()}")
            elif column.null and not new.null:
                found.append(f"column {table}.{name} is now NOT NULL: the running release may write NULL")
        for name, new in sorted(columns_after.items()):
            if name not in columns_before and not new.null and not new.has_default:
                found.append(f"column {table}.{name} added NOT NULL without a database default: the running "
                             f"release's inserts leave it out")  # fmt: skip
    return found
