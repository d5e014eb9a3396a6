"""The notifications API: events land in their user's feed exactly once, whatever the redeliveries."""

import uuid

import pytest

from notifications.models import Notification
from servicekit import auth
from servicekit_testing import ADA, GRACE, TEST_USERS, internal_call

PREFIX = "/api/service4"
FEED = f"{PREFIX}/feed"
ADA_ID = TEST_USERS["ada-token"]["id"]
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("accounts")]


def deliver(client, event_id, body):
    return internal_call(client, "service3", "PUT", f"{PREFIX}/internal/events/{event_id}", body)


def order_placed(user_id=ADA_ID, **data):
    return {
        "type": "order.placed",
        "user_id": user_id,
        "occurred_at": "2026-01-01T12:00:00Z",
        "data": {"order_id": "o-1", "product_id": 3, "quantity": 2, **data},
    }


def test_an_event_appears_in_its_user_feed(client):
    event_id = uuid.uuid4()
    assert deliver(client, event_id, order_placed()).status_code == 201
    feed = client.get(PREFIX + "/feed", headers=ADA).json()
    assert [item["event_id"] for item in feed] == [str(event_id)]
    assert feed[0]["message"] == "Your order of 2 x product 3 is placed."


def test_the_message_names_the_product_as_it_was_named_at_order_time(client):
    assert deliver(client, uuid.uuid4(), order_placed(product_name="Ceramic mug")).status_code == 201
    (item,) = client.get(PREFIX + "/feed", headers=ADA).json()
    assert item["message"] == "Your order of 2 x Ceramic mug is placed."


def test_a_redelivered_event_is_stored_once(client):
    event_id = uuid.uuid4()
    assert deliver(client, event_id, order_placed()).status_code == 201
    assert deliver(client, event_id, order_placed()).status_code == 200
    assert Notification.objects.count() == 1


def test_feeds_are_private(client):
    deliver(client, uuid.uuid4(), order_placed(user_id=ADA_ID))
    assert client.get(PREFIX + "/feed", headers=GRACE).json() == []


def test_the_feed_needs_a_token(client):
    assert client.get(PREFIX + "/feed").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {},
        {**order_placed(), "user_id": "ada"},
        {**order_placed(), "occurred_at": "yesterday"},
        {**order_placed(), "data": "not an object"},
        {**order_placed(), "type": ""},
    ],
)
def test_invalid_events_are_400_and_store_nothing(client, body):
    response = deliver(client, uuid.uuid4(), body)
    assert response.status_code == 400
    assert not Notification.objects.exists()


def test_an_event_id_that_is_not_a_uuid_is_a_400_on_that_field(client):
    response = deliver(client, "not-a-uuid", order_placed())
    assert response.status_code == 400
    assert [detail["field"] for detail in response.json()["error"]["details"]] == ["path.event_id"]
    assert not Notification.objects.exists()


@pytest.mark.parametrize("event_type", ["{a.b}", "order.shipped", "", "{0}"])
def test_an_event_of_an_unknown_type_is_400_and_stores_nothing(client, event_type):
    response = deliver(client, uuid.uuid4(), {**order_placed(), "type": event_type})
    assert response.status_code == 400
    assert Notification.objects.count() == 0


def test_a_stored_event_with_odd_data_still_renders_in_the_feed(client):
    odd = {"quantity": {"nested": 1}, "product_id": "{0.__class__}"}
    Notification.objects.create(
        event_id=uuid.uuid4(), user_id=ADA_ID, type="order.placed", occurred_at="2026-01-01T12:00:00Z", data=odd
    )
    Notification.objects.create(
        event_id=uuid.uuid4(), user_id=ADA_ID, type="{a.b}", occurred_at="2026-01-01T11:00:00Z", data={}
    )
    response = client.get(PREFIX + "/feed", headers=ADA)
    assert response.status_code == 200
    assert [item["message"] for item in response.json()] == [
        "Your order of {'nested': 1} x product {0.__class__} is placed.",
        "{a.b}",
    ]


def test_each_duplicate_delivery_of_an_event_is_counted_and_the_first_is_not(client):
    event_id, other_id = uuid.uuid4(), uuid.uuid4()
    for _ in range(3):
        deliver(client, event_id, order_placed())
    deliver(client, other_id, order_placed())
    assert Notification.objects.get(event_id=event_id).redeliveries == 2
    assert Notification.objects.get(event_id=other_id).redeliveries == 0


