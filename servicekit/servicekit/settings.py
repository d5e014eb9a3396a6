"""Settings every service starts from; a service's config/settings.py imports them and adds its own.

A service's Django configuration is read from the environment here, once, with typed parsing (see .env.example).
A secret may instead come from a file, a Docker secret say: NAME_FILE holds the path of the file whose text is
NAME's value. What runs before Django or without it reads its few variables itself: servicekit.sockets (where
uWSGI listens, for the entrypoint and the healthcheck) and the status page (status/statuspage, no Django).
"""

import socket
import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from servicekit.keys import read_or_create_secret_key

env = environ.FileAwareEnv()


def service_dir() -> Path:
    """The service's project folder (serviceN/, /srv/serviceN in its image): the one holding its config package."""
    config_package = sys.modules.get("config")
    if config_package is None or config_package.__file__ is None:
        return Path.cwd()
    return Path(config_package.__file__).resolve().parent.parent


BASE_DIR = service_dir()
# The folder names the service, so the name is written once: in the tree.
SERVICE_NAME = env.str("SERVICE_NAME", default=BASE_DIR.name)
# The container's hostname tells replicas of one service apart.
INSTANCE_NAME = env.str("INSTANCE_NAME", default=socket.gethostname())
# On Swarm, the task's name (`docker service ps`) and its node, which the status page shows (swarm/docker-stack.yml
# sets them from templates); on one host the page has the name from beside the socket (servicekit.sockets).
REPLICA_NAME = env.str("REPLICA_NAME", default="") or None
NODE_NAME = env.str("NODE_NAME", default="") or None
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "var")))

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="").strip() or read_or_create_secret_key(DATA_DIR / "secret_key")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# The Hosts a service answers: the public names (the gateway refuses others on its public port with 421, and
# passes the client's Host on), "localhost" (the healthcheck's, and the gateway's own name), and the name every
# service-to-service call sends through the internal listener (servicekit.http). A service checks this itself:
# with the TCP transport its port is reachable without the gateway by whatever shares its network.
GATEWAY_INTERNAL_HOST = "gateway"
PUBLIC_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
ALLOWED_HOSTS = [*PUBLIC_HOSTS, "localhost", GATEWAY_INTERNAL_HOST]

# ninja: its interactive API docs page, served at /api/<service>/docs with its own scripts (servicekit.urls).
INSTALLED_APPS = [
    "servicekit",
    "ninja",
]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
STATIC_URL = f"/api/{SERVICE_NAME}/static/"

# Only what an API behind a gateway needs: no sessions, CSRF or messages unless a service adds them, and no
# SecurityMiddleware: the gateway sets the security headers on every response, and drops a service's copies.
MIDDLEWARE = [
    "servicekit.middleware.RequestContextMiddleware",
    "servicekit.body.JsonBodyMiddleware",
]

# Functions whose dicts the health view adds to its answer (a service's own state, such as its outbox).
HEALTH_DETAILS: list[str] = []

# The service's settings name its django-ninja API ("<app>.api.api"), which servicekit.urls mounts.
SERVICE_API: str
ROOT_URLCONF = "servicekit.urls"
WSGI_APPLICATION = "servicekit.wsgi.application"

# Empty or unset: SQLite in the service's own data volume.
DATABASE_URL = env.str("DATABASE_URL", default="") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
# A password kept out of the URL: DATABASE_PASSWORD, or the file DATABASE_PASSWORD_FILE names (a Docker secret).
DATABASE_PASSWORD = env.str("DATABASE_PASSWORD", default="").strip()
if DATABASE_PASSWORD:
    DATABASES["default"]["PASSWORD"] = DATABASE_PASSWORD
