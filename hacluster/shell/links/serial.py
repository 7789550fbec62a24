"""Serial links (``serial /dev/ttyS0``): classic-form frames over a null-modem cable.

Theory of operation (reference §9): the line runs raw 8N1 at ``spec.baud`` with RTS/CTS
flow control (not on a pty, which has none).  Senders write the classic form
``>>>\\n…<<<\\n\\0`` exactly as the codec made it.  The receiver strips the 8th bit and
ignores CR (Heartbeat's ISTRIP and IGNCR, done here in software so a pty behaves like a
real port) and NUL (the sender's terminator), skips everything up to a ``>>>`` line, collects
lines up to ``<<<`` and delivers ``>>>\\n…<<<\\n``, byte for byte what the sender framed, so the
codec can check the inner ``auth=`` field.  A frame longer than ``MAX_FRAME_BYTES`` is
dropped and counted as oversize; the reader resynchronises on the next ``>>>`` line.

The port's descriptor is non-blocking and watched with ``loop.add_reader``; writes go
through a bounded queue drained in ``CHUNK_BYTES`` pieces by ``loop.add_writer``, so
``send`` never blocks even when flow control holds the line.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import stat

import serial  # type: ignore[import-untyped]  # pyserial ships no type hints

from hacluster.core.settings import LinkKind, LinkSpec
from hacluster.shell.links.base import Deliver, Link, LinkOpenError

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024
CHUNK_BYTES = 512
"""Heartbeat writes 512-byte chunks; we keep the size so a peer's reader sees the same bursts."""
WRITE_QUEUE_BYTES = 256 * 1024
"""Beyond this the line is clearly not draining (cable out, peer off); new messages are dropped."""
READ_BYTES = 4096
READ_RETRY_MS = 1000
"""After a read error (pty peer gone, USB adapter unplugged) the reader pauses this long."""

FRAME_START = b">>>"
FRAME_END = b"<<<"
_STRIP_8TH_BIT = bytes(b & 0x7F for b in range(256))


class FrameReader:
    """Turns a serial byte stream into classic frames; pure, so it is easy to reason about.

    ``feed`` returns every frame completed by the new bytes.  ``oversize`` and ``garbage``
    count dropped frames and bytes-without-a-frame; ``restarted`` counts frames cut short by
    a new ``>>>`` line.
    """

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.oversize = 0
        self.restarted = 0
        self._partial = bytearray()
        self._frame: list[bytes] | None = None
        self._frame_bytes = 0

    def feed(self, data: bytes) -> list[bytes]:
        data = data.translate(_STRIP_8TH_BIT).translate(None, b"\r\0")
        self._partial += data
        frames: list[bytes] = []
        start = 0
        while (newline := self._partial.find(b"\n", start)) >= 0:
            frame = self._on_line(bytes(self._partial[start:newline]))
            if frame is not None:
                frames.append(frame)
            start = newline + 1
        del self._partial[:start]
        if len(self._partial) + self._frame_bytes > self.max_frame_bytes:
            # A line that never ends: drop it, and the frame it belongs to, if any.
            if self._frame is not None:
                self._drop_oversize()
            self._partial.clear()
        return frames

    def _on_line(self, line: bytes) -> bytes | None:
        if line == FRAME_START:
            if self._frame is not None:
                self.restarted += 1
            self._frame = [FRAME_START + b"\n"]
            self._frame_bytes = len(FRAME_START) + 1
            return None
        if self._frame is None:
            return None  # noise between frames (or the tail of a dropped one)
        self._frame.append(line + b"\n")
        self._frame_bytes += len(line) + 1
        if line == FRAME_END:
            frame = b"".join(self._frame)
            self._frame = None
            self._frame_bytes = 0
            return frame
        if self._frame_bytes > self.max_frame_bytes:
            self._drop_oversize()
        return None

    def _drop_oversize(self) -> None:
        self.oversize += 1
        self._frame = None
        self._frame_bytes = 0


def is_pty(device: str) -> bool:
    """Pseudo-terminals (socat, tests) have no RTS/CTS lines to flow-control with."""
    real = os.path.realpath(device)
    if real.startswith("/dev/pts/") or real == "/dev/ptmx":
        return True
    try:
        mode = os.stat(real)
    except OSError:
        return False
    # Unix98 pty slaves use majors 136-143.
    return stat.S_ISCHR(mode.st_mode) and 136 <= os.major(mode.st_rdev) <= 143


