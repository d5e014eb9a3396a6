"""Settings of service1 (accounts): the shared base from servicekit plus what is this service's own."""

from datetime import timedelta

from servicekit.server import worker_processes
from servicekit.settings import *  # noqa: F403
from servicekit.settings import INSTALLED_APPS, MIDDLEWARE, env

SERVICE_API = "accounts.api.api"

# accounts before django.contrib.auth: its createsuperuser (which checks the password rules) replaces Django's.
INSTALLED_APPS = [*INSTALLED_APPS, "accounts", "django.contrib.contenttypes", "django.contrib.auth", "axes"]
MIDDLEWARE = [*MIDDLEWARE, "axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

# The rules every password meets, however its user is made (/register, createsuperuser): Django's own.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# A token lives this long; expired ones are purged every ten minutes (uwsgi.ini: purge_expired_tokens).
TOKEN_LIFETIME_SECONDS = env.int("TOKEN_LIFETIME_SECONDS", default=24 * 3600)

# Password checks a replica runs at once, across its worker processes (empty: one per process; one outside uWSGI).
# Each is CPU-bound on purpose (Django's hasher), and one more login than this answers 503 at once: with more
# threads than processes (as by default), a login flood always leaves threads free for introspection, which every
# other service waits on.
LOGINS_AT_ONCE = int(env.str("LOGINS_AT_ONCE", default="") or worker_processes() or 1)

# Failed logins, counted per account by django-axes: after LOGIN_FAILURE_LIMIT within LOGIN_LOCKOUT_SECONDS the
# account answers 429 until that much time passes without a failure; a successful login clears the count.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(seconds=env.int("LOGIN_LOCKOUT_SECONDS", default=15 * 60))
AXES_LOCKOUT_PARAMETERS = ["username"]
# axes would also lock per client address (W006); the gateway limits each address already (limit_req), and behind
# a proxy many clients share one address, which a lockout would shut out together.
SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "axes.W006"]  # noqa: F405
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.api.locked_out"
# Tokens are this service's record of logins; axes keeps only the failures.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