# Keep each worker thread's connection open between requests instead of reconnecting for every one.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=300)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several workers and replicas share one file: WAL lets reads go on during a write, the timeout makes a
    # writer wait for the lock instead of failing, and IMMEDIATE takes the write lock at the transaction's start
    # so two writers never deadlock upgrading from a read.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database whose host is gone (a lost node) answers nothing at all: without bounds, libpq waits minutes for
    # TCP to give up, holding the request's worker. With them, the request fails in seconds (503, servicekit.api).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        connect_timeout=env.int("DB_CONNECT_TIMEOUT", default=3),  # seconds
        tcp_user_timeout=env.int("DB_TCP_USER_TIMEOUT_MS", default=3000),  # data sent, no acknowledgement
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Calls to other services (servicekit.http): through the gateway's internal listener, a unix socket in a volume
# that only the gateway and the services mount, with bounded waits.
GATEWAY_INTERNAL_URL = env.str("GATEWAY_INTERNAL_URL", default="http+unix://%2Frun%2Fgateway%2Finternal.sock")
# This service's identity (servicekit.identity): its private key, from a file (a Docker secret) or made on first
# start in DATA_DIR; published in SOCKET_DIR for the gateway to serve; each call's token lives this many seconds.
SERVICE_KEY_FILE = env.str("SERVICE_KEY_FILE", default="")
SOCKET_DIR = env.str("SOCKET_DIR", default=str(DATA_DIR / "socket"))
SERVICE_TOKEN_SECONDS = env.int("SERVICE_TOKEN_SECONDS", default=30)
if not 1 <= SERVICE_TOKEN_SECONDS <= 60:  # the callee refuses longer ones (verification.MAX_TOKEN_SECONDS)
    raise ImproperlyConfigured(f"SERVICE_TOKEN_SECONDS={SERVICE_TOKEN_SECONDS}: choose 1 to 60")
HTTP_CONNECT_TIMEOUT = env.float("HTTP_CONNECT_TIMEOUT", default=1.0)
HTTP_READ_TIMEOUT = env.float("HTTP_READ_TIMEOUT", default=3.0)
HTTP_RETRIES = env.int("HTTP_RETRIES", default=2)
CIRCUIT_FAIL_MAX = env.int("CIRCUIT_FAIL_MAX", default=5)
CIRCUIT_RESET_SECONDS = env.float("CIRCUIT_RESET_SECONDS", default=3.0)
# The service that issues and checks bearer tokens, and how long a worker keeps its answer about a live token
# (servicekit.auth): a token revoked at accounts is accepted elsewhere for at most this long. 0: ask every time.
ACCOUNTS_SERVICE = env.str("ACCOUNTS_SERVICE", default="service1")
INTROSPECTION_CACHE_SECONDS = env.float("INTROSPECTION_CACHE_SECONDS", default=5.0)
if not 0 <= INTROSPECTION_CACHE_SECONDS <= 60:
    raise ImproperlyConfigured(f"INTROSPECTION_CACHE_SECONDS={INTROSPECTION_CACHE_SECONDS}: choose 0 to 60")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# `django-admin check --deploy` passes; what it asks for that does not apply is silenced here. HSTS (W004) and the
# redirect to HTTPS (W008) are the gateway's when it serves TLS (docs/security.md), and so are the headers of
# SecurityMiddleware (W001) and frame protection (W002): it sets X-Content-Type-Options, Referrer-Policy,
# Cross-Origin-Opener-Policy and X-Frame-Options on every response (nginx/snippets/headers.inc). CSRF protection
# (W003) guards cookie sessions; these APIs take bearer tokens in a header, which a cross-site form cannot send.
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003", "security.W004", "security.W008"]

# The largest request body: MAX_BODY_BYTES, which the gateway enforces first (docker-compose.yml gives both).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_BODY_BYTES", default=1024 * 1024)
APPEND_SLASH = False

# A service's own JSON line per request (service, instance, request id, method, path, status, duration). Off by
# default: the gateway logs every request, public and internal, with the same id, status and duration, and a
# second line per request through the engine's log pipeline costs the machine more than the request itself
# (docs/scaling.md "What each buys").
ACCESS_LOG = env.bool("ACCESS_LOG", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "servicekit.logs.RequestContextFilter"},
    },
    "formatters": {
        "json": {
            "()": "servicekit.logs.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "stdout": {
            "class": "servicekit.logs.JsonLineHandler",
            "formatter": "json",
            "filters": ["request_context"],
        },
    },
    "root": {"handlers": ["stdout"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Our access log replaces Django's request warnings, which would log every 4xx twice.
        "django.request": {"level": "ERROR"},
    },
}
