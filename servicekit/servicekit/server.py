"""Facts about the uWSGI server running this process, or None outside uWSGI (unit tests, manage.py)."""

try:
    import uwsgi  # provided by the uWSGI server itself, not by pip
except ImportError:
    uwsgi = None


def worker_facts() -> dict[str, int] | None:
    if uwsgi is None:
        return None
    return {
        "processes": uwsgi.numproc,
        "threads": int(uwsgi.opt.get("threads", b"1") or 1),
        "worker_id": uwsgi.worker_id(),
    }
