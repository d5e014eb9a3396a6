"""How many password checks run at once in this replica: a semaphore shared by all its worker processes.

Made when Django starts in uWSGI's master (AccountsConfig.ready), so the workers forked from it share one count.
"""

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from accounts.errors import LoginsBusy

password_checks = multiprocessing.BoundedSemaphore(settings.LOGINS_AT_ONCE)


@contextmanager
def password_check_slot() -> Iterator[None]:
    """A slot to check a password in, or LoginsBusy at once when every slot is taken (no thread waits for one)."""
    if not password_checks.acquire(block=False):
        raise LoginsBusy("Too many logins at once; retry in a second")
    try:
        yield
    finally:
        password_checks.release()
