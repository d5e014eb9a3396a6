"""What `make bench` measures the stack against: in the bench's image only (servicekit/Dockerfile, target bench),
which is a service's image with these and gunicorn added; no service image carries them.

Each answers the catalog's minimal endpoint (`/api/<name>/health/`) with the same small JSON, behind the same
gateway and the same uWSGI socket as the services: `bare_wsgi` shows what nginx and uWSGI cost, `bare_django` what
Django costs; the difference to the service's own row is servicekit's (docker-compose.bench.yml runs them).
"""

BODY = b'{"status": "ok"}'
