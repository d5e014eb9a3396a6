"""Facts about the uWSGI server running this process, or None outside uWSGI (unit tests, django-admin)."""

try:
    import uwsgi  # provided by the uWSGI server itself, not by pip
except ImportError:
    uwsgi = None


# The uWSGI metric holding each worker's threads (servicekit/uwsgi.ini declares it; the status page reads it: a
# replica serves workers × threads requests at once).
THREADS_METRIC = "threads"


def int_option(name: str, default: int) -> int:
    value = uwsgi.opt.get(name)
    if isinstance(value, list):  # given twice (uwsgi.ini's default, then the entrypoint's): the last one holds
        value = value[-1]
    return int(value) if value else default


def worker_processes() -> int | None:
    """The most worker processes this replica runs."""
    return None if uwsgi is None else uwsgi.numproc


def worker_facts() -> dict[str, int | None] | None:
    """processes is the most workers uWSGI runs; cheaper, when not 0, the fewest it keeps when idle;
    request_timeout_seconds, the longest a request lives."""
    if uwsgi is None:
        return None
    return {
        "processes": uwsgi.numproc,
        "threads": int_option("threads", 1),
        "cheaper": int_option("cheaper", 0),
        "request_timeout_seconds": request_timeout_seconds(),
        "worker_id": uwsgi.worker_id(),
    }


def request_timeout_seconds() -> int | None:
    """The longest a request lives in this replica: uWSGI kills it then (harakiri); None when nothing kills it."""
    if uwsgi is None:
        return None
    return int_option("harakiri", 0) or None


def calls_at_once() -> int | None:
    """How many requests this replica serves at once (workers × threads): as many calls as it can have in flight."""
    if uwsgi is None:
        return None
    return uwsgi.numproc * int_option("threads", 1)


def publish_threads() -> None:
    """Sets THREADS_METRIC, once the options are final (uwsgi.ini's, then the entrypoint's)."""
    if uwsgi is not None:
        uwsgi.metric_set(THREADS_METRIC, int_option("threads", 1))
