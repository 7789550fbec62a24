"""Filesystem: mount a filesystem on the active node and make sure it is gone from the others.

Theory of operation: mounting and fsck go through the ``mount``/``fsck`` commands (not the
hot path; they know every fstype's quirks).  The mount table is read from
``/proc/self/mountinfo``: the daemon may run each node in its own mount namespace, and
``/proc/self`` is the one this process and its children see.

Stop is the action that must not fail (a failed stop means fencing), so after a failed
``umount`` it finds the processes using the mount with psutil (open files, cwd, root, exe,
memory maps) and signals them: SIGTERM during the first half of the op timeout, SIGKILL in
the second, retrying the unmount once a second.  Only a mount that survives all that is 1.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import secrets
import signal
import stat
import subprocess
import time
from collections.abc import Mapping
from typing import Final, NamedTuple

from hacluster.agents.ocf import RC, Action, Agent, AgentError, Context, Parameter

logger = logging.getLogger(__name__)

NO_FSCK_TYPES: Final = frozenset(
    [
        "nfs",
        "nfs4",
        "cifs",
        "smbfs",
        "tmpfs",
        "ramfs",
        "xfs",
        "btrfs",
        "zfs",
        "gfs2",
        "ocfs2",
        "none",
        "bind",
        "glusterfs",
        "ceph",
        "cephfs",
        "lustre",
        "fuse.sshfs",
        "iso9660",
        "udf",
        "vfat",
        "squashfs",
        "overlay",
    ]
)
"""Filesystems where a boot-time ``fsck -p`` is pointless or harmful (journaled elsewhere, remote)."""
FORCE_UMOUNT_TYPES: Final = frozenset(["nfs", "nfs4", "cifs", "smbfs", "efs"])
MONITOR_DEPTHS: Final = (0, 10, 20)
COMMAND_TIMEOUT_S: Final = 120
BASE_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Mount(NamedTuple):
    source: str
    mountpoint: str
    fstype: str


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo octal."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1 : i + 4]) == 3 and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def read_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[Mount]:
    """Mounts visible to this process, in mount order."""
    mounts = []
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) < 5 or len(tail) < 2:
                continue
            mounts.append(Mount(_unescape(tail[1]), _unescape(fields[4]), tail[0]))
    return mounts


def _run(argv: list[str], env: Mapping[str, str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    child_env = {"PATH": env.get("PATH") or BASE_PATH, "LC_ALL": "C"}
    return subprocess.run(
        argv, capture_output=True, text=True, env=child_env, cwd="/", timeout=max(timeout_s, 1), check=False
    )


def _is_under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def processes_using(directory: str) -> dict[int, str]:
    """Processes with a file, cwd, root, executable or mapping under ``directory``: pid → name.

    Walks /proc through psutil; never touches the filesystem itself, so it does not hang on a
    dead NFS server the way ``fuser -m`` can.  This process is never included.
    """
    import psutil  # type: ignore[import-untyped]  # lazy: meta-data must not need it

    found: dict[int, str] = {}
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "name"]):
        if proc.pid == me:
            continue
        paths: list[str] = []
        with contextlib.suppress(psutil.Error, OSError):
            paths.append(proc.cwd())
        with contextlib.suppress(psutil.Error, OSError):
            paths.append(proc.exe())
        with contextlib.suppress(psutil.Error, OSError):
            paths.append(os.readlink(f"/proc/{proc.pid}/root"))
        with contextlib.suppress(psutil.Error, OSError):
            paths.extend(f.path for f in proc.open_files())
        with contextlib.suppress(psutil.Error, OSError):
            paths.extend(m.path for m in proc.memory_maps(grouped=True))
        if any(p and _is_under(p, directory) for p in paths):
            found[proc.pid] = proc.info["name"] or "?"
    return found


class FilesystemAgent(Agent):
    name = "Filesystem"
    version = "1.0"
    shortdesc = "Manages a mounted filesystem"
    longdesc = (
        "Mounts a block device (or any source mount understands) on a directory. Stop unmounts "
        "it, killing processes that keep it busy if needed. Monitor depth 10 reads from the "
        "device, depth 20 writes and reads back a status file on the filesystem."
    )
    parameters = (
        Parameter(
            "device",
            "Block device",
            "The device to mount: /dev/..., LABEL=..., UUID=..., or host:/path.",
            required=True,
        ),
        Parameter(
            "directory", "Mount point", "Where to mount; created if missing.", required=True, unique=True
        ),
        Parameter("fstype", "Filesystem type", "Type passed to mount -t; empty lets mount detect it."),
        Parameter("options", "Mount options", "Options passed to mount -o, e.g. noatime,ro."),
        Parameter(
            "run_fsck",
            "Run fsck",
            "auto: fsck before mounting unless the filesystem type never needs it; force: always; no: never.",
            default="auto",
        ),
        Parameter(
            "force_unmount",
            "Kill users on stop",
            "true or safe: kill processes using the mount when unmounting fails (found via /proc, "
            "which does not block on dead network filesystems); false: never kill.",
            default="true",
        ),
        Parameter(
            "statusfile_prefix",
            "Status file prefix",
            "Path, relative to the mount point, of the status files written by depth-20 monitors.",
            default=".Filesystem_status/",
        ),
    )
    actions = (
        Action("start", 60_000),
        Action("stop", 60_000),
        Action("monitor", 40_000, interval_ms=20_000, depth=0),
        Action("meta-data", 5_000),
        Action("validate-all", 5_000),
    )

    # ------------------------------------------------------------------ configuration

    def _directory(self, ctx: Context) -> str:
        directory = ctx.param("directory").strip()
        if not directory:
            raise AgentError(RC.ERR_CONFIGURED, "parameter directory is required")
        if not os.path.isabs(directory):
            raise AgentError(RC.ERR_CONFIGURED, f"directory={directory!r} must be an absolute path")
        directory = os.path.normpath(directory)
        # Compare with the mount table using the real path, as the kernel records it.
        return os.path.realpath(directory) if os.path.exists(directory) else directory

    def _device(self, ctx: Context) -> str:
        device = ctx.param("device").strip()
        if not device:
            raise AgentError(RC.ERR_CONFIGURED, "parameter device is required")
        return device

    def validate_all(self, ctx: Context) -> int:
        self._directory(ctx)
        self._device(ctx)
        ctx.choice("run_fsck", ("auto", "force", "no"))
        ctx.choice("force_unmount", ("true", "safe", "false"))
        prefix = ctx.param("statusfile_prefix")
        if os.path.isabs(prefix) or ".." in prefix.split("/"):
            raise AgentError(
                RC.ERR_CONFIGURED, f"statusfile_prefix={prefix!r} must be a relative path inside the mount"
            )
        fstype = ctx.param("fstype").strip()
        if fstype and not self._fstype_supported(fstype):
            raise AgentError(RC.ERR_INSTALLED, f"filesystem type {fstype} is not supported by this kernel")
        return RC.SUCCESS

    @staticmethod
    def _fstype_supported(fstype: str) -> bool:
        if fstype in NO_FSCK_TYPES or fstype.startswith("fuse"):
            return True  # network, pseudo or helper-driven types: mount.<type> decides
        with contextlib.suppress(OSError), open("/proc/filesystems") as f:
            if fstype in {line.split()[-1] for line in f if line.strip()}:
                return True
        release = os.uname().release
        return any(
            os.path.exists(f"/lib/modules/{release}/kernel/fs/{fstype}/{fstype}.ko{ext}")
            for ext in ("", ".xz", ".zst")
        )

    def _mount_of(self, directory: str) -> Mount | None:
        for mount in reversed(read_mounts()):
            if mount.mountpoint == directory:
                return mount
        return None

    def _status_file(self, ctx: Context, directory: str) -> str:
        name = f"{ctx.param('statusfile_prefix')}{ctx.instance}_{ctx.node_name}"
        return os.path.join(directory, name)

    # ------------------------------------------------------------------ start

    def start(self, ctx: Context) -> int:
        self.validate_all(ctx)
        directory, device = self._directory(ctx), self._device(ctx)
        below = [
            m.mountpoint
            for m in read_mounts()
            if m.mountpoint != directory and _is_under(m.mountpoint, directory)
        ]
        if below:
            raise AgentError(
                RC.ERR_CONFIGURED, f"{below[0]} is mounted below {directory}; refusing to mount over it"
            )
        if self._mount_of(directory) is not None:
            return RC.SUCCESS
        if device.startswith("/") and not os.path.exists(device):
            raise AgentError(RC.ERR_INSTALLED, f"device {device} does not exist on this node")
        self._fsck(ctx, device)
        os.makedirs(directory, exist_ok=True)
        argv = ["mount"]
        fstype = ctx.param("fstype").strip()
        if fstype:
            argv += ["-t", fstype]
        if ctx.param("options").strip():
            argv += ["-o", ctx.param("options").strip()]
        done = _run([*argv, device, directory], ctx.env, ctx.remaining_ms() / 1000)
        if done.returncode != 0:
            raise AgentError(RC.ERR_GENERIC, f"mount {device} on {directory} failed: {done.stderr.strip()}")
        logger.info("filesystem mounted device=%s directory=%s", device, directory)
        return RC.SUCCESS

    def _fsck(self, ctx: Context, device: str) -> None:
        mode, fstype = ctx.param("run_fsck"), ctx.param("fstype").strip()
        if mode == "no":
            return
        if mode == "auto":
            try:
                is_block = stat.S_ISBLK(os.stat(device).st_mode)
            except OSError:
                is_block = False
            if fstype in NO_FSCK_TYPES or not is_block:
                return
        argv = ["fsck", "-p", *(["-t", fstype] if fstype else []), device]
        done = _run(argv, ctx.env, ctx.remaining_ms() / 1000)
        # fsck: 0 clean, 1 errors corrected, 2 reboot advised, >= 4 errors left / usage / cancelled.
        if done.returncode >= 4:
            detail = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
            raise AgentError(RC.ERR_GENERIC, f"fsck of {device} failed rc={done.returncode}: {detail[0]}")

    # ------------------------------------------------------------------ stop

    def stop(self, ctx: Context) -> int:
        try:
            directory = self._directory(ctx)
            force = ctx.choice("force_unmount", ("true", "safe", "false"))
        except AgentError as exc:
            logger.warning(
                "filesystem stop treated as stopped instance=%s reason=%s", ctx.instance, exc.reason
            )
            return RC.SUCCESS
        mounts = [m for m in read_mounts() if _is_under(m.mountpoint, directory)]
        if not any(m.mountpoint == directory for m in mounts):
            return RC.SUCCESS
        with contextlib.suppress(OSError):
            os.unlink(self._status_file(ctx, directory))
        # Submounts first, deepest first; the mount itself last.
        for mountpoint in sorted({m.mountpoint for m in mounts}, key=lambda p: (-p.count("/"), p)):
            fstype = next(m.fstype for m in reversed(mounts) if m.mountpoint == mountpoint)
            self._unmount(ctx, mountpoint, fstype, kill=force != "false")
        return RC.SUCCESS

    def _unmount(self, ctx: Context, mountpoint: str, fstype: str, *, kill: bool) -> None:
        """Unmount, signalling users between tries; AgentError 1 if it is still mounted at the deadline."""
        argv = ["umount", *(["-f"] if fstype in FORCE_UMOUNT_TYPES else []), mountpoint]
        budget_ms = max(ctx.remaining_ms() - 1000, 2000)
        deadline = time.monotonic() + budget_ms / 1000
        kill_after = time.monotonic() + budget_ms / 2000
        last_error = ""
        while True:
            if self._mount_of(mountpoint) is None:
                return
            done = _run(argv, ctx.env, max(deadline - time.monotonic(), 1))
            if done.returncode == 0 and self._mount_of(mountpoint) is None:
                logger.info("filesystem unmounted directory=%s", mountpoint)
                return
            last_error = done.stderr.strip()
            if time.monotonic() >= deadline:
                break
            if kill:
                sig = signal.SIGTERM if time.monotonic() < kill_after else signal.SIGKILL
                for pid, name in processes_using(mountpoint).items():
                    logger.warning(
                        "killing user of mount pid=%d name=%s signal=%s dir=%s",
                        pid,
                        name,
                        sig.name,
                        mountpoint,
                    )
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, sig)
            time.sleep(min(1.0, max(deadline - time.monotonic(), 0.05)))
        raise AgentError(RC.ERR_GENERIC, f"cannot unmount {mountpoint}: {last_error or 'still mounted'}")

    # ------------------------------------------------------------------ monitor

    def monitor(self, ctx: Context) -> int:
        try:
            directory = self._directory(ctx)
        except AgentError:
            if ctx.is_probe:
                return RC.NOT_RUNNING
            raise
        mount = self._mount_of(directory)
        if mount is None:
            return RC.NOT_RUNNING
        if ctx.check_level not in MONITOR_DEPTHS:
            raise AgentError(
                RC.ERR_CONFIGURED, f"OCF_CHECK_LEVEL {ctx.check_level} is unsupported; use 0, 10 or 20"
            )
        if ctx.check_level >= 10:
            self._read_device(mount.source)
        if ctx.check_level >= 20:
            self._write_status(ctx, directory)
        return RC.SUCCESS

    @staticmethod
    def _read_device(device: str) -> None:
        """Read 4 KiB with O_DIRECT (past the page cache) from a block device; others are skipped."""
        try:
            if not stat.S_ISBLK(os.stat(device).st_mode):
                return
        except OSError as exc:
            raise AgentError(RC.ERR_GENERIC, f"device {device} of the mount is gone: {exc}") from None
        buffer = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT requires
        try:
            fd = os.open(device, os.O_RDONLY | os.O_DIRECT)
            try:
                got = os.readv(fd, [buffer])
            finally:
                os.close(fd)
        except OSError as exc:
            raise AgentError(RC.ERR_GENERIC, f"cannot read from {device}: {exc}") from None
        finally:
            buffer.close()
        if got <= 0:
            raise AgentError(RC.ERR_GENERIC, f"read from {device} returned nothing")

    def _write_status(self, ctx: Context, directory: str) -> None:
        path = self._status_file(ctx, directory)
        token = f"{ctx.node_name} {time.time():.3f} {secrets.token_hex(8)}\n"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(token)
                f.flush()
                os.fsync(f.fileno())
            with open(path) as f:
                back = f.read()
        except OSError as exc:
            raise AgentError(RC.ERR_GENERIC, f"status file {path} write/read failed: {exc}") from None
        if back != token:
            raise AgentError(RC.ERR_GENERIC, f"status file {path} read back different content")
