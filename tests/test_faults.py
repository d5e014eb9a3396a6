"""A stopped service fails fast at the gateway while the others keep serving, and serves again when started."""

import time

from stack import SERVICES, wait_until


def test_stopped_service_fails_fast_while_others_serve(stack):
    stopped, others = SERVICES[1], [s for s in SERVICES if s != SERVICES[1]]
    stack.compose("stop", stopped)
    try:
        started = time.monotonic()
        response = stack.get(f"/api/{stopped}/health/")
        elapsed = time.monotonic() - started

        assert response.status_code in (502, 503)
        assert response.json()["error"]["details"]["service"] == stopped
        assert elapsed < 1.0
        for other in others:
            assert stack.get(f"/api/{other}/health/").status_code == 200
    finally:
        stack.compose("start", stopped)

    assert wait_until(lambda: stack.answers(f"/api/{stopped}/health/"), timeout=15)
