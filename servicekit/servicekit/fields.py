"""Field types for every service's schemas: bounded by the columns that store them and strict about JSON types,
so what the schema promises is what the service takes, and no input reaches a database that cannot store it.

- An integer is a JSON number with no fraction, as JSON Schema's "integer" is (687 and 687.0, not true, not
  "1", not 687.5), within the range its column stores on SQLite and PostgreSQL.
- Text holds no NUL character: PostgreSQL cannot store one, so both databases refuse it alike, with a 400.
Path and query parameters arrive as text: path_id() bounds them without strictness.
"""

from typing import Annotated, Any

from ninja import Path
from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

# The largest value of a BigAutoField or BigIntegerField, on SQLite and PostgreSQL alike.
BIGINT_MAX = 2**63 - 1
NO_NUL_PATTERN = r"^[^\x00]*$"


def refuse_booleans_and_strings(value: object) -> object:
    """pydantic's lax integer takes true and "1"; its strict one refuses 687.0, which the schema allows."""
    if isinstance(value, bool | str):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


# Last in an Annotated integer, after its bounds, so the bounds reach the OpenAPI document as minimum and maximum.
IntegerOnly = BeforeValidator(refuse_booleans_and_strings)
Id = Annotated[int, Field(ge=1, le=BIGINT_MAX), IntegerOnly]


def count(minimum: int, maximum: int) -> Any:
    """Bounds of an integer: `Annotated[int, count(1, 1000), IntegerOnly]`."""
    return Field(ge=minimum, le=maximum)


def text(min_length: int, max_length: int, pattern: str = NO_NUL_PATTERN) -> Any:
    """Bounds of a string: `Annotated[StrictStr, text(1, 200)]`; a pattern of its own must refuse NUL too (as \\w
    does)."""
    return Field(min_length=min_length, max_length=max_length, pattern=pattern)


def path_id() -> Any:
    """An id in the path: text that must be an integer of an id's range."""
    return Path(..., ge=1, le=BIGINT_MAX)