class SerialLink(Link):
    def __init__(self, spec: LinkSpec) -> None:
        assert spec.kind is LinkKind.SERIAL, spec.kind
        super().__init__(spec)
        self._port: serial.Serial | None = None
        self._fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Deliver | None = None
        self._reader = FrameReader()
        self._queue: collections.deque[memoryview] = collections.deque()
        self._queued_bytes = 0
        self._writing = False
        self._reader_retry: asyncio.TimerHandle | None = None

    async def open(self, deliver: Deliver) -> None:
        assert self._port is None, "open() called twice"
        spec = self.spec
        rtscts = not is_pty(spec.device)
        try:
            port = serial.Serial(
                spec.device,
                spec.baud,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
                rtscts=rtscts,
                timeout=0,
                write_timeout=0,
                exclusive=True,
            )
        except (serial.SerialException, ValueError) as exc:
            raise LinkOpenError(
                f"link {spec.name}: cannot open serial device {spec.device} at {spec.baud} baud: "
                f"{exc}; check the device path, that nothing else (getty, another daemon) holds it, "
                "and the baud rate"
            ) from exc
        port.reset_input_buffer()
        self._port = port
        self._fd = port.fileno()
        os.set_blocking(self._fd, False)
        self._loop = asyncio.get_running_loop()
        self._deliver = deliver
        self._loop.add_reader(self._fd, self._on_readable)
        logger.info(
            "link open link=%s kind=serial device=%s baud=%d rtscts=%s",
            self.name,
            spec.device,
            spec.baud,
            rtscts,
        )

    # --- receiving -----------------------------------------------------------------------

    def _on_readable(self) -> None:
        while self._deliver is not None:
            try:
                data = os.read(self._fd, READ_BYTES)
            except BlockingIOError:
                return
            except OSError as exc:
                self._pause_reader(f"read {self.spec.device}: {exc.strerror or exc}")
                return
            if not data:
                self._pause_reader(f"read {self.spec.device}: end of file")
                return
            oversize_before = self._reader.oversize
            frames = self._reader.feed(data)
            self._oversize += self._reader.oversize - oversize_before
            for frame in frames:
                self._received += 1
                self._deliver(self.name, frame)
            if len(data) < READ_BYTES:
                return

    def _pause_reader(self, error: str) -> None:
        """Stop watching the descriptor for a while: a hung-up pty is readable forever."""
        self._count_receive_error(error)
        assert self._loop is not None
        self._loop.remove_reader(self._fd)
        self._reader_retry = self._loop.call_later(READ_RETRY_MS / 1000, self._resume_reader)

    def _resume_reader(self) -> None:
        self._reader_retry = None
        if self._deliver is not None and self._loop is not None:
            self._loop.add_reader(self._fd, self._on_readable)

    # --- sending -------------------------------------------------------------------------

    def send(self, data: bytes, classic: bytes) -> None:
        if self._port is None:
            self._count_send_error("link is not open")
            return
        if not classic:
            self._count_send_error("no classic form given for a serial link")
            return
        if len(classic) > MAX_FRAME_BYTES:
            self._oversize += 1
            self._count_send_error(f"frame of {len(classic)} bytes exceeds {MAX_FRAME_BYTES}")
            return
        if self._queued_bytes + len(classic) > WRITE_QUEUE_BYTES:
            self._count_send_error(f"write queue full ({self._queued_bytes} bytes): line not draining")
            return
        self._queue.append(memoryview(classic))
        self._queued_bytes += len(classic)
        if not self._writing:
            self._on_writable()

    def _on_writable(self) -> None:
        while self._queue:
            head = self._queue[0]
            try:
                written = os.write(self._fd, head[:CHUNK_BYTES])
            except BlockingIOError:
                break
            except OSError as exc:
                # The rest of this frame is lost; the peer resynchronises on the next ">>>".
                self._queue.popleft()
                self._queued_bytes -= len(head)
                self._count_send_error(f"write {self.spec.device}: {exc.strerror or exc}")
                continue
            self._queued_bytes -= written
            if written == len(head):
                self._queue.popleft()
                self._sent += 1
            else:
                self._queue[0] = head[written:]
        self._set_writing(bool(self._queue))

    def _set_writing(self, writing: bool) -> None:
        if writing == self._writing:
            return
        assert self._loop is not None
        if writing:
            self._loop.add_writer(self._fd, self._on_writable)
        else:
            self._loop.remove_writer(self._fd)
        self._writing = writing

    async def close(self) -> None:
        self._deliver = None
        if self._port is None:
            return
        assert self._loop is not None
        if self._reader_retry is not None:
            self._reader_retry.cancel()
            self._reader_retry = None
        self._loop.remove_reader(self._fd)
        self._set_writing(False)
        self._queue.clear()
        self._queued_bytes = 0
        self._port.close()
        self._port = None
        self._fd = -1
        logger.info("link closed link=%s", self.name)
