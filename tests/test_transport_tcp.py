"""With SERVICE_TRANSPORT=tcp the services listen on TCP and the gateway follows: the multi-host layout."""

import uuid

import pytest

from project import GATEWAY, GATEWAY_UPSTREAMS, SERVICES, routed_replicas
from stack import Stack, variant_stack


@variant_stack
def tcp_variant(shared: Stack) -> Stack:
    return Stack(f"microstack-test-tcp-{uuid.uuid4().hex[:8]}", {"SERVICE_TRANSPORT": "tcp"})


@pytest.fixture(scope="module")
def tcp_stack(stack_pool):
    yield from stack_pool.variant(tcp_variant)


def test_every_route_answers_over_tcp(tcp_stack):
    for service in SERVICES:
        response = tcp_stack.get(f"/api/{service}/health/")
        assert response.status_code == 200
        assert response.json()["service"] == service


def test_the_gateway_routes_to_addresses_not_sockets(tcp_stack):
    upstreams = tcp_stack.container(GATEWAY).exec_run(["cat", GATEWAY_UPSTREAMS]).output.decode()
    replicas = routed_replicas(upstreams)
    assert sorted(replicas) == SERVICES
    assert all(len(addresses) == 1 and addresses[0].endswith(":3031") for addresses in replicas.values()), replicas
