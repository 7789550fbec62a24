"""Run one real Linux-HA Heartbeat 3.0.6 daemon inside an existing network namespace.

Theory of operation (see heartbeat-protocol.md §16): the daemon reads /etc/ha.d and writes
/run and /var/lib/heartbeat, and its node name must equal `uname -n`.  To run several on one
machine, each node is started as

    ip netns exec NS unshare --uts --mount --propagation private /bin/sh inner.sh

so it gets the namespace's network, a private hostname and a private mount table.  inner.sh
first checks that it really is inside NS (if `unshare` were skipped by mistake, `hostname`
and `mount` would change the host), then sets the hostname and bind-mounts the node's own
copies of /etc/ha.d, /run and /var/lib/heartbeat from its work directory, then execs the
daemon, which daemonizes itself.

Everything the node owns lives in `workdir`; nothing is written to the host's /etc.  (The
§16 recipe used /etc/netns/NS/ha.d, which `ip netns exec` bind-mounts over /etc/ha.d; a bind
mount inside the private mount namespace does the same without a global file to clean up.)
The daemon's processes are recognised by their mount namespace, which is unique to the
node, so `kill()` finds every child (FIFO reader, medium readers/writers, resource scripts)
even after they are reparented.  When the last of them exits, the mount namespace and its
bind mounts vanish with it.

One node per network namespace: Heartbeat binds its UDP port on every interface there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

HA_LOG_INNER = "/var/lib/heartbeat/ha-log"
_PID_FILE_INNER = "heartbeat.pid"  # in /run, i.e. workdir/run
_DAEMON_CANDIDATES = (
    "/usr/libexec/heartbeat/heartbeat",  # Debian 12
    "/usr/lib/heartbeat/heartbeat",  # older Debian and Ubuntu
    "/usr/lib64/heartbeat/heartbeat",
)
HEARTBEAT_CL_STATUS = "/usr/bin/cl_status"
_TOOLS = ("ip", "unshare", "nsenter", HEARTBEAT_CL_STATUS, "hostname", "mount")
# Files a node must create for itself: copying the host's would give both nodes one UUID.
_LIB_SKIP = ("hb_uuid", "hb_generation", "ha-log", "ha-debug", "fifo", "delhostcache", "hostcache")


def heartbeat_daemon_path() -> Path | None:
    """The installed heartbeat master binary, or None."""
    for candidate in _DAEMON_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def heartbeat_available() -> str | None:
    """None when a real Heartbeat node can run here, else why not (for a skip or fail message)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, mount namespaces, heartbeat daemon)"
    if heartbeat_daemon_path() is None:
        return (
            f"heartbeat daemon not found in {', '.join(_DAEMON_CANDIDATES)}; "
            "install it with `bash scripts/install-heartbeat.sh`"
        )
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        return f"tools missing from PATH: {' '.join(missing)}; install iproute2, util-linux and heartbeat"
    try:
        import pwd

        pwd.getpwnam("hacluster")
    except KeyError:
        return "user hacluster missing (created by cluster-glue); run `bash scripts/install-heartbeat.sh`"
    return None


def make_ha_cf(
    *,
    nodes: list[str],
    interfaces: list[str],
    keepalive_ms: int = 200,
    deadtime_ms: int = 1000,
    warntime_ms: int | None = None,
    initdead_ms: int | None = None,
    udpport: int = 694,
    extra: tuple[str, ...] = (),
) -> str:
    """An ha.cf for a bcast lab node; `extra` lines go before the media lines.

    initdead defaults to 2 × deadtime (at least 2 s) rather than Heartbeat's 12 s for short
    deadtimes, so a node that starts alone reaches comm-up quickly; Heartbeat only warns.
    """
    if initdead_ms is None:
        initdead_ms = max(2 * deadtime_ms, 2000)
    lines = [
        f"logfile {HA_LOG_INNER}",
        "logfacility none",
        "use_logd no",
        "crm no",
        f"keepalive {keepalive_ms}ms",
        f"deadtime {deadtime_ms}ms",
        f"initdead {initdead_ms}ms",
    ]
    if warntime_ms is not None:
        lines.append(f"warntime {warntime_ms}ms")
    lines.extend(extra)
    # udpport must precede the media lines: the bcast plugin reads it while parsing its line.
    lines.append(f"udpport {udpport}")
    lines.extend(f"bcast {interface}" for interface in interfaces)
    lines.extend(f"node {node}" for node in nodes)
    return "\n".join(lines) + "\n"


