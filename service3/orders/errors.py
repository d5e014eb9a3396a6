"""What the orders service refuses; its API (orders.api) says which status each is answered with."""

from servicekit.exceptions import DomainError


class ProductNotFound(DomainError):
    """The catalog knows no such product."""

    code = "product_not_found"


class CatalogRefused(DomainError):
    """The catalog refused the reservation (no stock, say); its code and message are passed on."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"


class OrderInProgress(DomainError):
    """The order with this Idempotency-Key is still being placed, or was just refused: send it again."""

    code = "order_in_progress"
    retry_after = 1


class OrderAbandoned(DomainError):
    """The order took longer than ORDER_PENDING_SECONDS and the sweeper gave it up."""

    code = "order_abandoned"