def test_notifications_older_than_the_retention_are_pruned_and_no_others(client, settings):
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    settings.NOTIFICATION_RETENTION_DAYS = 30
    old, recent = uuid.uuid4(), uuid.uuid4()
    for event_id in (old, recent):
        assert deliver(client, event_id, order_placed()).status_code == 201
    Notification.objects.filter(event_id=old).update(received_at=timezone.now() - timedelta(days=31))
    call_command("prune_notifications")
    assert list(Notification.objects.values_list("event_id", flat=True)) == [recent]


def deliver_batch(client, events):
    return internal_call(client, "service3", "POST", f"{PREFIX}/internal/events", {"events": events})


def test_a_batch_of_events_lands_each_once_and_counts_the_redelivered_ones(client, caplog):
    seen, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert deliver(client, seen, order_placed()).status_code == 201
    batch = [
        {"event_id": str(event_id), "request_id": f"order-{number}", **order_placed(order_id=f"o-{number}")}
        for number, event_id in enumerate([seen, first, second, first])
    ]
    assert deliver_batch(client, batch).status_code == 200
    stored = {notification.event_id: notification for notification in Notification.objects.all()}
    assert sorted(stored, key=str) == sorted([seen, first, second], key=str)
    assert (stored[seen].redeliveries, stored[first].redeliveries, stored[first].data["order_id"]) == (1, 0, "o-1")
    (line,) = [record for record in caplog.records if record.getMessage() == "events received" and record.redeliveries]
    assert line.events == [
        {"event_id": str(first), "request_id": "order-1"},
        {"event_id": str(second), "request_id": "order-2"},
    ]


@pytest.mark.parametrize(
    "events",
    [
        [],
        [{"event_id": "not-a-uuid", **order_placed()}],
        [
            {"event_id": str(uuid.uuid4()), **order_placed()},
            {"event_id": str(uuid.uuid4()), **order_placed(), "type": ""},
        ],
        [{"event_id": str(uuid.uuid4()), **order_placed()} for _ in range(101)],
    ],
    ids=["empty", "an id that is not a uuid", "one event of an unknown type", "more than a batch may hold"],
)
def test_a_batch_with_any_invalid_event_is_400_and_stores_none_of_them(client, events):
    assert deliver_batch(client, events).status_code == 400
    assert not Notification.objects.exists()


def test_only_the_orders_service_may_deliver_a_batch(client):
    batch = [{"event_id": str(uuid.uuid4()), **order_placed()}]
    response = internal_call(client, "service2", "POST", f"{PREFIX}/internal/events", {"events": batch})
    assert response.status_code == 403
    assert not Notification.objects.exists()


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def introspections_made(accounts) -> int:
    return sum(1 for call in accounts.calls if call.request.url.endswith("/internal/introspect"))


def test_a_users_reads_within_the_cache_time_ask_accounts_once_and_a_revoked_token_is_refused_after_it(
    client, accounts, monkeypatch, settings
):
    """servicekit.auth keeps a live token's caller INTROSPECTION_CACHE_SECONDS: the one-hop read's cost, which
    make bench measures. A token accounts stops knowing (a logout) is refused once that time has passed."""
    clock = Clock()
    monkeypatch.setattr(auth, "introspections", auth.IntrospectionCache(clock))
    for _ in range(3):
        assert client.get(FEED, headers=ADA).status_code == 200
    assert introspections_made(accounts) == 1
    monkeypatch.delitem(TEST_USERS, "ada-token")  # logged out at accounts
    clock.now += settings.INTROSPECTION_CACHE_SECONDS - 0.1
    assert client.get(FEED, headers=ADA).status_code == 200
    clock.now += 0.2
    assert client.get(FEED, headers=ADA).status_code == 401


def test_with_no_cache_time_every_read_asks_accounts(client, accounts, settings):
    settings.INTROSPECTION_CACHE_SECONDS = 0
    for _ in range(3):
        assert client.get(FEED, headers=ADA).status_code == 200
    assert introspections_made(accounts) == 3
