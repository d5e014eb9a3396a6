"""What the catalog refuses; its API (catalog.api) says which status each is answered with."""

from servicekit.exceptions import DomainError


class ProductExists(DomainError):
    code = "product_exists"


class ProductNotFound(DomainError):
    code = "product_not_found"


class InsufficientStock(DomainError):
    code = "insufficient_stock"


class ReservationReleased(DomainError):
    """A released reservation id can never take stock again (a late retry must not)."""

    code = "reservation_released"


class ReservationConflict(DomainError):
    code = "reservation_conflict"