def make_authkeys(key: str, method: str = "sha1", index: int = 1) -> str:
    """An authkeys file using one key (methods: crc, md5, sha1)."""
    return f"auth {index}\n{index} {method} {key}\n"


def _mount_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:  # gone, or not ours to inspect (PID 1 in some sandboxes)
        return None


def _pids_in_mount_ns(mount_ns: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _mount_ns(int(entry)) == mount_ns:
            pids.append(int(entry))
    return pids


def _is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class HeartbeatNode:
    """One real Heartbeat daemon in an existing network namespace, with state under workdir."""

    def __init__(
        self,
        netns: str,
        node_name: str,
        workdir: Path,
        ha_cf: str,
        authkeys: str,
        haresources: str = "",
    ) -> None:
        self.netns = netns
        self.node_name = node_name
        self.workdir = Path(workdir)
        self.ha_cf = ha_cf
        self.authkeys = authkeys
        self.haresources = haresources
        self._master_pid: int | None = None
        self._mount_ns: str | None = None

    # -- paths -----------------------------------------------------------------------------
    @property
    def etc_dir(self) -> Path:
        return self.workdir / "ha.d"

    @property
    def run_dir(self) -> Path:
        return self.workdir / "run"

    @property
    def lib_dir(self) -> Path:
        return self.workdir / "lib"

    @property
    def start_output_path(self) -> Path:
        return self.workdir / "start.out"

    def host_path(self, inner: str) -> Path:
        """Where a path the daemon sees (/var/lib/heartbeat/…, /run/…) lives on the host."""
        for prefix, outer in (
            ("/var/lib/heartbeat", self.lib_dir),
            ("/var/run", self.run_dir),
            ("/run", self.run_dir),
            ("/etc/ha.d", self.etc_dir),
        ):
            if inner == prefix or inner.startswith(prefix + "/"):
                return outer / inner[len(prefix) :].lstrip("/")
        return Path(inner)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def master_pid(self) -> int:
        if self._master_pid is None:
            raise RuntimeError(f"heartbeat node {self.node_name} is not started; call start() first")
        return self._master_pid

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the daemon; return once its master process is running and wrote its pid file."""
        reason = heartbeat_available()
        if reason is not None:
            raise RuntimeError(f"cannot start heartbeat node {self.node_name}: {reason}")
        if not Path("/run/netns", self.netns).exists():
            raise RuntimeError(
                f"network namespace {self.netns!r} does not exist (no /run/netns/{self.netns}); "
                "create it with `ip netns add` before starting the node"
            )
        if self._master_pid is not None and self.processes():
            raise RuntimeError(f"heartbeat node {self.node_name} is already running pid={self._master_pid}")
        self._prepare_dirs()
        daemon = heartbeat_daemon_path()
        assert daemon is not None
        inner = self.write_inner_script(daemon)
        pid_file = self.run_dir / _PID_FILE_INNER
        pid_file.unlink(missing_ok=True)
        command = [
            "ip", "netns", "exec", self.netns,
            "unshare", "--uts", "--mount", "--propagation", "private",
            "/bin/sh", str(inner),
        ]  # fmt: skip
        # Output goes to a file, not a pipe: the daemonized child may keep the descriptors.
        with self.start_output_path.open("ab") as out:
            launcher = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pid = self._read_pid_file()
            if pid is not None and _is_alive(pid):
                self._adopt_master(pid)
                launcher.wait(timeout=max(0.1, deadline - time.monotonic()))
                return
            if launcher.poll() not in (None, 0):
                break
            time.sleep(0.02)
        if launcher.poll() is None:
            launcher.kill()
        launcher.wait()
        raise RuntimeError(
            f"heartbeat node {self.node_name} in netns {self.netns} did not start within {timeout_s}s "
            f"(launcher rc={launcher.returncode}); output:\n{self.diagnostics()}"
        )

    def _prepare_dirs(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.etc_dir.exists():
            shutil.copytree("/etc/ha.d", self.etc_dir, symlinks=True)
        (self.etc_dir / "ha.cf").write_text(self.ha_cf)
        authkeys = self.etc_dir / "authkeys"
        authkeys.write_text(self.authkeys)
        os.chown(authkeys, 0, 0)
        authkeys.chmod(0o600)  # Heartbeat refuses an authkeys file others can read
        (self.etc_dir / "haresources").write_text(self.haresources)

        # /run: Heartbeat expects /run/heartbeat (and ccm/crm/dopd) owned by hacluster:haclient.
        self.run_dir.mkdir(mode=0o755, exist_ok=True)
        for sub in ("heartbeat", "heartbeat/ccm", "heartbeat/crm", "heartbeat/dopd"):
            path = self.run_dir / sub
            path.mkdir(mode=0o750, exist_ok=True)
            shutil.chown(path, "hacluster", "haclient")
            path.chmod(0o750)
        for sub in ("lock", "resource-agents"):
            (self.run_dir / sub).mkdir(mode=0o755, exist_ok=True)

        # /var/lib/heartbeat: kept across restarts of this node, so hb_generation grows as on
        # a real machine.  `cp -a` keeps the hacluster ownership of ccm/crm/pengine.
        if not self.lib_dir.exists():
            subprocess.run(["cp", "-a", "/var/lib/heartbeat", str(self.lib_dir)], check=True)
            for name in _LIB_SKIP:
                path = self.lib_dir / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)

    def write_inner_script(self, daemon: Path) -> Path:
        """Write workdir/inner.sh, which must only ever run under `ip netns exec NS unshare …`."""

        def q(value: object) -> str:
            return "'" + str(value).replace("'", "'\\''") + "'"

        # The guard must come first: hostname and mount are only safe inside the new namespaces.
        # Raising the memlock limit lets Heartbeat lock itself in memory as it would in production
        # (otherwise it logs "Cannot lock ourselves into memory" and runs anyway).
        script = self.workdir / "inner.sh"
        script.write_text(
            "#!/bin/sh\n"
            f'[ "$(ip netns identify $$)" = {q(self.netns)} ] || '
            f"{{ echo 'inner.sh: not inside netns {self.netns}; refusing to touch hostname/mounts' >&2; exit 1; }}\n"
            "set -e\n"
            "ulimit -l unlimited 2>/dev/null || true\n"
            f"hostname {q(self.node_name)}\n"
            f"mount --bind {q(self.etc_dir)} /etc/ha.d\n"
            f"mount --bind {q(self.run_dir)} /run\n"
            f"mount --bind {q(self.lib_dir)} /var/lib/heartbeat\n"
            f"exec {q(daemon)}\n"
        )
        return script

    def _read_pid_file(self) -> int | None:
        try:
            return int((self.run_dir / _PID_FILE_INNER).read_text().strip())
        except (OSError, ValueError):
            return None

    def _adopt_master(self, pid: int) -> None:
        """Record the master and check it really runs in the node's own namespaces."""
        mount_ns = _mount_ns(pid)
        assert mount_ns is not None, f"cannot read mount namespace of heartbeat pid={pid}"
        assert mount_ns != _mount_ns(os.getpid()), f"heartbeat pid={pid} shares the host's mount namespace"
        assert os.readlink(f"/proc/{pid}/ns/uts") != os.readlink("/proc/self/ns/uts"), (
            f"heartbeat pid={pid} shares the host's UTS namespace"
        )
        net_inode = os.stat(f"/proc/{pid}/ns/net").st_ino
        assert net_inode == os.stat(Path("/run/netns", self.netns)).st_ino, (
            f"heartbeat pid={pid} is not in netns {self.netns}"
        )
        self._master_pid = pid
        self._mount_ns = mount_ns

    def processes(self) -> list[int]:
        """Every live process of this node (all share its private mount namespace)."""
        if self._mount_ns is None:
            return []
        return [pid for pid in _pids_in_mount_ns(self._mount_ns) if _is_alive(pid)]

    @property
    def is_running(self) -> bool:
        return self._master_pid is not None and _is_alive(self._master_pid)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Graceful shutdown (SIGTERM to the master); SIGKILL whatever is left after timeout_s."""
        if self._master_pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._master_pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        # An exiting process leaves its mount namespace view (processes()) a moment before it is
        # gone: wait for the master itself too, or is_running can still be true right after.
        while (self.processes() or self.is_running) and time.monotonic() < deadline:
            time.sleep(0.05)
        leftovers = self.processes()
        self.kill()
        if leftovers:
            raise RuntimeError(
                f"heartbeat node {self.node_name} did not stop within {timeout_s}s after SIGTERM; "
                f"killed pids={leftovers}\n{self.diagnostics()}"
            )

    def kill(self) -> None:
        """SIGKILL every process of this node (a crash, as `kill -9 $(ip netns pids NS)`)."""
        for _ in range(50):
            pids = self.processes()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        raise RuntimeError(f"heartbeat node {self.node_name}: pids {self.processes()} survive SIGKILL")

    # -- inspection ------------------------------------------------------------------------
    def nsenter(self, *command: str, timeout_s: float = 10.0) -> subprocess.CompletedProcess[str]:
        """Run a command in the node's mount, UTS and network namespaces."""
        return subprocess.run(
            ["nsenter", "-t", str(self.master_pid), "-m", "-u", "-n", *command],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def cl_status(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`cl_status ARGS` as seen by this node; fails ("Cannot signon") until comm-up."""
        # Heartbeat's own cl_status, by path: hacluster installs a cl_status of its own.
        return self.nsenter(HEARTBEAT_CL_STATUS, *args)

    def wait_nodestatus(self, node: str, want: str, timeout_s: float) -> None:
        """Poll `cl_status nodestatus NODE` until it prints `want`, else raise TimeoutError."""
        deadline = time.monotonic() + timeout_s
        last = ""
        while True:
            result = self.cl_status("nodestatus", node)
            last = (result.stdout + result.stderr).strip()
            if result.stdout.strip() == want:
                return
            if not self.is_running:
                raise RuntimeError(
                    f"heartbeat node {self.node_name} died while waiting for {node}={want}\n{self.diagnostics()}"
                )
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"on {self.node_name}: cl_status nodestatus {node} is {last!r}, "
                    f"wanted {want!r} within {timeout_s}s\n{self.diagnostics()}"
                )
            time.sleep(0.05)

    def logfile_paths(self) -> list[Path]:
        """Host paths of the `logfile` and `debugfile` named in ha.cf."""
        paths = []
        for line in self.ha_cf.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) == 2 and words[0] in ("logfile", "debugfile"):
                paths.append(self.host_path(words[1]))
        return paths

    @property
    def log(self) -> str:
        """The daemon's logfile text (empty if ha.cf names none or nothing was written yet)."""
        texts = []
        for path in self.logfile_paths():
            with contextlib.suppress(OSError):
                texts.append(path.read_text(errors="replace"))
        return "".join(texts)

    def diagnostics(self, tail_lines: int = 40) -> str:
        """Launcher output and the log tail, for failure messages."""
        try:
            start_output = self.start_output_path.read_text(errors="replace")
        except OSError:
            start_output = ""
        log_tail = "\n".join(self.log.splitlines()[-tail_lines:])
        return (
            f"--- {self.node_name} launcher output ---\n{start_output.strip()}\n"
            f"--- {self.node_name} log tail ---\n{log_tail}"
        )
