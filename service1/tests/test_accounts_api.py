"""The accounts API: register, log in, log out, introspect; every bad input a clean 4xx that writes nothing."""

import importlib
import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import CanonicalUsername, Token
from servicekit_testing import internal_call

PREFIX = "/api/service1"
User = get_user_model()
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    # The real hasher is slow on purpose; unit tests check behaviour, not cost.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def post_json(client, path, body, **kwargs):
    return client.post(PREFIX + path, body, content_type="application/json", **kwargs)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def token(client):
    User.objects.create(username="ada", password=make_password("correct horse"))
    return post_json(client, "/login", {"username": "ada", "password": "correct horse"}).json()["token"]


def test_register_creates_a_user(client):
    response = post_json(client, "/register", {"username": "ada", "password": "correct horse"})
    assert response.status_code == 201
    assert response.json()["username"] == "ada"
    assert User.objects.get(username="ada").check_password("correct horse")


def test_register_twice_is_a_conflict(client):
    post_json(client, "/register", {"username": "ada", "password": "correct horse"})
    response = post_json(client, "/register", {"username": "ada", "password": "another one"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "username_taken"


@pytest.mark.parametrize(
    ("taken", "again"),
    [("ada", "Ada"), ("Ärger", "ärger"), ("Straße", "STRASSE"), ("Σίσυφος", "σίσυφοσ"), ("ada", "ａｄａ")],
    ids=["ascii-case", "umlaut-case", "sharp-s", "final-sigma", "fullwidth"],
)
def test_register_with_another_form_of_a_taken_name_is_a_conflict(client, taken, again):
    assert post_json(client, "/register", {"username": taken, "password": "correct horse"}).status_code == 201
    response = post_json(client, "/register", {"username": again, "password": "another one"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "username_taken"
    assert User.objects.count() == 1


def test_a_user_made_any_other_way_has_its_canonical_name_too(client):
    User.objects.create_user(username="Grace", password="x")
    assert CanonicalUsername.objects.get(user__username="Grace").canonical == "grace"
    assert post_json(client, "/register", {"username": "GRACE", "password": "correct horse"}).status_code == 409


def test_existing_names_that_clash_in_canonical_form_are_reported_not_merged():
    migration = importlib.import_module("accounts.migrations.0003_canonical_username")
    assert migration.clashes(["ada", "Straße", "strasse", "grace", "STRASSE"]) == [["STRASSE", "Straße", "strasse"]]


@pytest.mark.parametrize("password", ["wrong password", "short", "", "x" * 200])
def test_login_with_a_wrong_password_of_any_length_is_401(client, token, password):
    response = post_json(client, "/login", {"username": "ada", "password": password})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


def test_a_token_identifies_its_user(client, token):
    response = client.get(PREFIX + "/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["username"] == "ada"


def introspect(client, caller, headers):
    return internal_call(client, caller, "GET", PREFIX + "/internal/introspect", headers=headers)


def test_introspection_of_a_live_token_says_until_when_it_lives(client, token):
    body = introspect(client, "service3", bearer(token)).json()
    assert body["active"] is True
    assert body["user"]["username"] == "ada"
    assert body["exp"] == int(Token.objects.get().expires_at.timestamp())  # a caller keeps the answer no longer


@pytest.mark.parametrize("authorization", ["", "Bearer nope", "Basic abc", "Bearer"])
def test_introspection_of_anything_else_is_inactive(client, authorization):
    response = introspect(client, "service3", {"Authorization": authorization})
    assert response.status_code == 200
    assert response.json() == {"active": False, "user": None, "exp": None}


def test_logout_revokes_the_token(client, token):
    assert client.post(PREFIX + "/logout", headers=bearer(token), content_type="application/json").status_code == 204
    assert client.get(PREFIX + "/me", headers=bearer(token)).status_code == 401


def test_me_without_a_token_is_401_with_a_challenge(client):
    response = client.get(PREFIX + "/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "correct horse"}, "body.credentials.username"),
        ({"username": "ada"}, "body.credentials.password"),
        ({"username": "ada", "password": "short"}, "body.credentials.password"),
        ({"username": "has space", "password": "correct horse"}, "body.credentials.username"),
        ({"username": 42, "password": "correct horse"}, "body.credentials.username"),
    ],
)
def test_invalid_registration_is_400_with_the_field_and_writes_nothing(client, body, field):
    response = post_json(client, "/register", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [detail["field"] for detail in error["details"]]
    assert not User.objects.exists()


def test_malformed_json_is_400(client):
    response = client.post(PREFIX + "/register", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert not User.objects.exists()


def test_a_body_that_is_not_json_is_415(client):
    response = client.post(PREFIX + "/register", "username=ada", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert not User.objects.exists()


def test_an_oversized_body_is_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = post_json(client, "/register", {"username": "ada", "password": "x" * 200})
    assert response.status_code == 413
    assert not User.objects.exists()


def test_openapi_schema_is_served(client):
    schema = client.get(PREFIX + "/openapi.json").json()
    assert "/api/service1/register" in schema["paths"]


def log_in(client, username, password):
    return post_json(client, "/login", {"username": username, "password": password})


def test_an_account_is_locked_after_ten_failures_while_others_still_log_in(client, token):
    User.objects.create(username="grace", password=make_password("grace's password"))
    statuses = [log_in(client, "ada", "wrong password").status_code for _ in range(11)]
    assert statuses == [401] * 9 + [429, 429]
    locked = log_in(client, "ada", "correct horse")  # now even the right password is refused
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "too_many_failed_logins"
    assert locked["Retry-After"] == "900"
    assert log_in(client, "grace", "grace's password").status_code == 200


def test_a_successful_login_clears_the_failure_count(client, token):
    for _ in range(9):
        log_in(client, "ada", "wrong password")
    assert log_in(client, "ada", "correct horse").status_code == 200
    statuses = [log_in(client, "ada", "wrong password").status_code for _ in range(9)]
    assert statuses == [401] * 9


def test_a_login_beyond_the_password_checks_at_once_is_a_fast_503(client, token, settings):
    from accounts.capacity import password_checks

    for _ in range(settings.LOGINS_AT_ONCE):
        assert password_checks.acquire(block=False)
    try:
        response = log_in(client, "ada", "correct horse")
    finally:
        for _ in range(settings.LOGINS_AT_ONCE):
            password_checks.release()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "busy"
    assert response["Retry-After"] == "1"
    assert log_in(client, "ada", "correct horse").status_code == 200


def test_expired_tokens_are_purged_and_live_ones_kept(client, token):
    from django.core.management import call_command

    from accounts.models import Token, token_hash

    Token.objects.create(key_hash="0" * 64, user=User.objects.get(username="ada"), expires_at=timezone.now())
    call_command("purge_expired_tokens", stdout=io.StringIO())
    assert list(Token.objects.values_list("key_hash", flat=True)) == [token_hash(token)]
    assert client.get(PREFIX + "/me", headers=bearer(token)).status_code == 200


def test_an_expired_token_is_refused(client, token):
    from accounts.models import Token

    Token.objects.update(expires_at=timezone.now())
    assert client.get(PREFIX + "/me", headers=bearer(token)).status_code == 401


def test_introspection_needs_a_calling_service_the_policy_names(client, token):
    without = client.get(PREFIX + "/internal/introspect", headers=bearer(token))
    assert without.status_code == 401
    assert without.json()["error"]["code"] == "service_token_required"
    from_itself = introspect(client, "service1", bearer(token))
    assert from_itself.status_code == 403


@pytest.mark.parametrize(
    "password", ["password123", "12345678901", "ada-lovelace"], ids=["common", "numeric", "like-the-name"]
)
def test_register_refuses_a_password_that_breaks_the_rules_naming_the_field(client, password):
    response = post_json(client, "/register", {"username": "ada-lovelace", "password": password})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert {detail["field"] for detail in response.json()["error"]["details"]} == {"password"}
    assert not User.objects.filter(username="ada-lovelace").exists()


def test_createsuperuser_without_input_refuses_a_password_register_would_refuse(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "abc")
    with pytest.raises(CommandError, match="password rules"):
        call_command("createsuperuser", "--noinput", "--username", "boss", "--email", "boss@example.com")
    assert not User.objects.filter(username="boss").exists()


def test_createsuperuser_without_input_makes_a_staff_user_with_a_good_password(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-good-long-passphrase")
    call_command("createsuperuser", "--noinput", "--username", "boss", "--email", "boss@example.com", verbosity=0)
    assert User.objects.get(username="boss").is_staff


@pytest.mark.parametrize("path", ["/register", "/login"])
@pytest.mark.parametrize("field", ["username", "password"])
def test_a_nul_byte_in_a_credential_is_400_naming_the_field(client, path, field):
    body = {"username": "ada-nul", "password": "a-good-long-passphrase"}
    body[field] += "\x00"
    response = post_json(client, path, body)
    assert response.status_code == 400
    assert [detail["field"].rsplit(".", 1)[-1] for detail in response.json()["error"]["details"]] == [field]
