"""Ask the real Heartbeat 3.0.6 whether it accepts an ha.cf (and haresources): a test oracle.

Theory of operation
-------------------
Heartbeat reads ha.cf and haresources (``init_config`` and ``parse_ha_resources``) before it
daemonizes.  ``heartbeat -r`` ("reread the configuration of the running daemon") does only
that when a daemon seems to run: it parses both files, then on success logs "Signalling
heartbeat pid N to reread config files" and sends SIGHUP to N, and on failure logs "Config
errors: Heartbeat pid N NOT restarted"; either way it exits without starting anything.  So
the check writes the pid of its own shell (which ignores SIGHUP) into the pid file and runs
``heartbeat -r``: a parse-only run of the real parser.

It runs in fresh, anonymous namespaces (``unshare --net --uts --mount``): the hostname is the
node name, /etc/ha.d, /run and /var/lib/heartbeat are bind mounts of a temporary directory,
and every interface the media lines name exists as one end of a veth pair with an address (this kernel may lack the dummy type), since
the media plugins look their interface up while the line is parsed.  An anonymous network
namespace vanishes with its last process, so nothing is left behind even on a crash.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.integration.heartbeat_lab import heartbeat_available, heartbeat_daemon_path

_MEDIA = ("bcast", "ucast", "mcast", "udp", "ucast6", "mcast6")
_TIMEOUT_S = 30


@dataclass(frozen=True)
class HeartbeatVerdict:
    accepted: bool
    output: str
    """Heartbeat's own messages (stderr and its log), for assertions and failure reports."""

    def errors(self) -> list[str]:
        return [line for line in self.output.splitlines() if "ERROR:" in line]


def interfaces_of(ha_cf: str) -> list[str]:
    """The interface names the media lines of ``ha_cf`` name, in order, once each."""
    names: list[str] = []
    for raw in ha_cf.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 2 or words[0] not in _MEDIA:
            continue
        for name in words[1:] if words[0] in ("bcast", "udp") else words[1:2]:
            if name not in names and len(name) <= 15:
                names.append(name)
    return names


def heartbeat_verdict(
    ha_cf: str,
    node: str,
    haresources: str = "",
    *,
    hosts: dict[str, str] | None = None,
    executables: tuple[str, ...] = (),
) -> HeartbeatVerdict:
    """Run the real Heartbeat parser on ``ha_cf`` as node ``node``.

    ``hosts`` adds names to /etc/hosts (ucast and ping peers given by name); ``executables``
    are absolute paths made to exist as stub scripts (respawn clients, resource scripts), so a
    verdict is about the file and not about what this machine has installed.
    """
    reason = heartbeat_available()
    if reason is not None:
        raise RuntimeError(f"cannot ask Heartbeat: {reason}")
    daemon = heartbeat_daemon_path()
    assert daemon is not None
    work = Path(tempfile.mkdtemp(prefix="hb-parse-"))
    try:
        return _run(work, daemon, ha_cf, node, haresources, hosts or {}, executables)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def heartbeat_udp_sockets(ha_cf: str, node: str) -> list[str]:
    """Start the real Heartbeat on ``ha_cf`` for two seconds; its UDP sockets as ``ss`` lists them.

    Each entry reads like ``0.0.0.0%eth0:694`` (a socket bound to one interface and port).
    """
    reason = heartbeat_available()
    if reason is not None:
        raise RuntimeError(f"cannot ask Heartbeat: {reason}")
    daemon = heartbeat_daemon_path()
    assert daemon is not None
    work = Path(tempfile.mkdtemp(prefix="hb-sockets-"))
    try:
        verdict = _run(work, daemon, ha_cf, node, "", {}, (), mode="sockets")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not verdict.accepted:
        raise RuntimeError(f"Heartbeat did not start:\n{verdict.output}")
    return sorted(set(re.findall(r"^SOCKET (\S+)", verdict.output, re.MULTILINE)))


_PARSE_TAIL = """trap '' HUP
echo $$ > /run/heartbeat.pid
set +e
{daemon} -r
rc=$?
echo "heartbeat-rc=$rc"
"""

_SOCKETS_TAIL = """set +e
{daemon}
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  ss -Huanp | grep -q heartbeat && break
  sleep 0.2
done
sleep 1
ss -Huanp | grep heartbeat | awk '{{print "SOCKET " $4}}'
for tty in /tmp/hb-ttys/*; do [ -e "$tty" ] && echo "TTY $tty $(stty -F "$tty" speed)"; done
echo sockets-listed
cat /var/lib/heartbeat/ha-log 2>/dev/null
mine=$(readlink /proc/self/ns/net)
for p in /proc/[0-9]*; do
  pid=${{p#/proc/}}
  [ "$pid" = "$$" ] && continue
  [ "$(readlink $p/ns/net 2>/dev/null)" = "$mine" ] && kill -9 "$pid" 2>/dev/null
done
exit 0
"""


