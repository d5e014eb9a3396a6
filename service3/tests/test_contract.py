"""service3 keeps the contract every service of the stack keeps (health, request id, served-by, JSON errors)."""

from servicekit.testing import ServiceContract


class TestServiceContract(ServiceContract):
    pass
