"""The gateway's renderer against any files a service can put in its socket volume (hypothesis): the upstreams it
renders either leave a file out or route to exactly that socket, every line is of the renderer's own few shapes,
the replicas it lists as draining are exactly those marked, and nginx accepts the result."""

import os
import re
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from project import GATEWAY, ROOT

ENTRYPOINT = ROOT / "nginx" / "entrypoint.sh"
SERVICE = "service9"
# Where the gateway finds the services' volumes: the rendered paths are checked by nginx as they would be there.
GATEWAY_SOCKET_ROOT = "/run/uwsgi"
REPLICA_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,62}")
# Every line the renderer may write into upstreams.conf (ROOT stands for the services' volumes).
LINE_SHAPES = [
    re.compile(shape)
    for shape in (
        r"map \$route_service \$route_service_known \{",
        r"    default 0;",
        rf'    "{SERVICE}" 1;',
        rf'upstream "{SERVICE}" \{{',
        rf'    server "unix:ROOT/{SERVICE}/[0-9A-Za-z][0-9A-Za-z-]{{0,62}}\.sock" max_fails=0;',
        rf'    server "unix:ROOT/{SERVICE}/no-replica\.sock" down;',
        r"map \$uri \$replica_host \{",
        r'    default "";',
        r"\}",
    )
]
KINDS = ("socket", "link to a socket", "regular file", "folder")
SUFFIXES = ("", ".sock", ".stats", ".name", ".draining")
HOSTILE = [
    "zz; } server { listen 8080; server_name ~.; location ~ . { include uwsgi_params; uwsgi_pass x; } } upstream x {",
    "a b",
    "a\nb",
    'a"b',
    "a\\b",
    "a$b",
    "a{b}",
    "-a",
    "a" * 200,
    "é",
]
names = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=80),
    st.from_regex(REPLICA_NAME, fullmatch=True),
    st.sampled_from(HOSTILE),
)
files = st.lists(
    st.tuples(st.tuples(names, st.sampled_from(SUFFIXES)).map("".join), st.sampled_from(KINDS)),
    max_size=8,
    unique_by=lambda entry: entry[0],
).map(lambda entries: [(name, kind) for name, kind in entries if fits(name)])


def fits(name: str) -> bool:
    """A name a file system takes: not . or .., at most 255 bytes."""
    return name not in (".", "..") and len(name.encode()) <= 255


def make(folder: Path, name: str, kind: str, target: Path) -> None:
    path = folder / name
    if kind == "socket":
        os.mknod(path, 0o660 | stat.S_IFSOCK)  # a socket's inode, as bind makes one, whatever the name's length
    elif kind == "link to a socket":
        path.symlink_to(target)
    elif kind == "regular file":
        path.write_text("x")
    else:
        path.mkdir()


def expected_routes(entries: list[tuple[str, str]]) -> tuple[set[str], set[str]]:
    """What the gateway may route to: real sockets named as replicas, not marked draining; and the replicas of
    those it leaves out because they are marked."""
    present = {name for name, _ in entries}
    replicas = {
        name.removesuffix(".sock")
        for name, kind in entries
        if kind == "socket" and name.endswith(".sock") and REPLICA_NAME.fullmatch(name.removesuffix(".sock"))
    }
    draining = {replica for replica in replicas if f"{replica}.draining" in present}
    return {f"{replica}.sock" for replica in replicas - draining}, draining


def render(entries: list[tuple[str, str]]) -> tuple[str, set[str]]:
    """The upstreams the gateway renders for a volume holding entries, its paths as the gateway sees them, and the
    replicas it lists as draining (for the status page)."""
    with tempfile.TemporaryDirectory() as work:
        root, folder = Path(work, "sockets"), Path(work, "sockets", SERVICE)
        folder.mkdir(parents=True)
        elsewhere = Path(work, "elsewhere.sock")
        socket.socket(socket.AF_UNIX).bind(str(elsewhere))
        for name, kind in entries:
            make(folder, name, kind, elsewhere)
        environment = {**os.environ, "SOCKET_ROOT": str(root), "STATUS_PAGE": "false"}
        subprocess.run(["bash", str(ENTRYPOINT), "render", work], env=environment, check=True, capture_output=True)
        upstreams = Path(work, "generated", "upstreams.conf").read_text().replace(str(root), "ROOT")
        listed = Path(work, "generated", "draining").read_text().splitlines()
        return upstreams, {line.removeprefix(f"{SERVICE}\t") for line in listed if line}


def test_any_file_in_a_volume_is_left_out_or_routed_as_exactly_that_socket_and_nginx_takes_it(stack, tmp_path):
    rendered: list[str] = []

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(files)
    def check(entries: list[tuple[str, str]]) -> None:
        upstreams, draining = render(entries)
        lines = upstreams.splitlines()
        assert [line for line in lines if not any(shape.fullmatch(line) for shape in LINE_SHAPES)] == []
        routed = set(re.findall(rf'server "unix:ROOT/{SERVICE}/([^"]+)" max_fails=0;', upstreams))
        assert (routed, draining) == expected_routes(entries)
        rendered.append(upstreams.replace("ROOT", GATEWAY_SOCKET_ROOT))

    check()
    for index, upstreams in enumerate(rendered):
        (tmp_path / f"{index}.conf").write_text(upstreams)
    tmp_path.chmod(0o755)
    assert nginx_rejects(stack, tmp_path) == []


# Run in the gateway's image: nginx -t over its own configuration with each rendered upstreams in turn; prints the
# name of each file nginx rejects, with why.
NGINX_TEST = """
set -o nounset
mkdir -p /tmp/nginx /tmp/check
cp -r /etc/nginx /tmp/check/conf
STATUS_PAGE=false SOCKET_ROOT=/tmp/none bash /usr/local/bin/gateway-entrypoint render /tmp/check >/dev/null 2>&1
for upstreams in /rendered/*.conf; do
  cp "$upstreams" /tmp/check/generated/upstreams.conf
  nginx -q -t -e stderr -c /tmp/check/conf/nginx.conf 2>/tmp/why || echo "$upstreams: $(cat /tmp/why)"
done
"""


def nginx_rejects(stack, folder: Path) -> list[str]:
    output = stack.docker.containers.run(
        stack.image_of(GATEWAY),
        entrypoint=["bash", "-c", NGINX_TEST],
        volumes={str(folder): {"bind": "/rendered", "mode": "ro"}},
        network_mode="none",
        remove=True,
    )
    return output.decode().splitlines()
