"""Who may do what on the API, over real connections from processes of other uids and groups.

A real daemon (as root) has ``api_readonly_group`` set; ``hacrm`` runs under ``setpriv`` as
uids and gids nobody on the machine has, with the groups each case needs, so the daemon sees
them exactly as it would see real users (SO_PEERCRED, their supplementary groups).  Needs
root; the group names must exist (haclient comes with cluster-glue, a CI dependency).
"""

from __future__ import annotations

import grp
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from asuser import daemon, need_root, run_as, setpriv, shared_dir, spare_id
from test_daemon_shell import PY, wait_status, write_single_node

from hacluster.shell.access import proc_groups

FENCE_PASSWORD = "FencePw-aa81c3"
PLUGIN_PASSWORD = "PluginPw-51d0"
READERS = "users"
"""An existing group used as the read-only group (changing /etc/group is not the tests' business)."""


def group_id(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        pytest.fail(f"group {name} is missing; it comes with cluster-glue (apt-get install -y cluster-glue)")


@dataclass
class Cluster:
    root: Path
    hacf: Path
    sock: Path

    def hacrm(
        self, uid: int, gid: int, *args: str, groups: tuple[int, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        return run_as(uid, gid, [PY, "-m", "hacluster.cli.main", "--socket", str(self.sock), *args], groups)

    def audit(self) -> list[str]:
        return [line for line in (self.root / "ha-log").read_text().splitlines() if "api change " in line]

    def refusals(self) -> list[str]:
        return [line for line in (self.root / "ha-log").read_text().splitlines() if "api refused " in line]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    need_root()
    with shared_dir() as root:
        hacf = write_single_node(
            root,
            extra=f"api_readonly_group {READERS}\n"
            f"stonith_host * external/ipmi solo 10.0.0.12 operator {PLUGIN_PASSWORD} lanplus\n",
        )
        (root / "resources.crm").write_text(
            "primitive d ocf:hacluster:Dummy op monitor interval=1s timeout=5s\n"
            "primitive fence-solo stonith:fence_ipmilan params ip=10.0.0.11 username=admin "
            f"password={FENCE_PASSWORD} pcmk_host_list=solo\n"
            "property stonith-enabled=false\n"
        )
        with daemon(hacf):
            wait_status(root / "api.sock")
            yield Cluster(root, hacf, root / "api.sock")


@pytest.mark.root
def test_a_user_in_no_group_is_refused_everything(cluster: Cluster) -> None:
    uid = spare_id(10)
    done = cluster.hacrm(uid, uid, "status")
    assert done.returncode == 4, done.stderr
    assert "hacrm: error [ACCESS_DENIED]" in done.stderr
    assert f"uid {uid}" in done.stderr
    assert "may not use the hacluster API: run hacrm as root or as a member of group haclient" in done.stderr
    assert f"or of group {READERS} to read" in done.stderr
    assert cluster.hacrm(uid, uid, "node", "standby", "solo").returncode == 4
    assert not cluster.audit(), "a refused change is not a change"
    assert len([line for line in cluster.refusals() if f"uid={uid} " in line]) == 2


@pytest.mark.root
def test_a_refused_caller_gets_one_answer_and_the_connection_is_closed(cluster: Cluster) -> None:
    uid = spare_id(11)
    client = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
        's.sendall(b\'{"command":"ping"}\\n{"command":"ping"}\\n\')\n'
        "data=b''\n"
        "while chunk := s.recv(65536): data += chunk\n"
        "print(data.decode())\n"
    )
    done = run_as(uid, uid, [PY, "-c", client, str(cluster.sock)])
    answers = [json.loads(line) for line in done.stdout.split("\n") if line.strip()]
    assert [a["error"]["code"] for a in answers] == ["ACCESS_DENIED"], done.stdout + done.stderr


@pytest.mark.root
@pytest.mark.parametrize("as_primary", [False, True], ids=["supplementary", "primary"])
def test_a_read_only_member_reads_and_is_refused_changes(cluster: Cluster, as_primary: bool) -> None:
    uid, readers = spare_id(20 + as_primary), group_id(READERS)
    gid, groups = (readers, ()) if as_primary else (uid, (readers,))

    def hacrm(*args: str) -> subprocess.CompletedProcess[str]:
        return cluster.hacrm(uid, gid, *args, groups=groups)

    status = hacrm("status", "--json")
    assert status.returncode == 0, status.stderr
    seen = json.loads(status.stdout)
    assert seen["cluster"]["node"] == "solo"
    assert isinstance(seen["packets"]["dropped"]["unknown_key"], int), "redaction leaves counts alone"
    text = hacrm("status")
    assert (text.returncode, "solo" in text.stdout) == (0, True), text.stderr
    for args in (
        ("history",),
        ("resource", "why", "d"),
        ("simulate", "--fail", "d"),
        ("cl_status", "hbstatus"),
    ):
        done = hacrm(*args)
        assert done.returncode == 0, (args, done.stderr)
    # Explain answers and raw values are redacted for read-only callers.
    text = cluster.root / "empty.crm"
    text.write_text("property stonith-enabled=false\n")
    text.chmod(0o644)
    for args in (
        ("configure", "diff", str(text)),
        ("configure", "show"),
        ("cl_status", "hbparameter", "-p", "stonith_host"),
    ):
        done = hacrm(*args)
        assert done.returncode == 0, (args, done.stderr)
        for secret in (FENCE_PASSWORD, PLUGIN_PASSWORD):
            assert secret not in done.stdout + done.stderr, f"{secret} shown to a read-only caller by {args}"
    assert "<redacted>" in hacrm("configure", "show").stdout
    refused = hacrm("node", "standby", "solo")
    assert refused.returncode == 4
    assert f"uid {uid}" in refused.stderr
    assert "may only read (group users, api_readonly_group in ha.cf): node_standby changes the cluster" in (
        refused.stderr
    )
    for args in (("resource", "stop", "d"), ("stonith", "test", "fence-solo"), ("report", "/tmp/x.tar.gz")):
        assert hacrm(*args).returncode == 4, args
    assert not cluster.audit()
    assert any(f"uid={uid} " in line and "command=node_standby" in line for line in cluster.refusals())


@pytest.mark.root
def test_haclient_members_and_root_may_change_and_each_change_is_audited(cluster: Cluster) -> None:
    uid, haclient = spare_id(30), group_id("haclient")
    done = cluster.hacrm(uid, uid, "node", "standby", "solo", groups=(haclient,))
    assert done.returncode == 0, done.stderr
    done = cluster.hacrm(uid, uid, "node", "online", "solo", "--dry-run", groups=(haclient,))
    assert done.returncode == 0, done.stderr
    done = cluster.hacrm(0, 0, "node", "online", "solo")
    assert done.returncode == 0, done.stderr
    assert cluster.hacrm(uid, uid, "status", groups=(haclient,)).returncode == 0
    deadline = time.monotonic() + 5
    while len(cluster.audit()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = cluster.audit()
    assert len(lines) == 3, "one audit line per change request, none for reads:\n" + "\n".join(lines)
    pattern = r"api change uid={uid} user=\S+ pid=(\d+) command={command} args=(\S+) outcome={outcome}"
    first = re.search(pattern.format(uid=uid, command="node_standby", outcome="ok"), lines[0])
    assert first is not None, lines[0]
    assert json.loads(first.group(2)) == {"dry_run": False, "node": "solo"}
    assert int(first.group(1)) > 1
    assert re.search(pattern.format(uid=uid, command="node_online", outcome="dry-run"), lines[1]), lines[1]
    assert re.search(pattern.format(uid=0, command="node_online", outcome="ok"), lines[2]), lines[2]


@pytest.mark.root
def test_supplementary_groups_read_from_proc_are_the_peer_s(tmp_path: Path) -> None:
    # The fallback when the kernel cannot give SO_PEERGROUPS: /proc/PID/status of the peer.
    need_root()
    uid = spare_id(40)
    proc = subprocess.Popen([*setpriv(uid, uid, (29, 100)), "sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while proc_groups(proc.pid, uid, uid) != {29, 100} and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc_groups(proc.pid, uid, uid) == {29, 100}
        assert proc_groups(proc.pid, uid + 1, uid) == frozenset(), "another uid's pid lends no groups"
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.root
def test_the_daemon_s_own_user_has_full_access(tmp_path: Path) -> None:
    # `hacluster demo` runs the daemons as whoever runs it: that user operates them.
    need_root()
    uid = spare_id(50)
    with shared_dir(uid, uid) as root:
        hacf = write_single_node(root)
        with daemon(hacf, uid):
            wait_status(root / "api.sock")
            sock = str(root / "api.sock")
            mine = run_as(
                uid, uid, [PY, "-m", "hacluster.cli.main", "--socket", sock, "node", "standby", "solo"]
            )
            assert mine.returncode == 0, mine.stderr
            other = run_as(uid + 1, uid + 1, [PY, "-m", "hacluster.cli.main", "--socket", sock, "status"])
            assert other.returncode == 4, other.stderr


def test_peer_credentials_come_from_the_kernel() -> None:
    from hacluster.shell.access import peer_of

    left, right = socket.socketpair(socket.AF_UNIX)
    try:
        me = peer_of(left)
        assert (me.pid, me.uid, me.gid) == (os.getpid(), os.geteuid(), os.getegid())
        assert os.getegid() in me.groups
    finally:
        left.close()
        right.close()


def test_an_unknown_command_is_named_as_unknown_to_a_full_caller(tmp_path: Path) -> None:
    import asyncio

    from hacluster.shell.ipc import ApiServer

    async def scenario() -> list[dict[str, object]]:
        server = ApiServer(tmp_path / "api.sock", {"ping": lambda _r: {"pong": True}})
        await server.start()
        try:
            reader, writer = await asyncio.open_unix_connection(str(tmp_path / "api.sock"))
            writer.write(b'{"command":"pnig"}\n{"command":"ping"}\n')
            answers = [json.loads(await reader.readline()) for _ in range(2)]
            writer.close()
            await writer.wait_closed()
            return answers
        finally:
            await server.close()

    typo, ping = asyncio.run(scenario())
    assert typo["error"]["code"] == "UNKNOWN_COMMAND"  # type: ignore[index]
    assert "known: ping" in typo["error"]["message"]  # type: ignore[index]
    assert ping == {"ok": True, "result": {"pong": True}}
