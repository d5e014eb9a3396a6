"""The contract every service keeps, collected into each service's unit tests by its pytest.ini (testpaths)."""

from servicekit_testing import ServiceContract


class TestServiceContract(ServiceContract):
    pass