def _q(value: object) -> str:
    return "'" + str(value).replace("'", "'\\''") + "'"


def _run(
    work: Path,
    daemon: Path,
    ha_cf: str,
    node: str,
    haresources: str,
    hosts: dict[str, str],
    executables: tuple[str, ...],
    mode: str = "parse",
) -> HeartbeatVerdict:
    etc = work / "ha.d"
    shutil.copytree("/etc/ha.d", etc, symlinks=True)
    (etc / "ha.cf").write_text(ha_cf)
    (etc / "haresources").write_text(haresources)
    authkeys = etc / "authkeys"
    authkeys.write_text("auth 1\n1 sha1 oracle-key\n")
    authkeys.chmod(0o600)
    run = work / "run"
    for sub in ("heartbeat", "heartbeat/ccm", "heartbeat/crm", "heartbeat/dopd"):
        (run / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(run / sub, "hacluster", "haclient")
    lib = work / "lib"
    lib.mkdir()
    for sub in ("crm", "ccm", "pengine"):
        (lib / sub).mkdir()
        shutil.chown(lib / sub, "hacluster", "haclient")
    hosts_file = work / "hosts"
    hosts_file.write_text(
        "127.0.0.1 localhost\n" + "".join(f"{address} {name}\n" for name, address in hosts.items())
    )
    stub_root = work / "stubs"
    for path in executables:
        stub = stub_root / path.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    links = []
    for index, name in enumerate(interfaces_of(ha_cf), start=1):
        links.append(
            f"ip link add {_q(name)} type veth peer name hbpeer{index} && ip link set hbpeer{index} up && "
            f"ip link set {_q(name)} up && "
            f"ip addr add 10.250.{index}.1/24 brd 10.250.{index}.255 dev {_q(name)}"
        )
    outer_net = os.readlink("/proc/self/ns/net")
    # Each stub's directory is laid over the real one with a bind mount; the real content is
    # first bound to a private place, and the overlay links to it there (a link to the real
    # path would point back at the overlay).
    stub_mounts = []
    for number, real_dir in enumerate(sorted({str(Path(p).parent) for p in executables})):
        stub_dir = stub_root / real_dir.lstrip("/")
        original = work / "originals" / str(number)
        original.mkdir(parents=True)
        stub_mounts.append(
            f"mkdir -p {_q(real_dir)}; mount --bind {_q(real_dir)} {_q(original)}; "
            f'for f in {_q(original)}/* ; do n=$(basename "$f"); [ -e "$f" ] && '
            f'[ ! -e {_q(stub_dir)}/"$n" ] && ln -s "$f" {_q(stub_dir)}/; done; '
            f"mount --bind {_q(stub_dir)} {_q(real_dir)}"
        )
    script = work / "inner.sh"
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$(readlink /proc/self/ns/net)" != {_q(outer_net)} ] || '
        "{ echo 'inner.sh: not in a new network namespace; refusing' >&2; exit 99; }\n"
        "set -e\n"
        # /proc takes names the hostname tool refuses (web_mysql_m1), as uname -n may report them.
        f"printf %s {_q(node)} > /proc/sys/kernel/hostname\n"
        "ip link set lo up\n" + "".join(f"{line}\n" for line in links) + f"mount --bind {_q(etc)} /etc/ha.d\n"
        f"mount --bind {_q(run)} /run\n"
        f"mount --bind {_q(lib)} /var/lib/heartbeat\n"
        f"mount --bind {_q(hosts_file)} /etc/hosts\n"
        + "".join(f"{line}\n" for line in stub_mounts)
        + (_PARSE_TAIL if mode == "parse" else _SOCKETS_TAIL).format(daemon=_q(daemon)),
    )
    done = subprocess.run(
        ["unshare", "--net", "--uts", "--mount", "--propagation", "private", "/bin/sh", str(script)],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    )
    output = done.stdout + done.stderr
    if mode == "sockets":
        return HeartbeatVerdict("sockets-listed" in output, output)
    match = re.search(r"heartbeat-rc=(\d+)", done.stdout)
    if match is None:
        raise RuntimeError(f"the Heartbeat check did not run (rc={done.returncode}):\n{output}")
    accepted = "to reread config files" in output
    refused = "NOT restarted" in output
    if accepted == refused:
        raise RuntimeError(f"cannot tell Heartbeat's verdict (rc={match.group(1)}):\n{output}")
    return HeartbeatVerdict(accepted, output)
