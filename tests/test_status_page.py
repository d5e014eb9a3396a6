"""The live status page (/status/): what it shows is what the stack runs, as it changes, in a real browser too."""

import datetime
import json
import os
import signal
import subprocess
import threading

import pytest

from load import send
from preflight import worker_defaults
from project import ACCOUNTS, GATEWAY, ROOT, SERVICES, STATUS, engine_time
from stack import seconds, wait_until

# A stack of its own, shared with the other "rollouts" modules: it scales and kills replicas.
pytestmark = pytest.mark.own_stack("rollouts")

# The README's picture of the page: taken by the browser test, kept only when asked (UPDATE_SCREENSHOT=1), so
# that a run of the suite leaves the tree as it was.
SCREENSHOT = ROOT / "docs" / "status.png"


def test_the_data_names_every_service_each_replica_and_its_uwsgi_workers(stack):
    data = stack.status_page()
    assert [service["name"] for service in data["services"]] == SERVICES
    for service in data["services"]:
        containers = stack.containers(service["name"])
        assert {replica["instance"] for replica in service["replicas"]} == {
            container.attrs["Config"]["Hostname"] for container in containers
        }
        number = service["name"].removeprefix("service")
        processes = int(stack.environment.get(f"SERVICE{number}_PROCESSES") or worker_defaults()["PROCESSES"])
        for replica in service["replicas"]:
            assert len(replica["workers"]) == processes, (service["name"], replica)
            assert replica["busy"] + replica["idle"] == processes


def test_requests_are_counted_for_the_replica_that_served_them(stack):
    stack.status_page()  # someone watches: a first look polls at once, so the counts start before the requests
    sent = 40
    for _ in range(sent):
        assert stack.get(f"/api/{ACCOUNTS}/health").status_code == 200
    (instance,) = [container.attrs["Config"]["Hostname"] for container in stack.containers(ACCOUNTS)]

    def counted() -> bool:
        replica = stack.shown_on_status_page(ACCOUNTS)[instance]
        return replica["requests_per_second"] * stack.status_page()["window_seconds"] >= sent

    assert wait_until(counted, timeout=3)
    replica = stack.shown_on_status_page(ACCOUNTS)[instance]
    # nginx times to the millisecond: a health check served in under one is 0 ms.
    assert replica["errors"] == 0 and 0 <= replica["p50_ms"] <= replica["p99_ms"]


def test_each_replica_is_shown_by_the_name_compose_gives_it(stack):
    for service in SERVICES:
        shown = stack.shown_on_status_page(service)
        for container in stack.containers(service):
            assert shown[container.attrs["Config"]["Hostname"]]["name"] == container.name


def says_it_is_not_answering(response) -> bool:
    """The gateway's own answer for a status container it found silent (not a failed proxy attempt's 503)."""
    return response.status_code == 503 and response.json()["error"]["message"] == "The status page is not answering"


NOT_ANSWERING_SAID = b"the status page is not answering; no log line is sent to it"


def old_workers_running(gateway) -> bool:
    """nginx's workers from before a reload are still finishing their requests (their process title says so)."""
    titles = gateway.exec_run(["bash", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n'"])
    return b"shutting down" in titles.output


def test_a_stopped_status_container_costs_the_gateway_no_log_line_per_request(stack):
    status_container, gateway = stack.container(STATUS), stack.container(GATEWAY)
    status_container.update(restart_policy={"Name": "no"})  # stays down, as after `docker kill`
    status_container.kill()
    try:
        assert wait_until(lambda: says_it_is_not_answering(stack.get("/status/")), timeout=10)
        # The gateway has said it once, and its workers from before its reload have finished what they had.
        assert wait_until(lambda: NOT_ANSWERING_SAID in gateway.logs(), timeout=10)
        assert wait_until(lambda: not old_workers_running(gateway), timeout=10)
        since = datetime.datetime.now(datetime.UTC)
        assert [stack.get(f"/api/{ACCOUNTS}/health").status_code for _ in range(100)] == [200] * 100
        logged = [json.loads(line) for line in gateway.logs(since=since).decode().splitlines() if line.strip()]
        # The engine's `since` is in whole seconds: each line's own time decides.
        after = [line for line in logged if engine_time(line["time"]) >= since]
        assert [line for line in after if line["level"] != "INFO"] == []
    finally:
        status_container.update(restart_policy={"Name": "unless-stopped"})
        status_container.start()
    assert wait_until(lambda: stack.get("/status/").status_code == 200, timeout=15)


def test_the_page_reads_as_a_table_without_javascript(stack):
    response = stack.get("/status/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    for service in SERVICES:
        assert f'<th scope="row">{service}</th>' in response.text
    assert '<noscript><meta http-equiv="refresh"' in response.text
    # Everything it loads is its own: the gateway's policy allows no other origin.
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "://" not in response.text.split("<body>")[0]


def test_a_killed_replica_is_gone_from_the_page_within_five_seconds(stack):
    stack.scale(ACCOUNTS, 2)
    try:
        victim, survivor = stack.containers(ACCOUNTS)
        hostname = victim.attrs["Config"]["Hostname"]
        assert wait_until(lambda: hostname in stack.shown_on_status_page(ACCOUNTS), timeout=5)
        victim.update(restart_policy={"Name": "no"})  # stays dead, so "gone" is not a race with its restart
        os.kill(victim.attrs["State"]["Pid"], signal.SIGKILL)
        gone = wait_until(lambda: hostname not in stack.shown_on_status_page(ACCOUNTS), timeout=5, interval=0.1)
        assert gone
        assert survivor.attrs["Config"]["Hostname"] in stack.shown_on_status_page(ACCOUNTS)
        victim.remove(force=True)
    finally:
        stack.scale(ACCOUNTS, 1)


def test_the_status_page_can_be_turned_off(tmp_path):
    """STATUS_PAGE=false: no route to the page, and the gateway sends it no log line."""
    rendered = tmp_path / "gateway"
    environment = {**os.environ, "STATUS_PAGE": "false"}
    subprocess.run([ROOT / "nginx" / "entrypoint.sh", "render", rendered], env=environment, check=True)
    assert (rendered / "generated" / "status-route.inc").read_text().strip() == "location ^~ /status { return 404; }"
    assert "access_log" not in (rendered / "generated" / "status.conf").read_text()
    subprocess.run([ROOT / "nginx" / "entrypoint.sh", "render", rendered], env=os.environ, check=True)
    assert "uwsgi_pass" in (rendered / "generated" / "status-route.inc").read_text()


# --- in a browser -----------------------------------------------------------------------------------------------


def rows_on_page(browser, service: str) -> list[list[str]]:
    """The replica rows the page shows for a service, as cell texts (replica, workers, rate, p50, p99, errors, not
    sampled).
    Read in one script: the page rebuilds its rows every second, so elements found one call earlier go stale."""
    script = """return [...document.querySelectorAll(`tr.replica[data-service="${arguments[0]}"]`)]
        .map(row => [...row.cells].slice(1).map(cell => cell.textContent));"""
    return browser.execute_script(script, service)


def serving(rows: list[list[str]]) -> int:
    """How many of the rows show requests served in the window."""
    return sum(1 for row in rows if row[2] != "–" and float(row[2]) > 0)


def test_in_a_browser_scaling_under_load_shows_each_new_replica_taking_requests(stack, browser, tmp_path):
    browser.get(f"{stack.base_url}/status/")
    shown = "return [...document.querySelectorAll('tr.service th')].map(cell => cell.textContent);"
    assert wait_until(lambda: browser.execute_script(shown) == SERVICES, timeout=5)
    url = f"{stack.base_url}/api/{ACCOUNTS}/health"
    stop = threading.Event()
    load = threading.Thread(target=send, args=(url, 60, seconds(60), 4, stop))  # bounded: 60 requests/s, 60 s
    load.start()
    try:
        stack.scale(ACCOUNTS, 3)
        assert wait_until(lambda: serving(rows_on_page(browser, ACCOUNTS)) == 3, timeout=10, interval=0.5), (
            rows_on_page(browser, ACCOUNTS)
        )
        screenshot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") else tmp_path / "status.png"
        assert browser.save_screenshot(str(screenshot))
        stack.scale(ACCOUNTS, 1)
        assert wait_until(lambda: len(rows_on_page(browser, ACCOUNTS)) == 1, timeout=10, interval=0.5)
    finally:
        stop.set()
        load.join(timeout=10)
        stack.scale(ACCOUNTS, 1)
