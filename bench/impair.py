#!/usr/bin/env python3
"""A netem in userspace: loss, delay with jitter (so reordering), and duplication on one
lab cable, for kernels without ``sch_netem``.

    python3 bench/impair.py NODE_PORT SWITCH_PORT --seed 7 --loss 0.1 --delay-ms 40 \\
        --jitter-ms 30 --duplicate 0.05

Why not ``tc qdisc add … netem``: the campaign's machine runs a kernel built without
``CONFIG_NET_SCH_NETEM`` (``tc`` answers "Specified qdisc kind is unknown"), and neither
``nft`` nor ``iptables`` is installed, so the kernel cannot impair a link there.  This script
does what netem would do to the traffic of one node, in both directions, and is seeded, so
a campaign seed replays the same packet fate sequence too.

How it is wired (``Impairment`` in bench/campaign.py does this): in the switch namespace the
node's bridge port ``p<i>`` is taken out of the bridge, a veth pair ``x<i>``/``y<i>`` is made,
``y<i>`` joins the bridge, and this process forwards every frame between ``p<i>`` and
``x<i>`` through AF_PACKET sockets.  Each frame, independently: dropped with probability
``loss``; otherwise sent after ``delay-ms`` ± uniform ``jitter-ms`` (frames overtake each
other when the jitter exceeds their spacing: reordering); and, with probability
``duplicate``, sent a second time after its own random delay.

IPv4 UDP checksums are set to 0 ("no checksum", RFC 768) on the way through: a veth peer
hands frames over with the checksum left for the hardware to fill in (CHECKSUM_PARTIAL), and
a frame re-sent from a packet socket is never completed, so the receiver would drop it.

It prints ``ready`` once both sockets are bound, and on SIGTERM prints one line of counters
(``forwarded=N dropped=N duplicated=N``) and exits 0.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
ETH_HEADER = 14
ETHERTYPE_IPV4 = 0x0800
PROTO_UDP = 17
FRAME_MAX = 65_535


def without_udp_checksum(frame: bytes) -> bytes:
    """``frame`` with its IPv4 UDP checksum zeroed (no checksum); other frames unchanged."""
    if len(frame) < ETH_HEADER + 20 or struct.unpack_from("!H", frame, 12)[0] != ETHERTYPE_IPV4:
        return frame
    ihl = (frame[ETH_HEADER] & 0x0F) * 4
    fragment = struct.unpack_from("!H", frame, ETH_HEADER + 6)[0] & 0x1FFF
    if frame[ETH_HEADER + 9] != PROTO_UDP or fragment != 0 or len(frame) < ETH_HEADER + ihl + 8:
        return frame
    at = ETH_HEADER + ihl + 6
    return frame[:at] + b"\0\0" + frame[at + 2 :]


def open_port(name: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((name, 0))
    sock.setblocking(False)
    return sock


class Stop(Exception):
    """SIGTERM arrived."""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("node_port")
    parser.add_argument("switch_port")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--duplicate", type=float, default=0.0)
    args = parser.parse_args(argv)
    for name in ("loss", "duplicate"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            parser.error(f"--{name} {getattr(args, name)} must be a probability between 0 and 1")
    if args.delay_ms < 0 or args.jitter_ms < 0:
        parser.error("--delay-ms and --jitter-ms must not be negative")
    rng = random.Random(args.seed)
    ports = {args.node_port: open_port(args.node_port), args.switch_port: open_port(args.switch_port)}
    other = {args.node_port: ports[args.switch_port], args.switch_port: ports[args.node_port]}
    by_fd = {sock.fileno(): name for name, sock in ports.items()}
    due: list[tuple[float, int, socket.socket, bytes]] = []
    counters = {"forwarded": 0, "dropped": 0, "duplicated": 0, "send_errors": 0}
    order = 0

    def stop(_signum: int, _frame: object) -> None:
        raise Stop

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)

    def later() -> float:
        return max(0.0, args.delay_ms + rng.uniform(-args.jitter_ms, args.jitter_ms)) / 1000

    try:
        while True:
            now = time.monotonic()
            while due and due[0][0] <= now:
                _, _, sock, frame = heapq.heappop(due)
                try:
                    sock.send(frame)
                    counters["forwarded"] += 1
                except OSError:  # the cable is unplugged (a fenced node): the frame is lost
                    counters["send_errors"] += 1
            timeout = max(0.0, due[0][0] - now) if due else 1.0
            readable, _, _ = select.select(list(ports.values()), [], [], timeout)
            for sock in readable:
                name = by_fd[sock.fileno()]
                while True:
                    try:
                        frame, address = sock.recvfrom(FRAME_MAX)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:  # ENETDOWN while the node's side is down
                        break
                    if address[2] == PACKET_OUTGOING:
                        continue  # our own transmission, seen by the tap
                    if rng.random() < args.loss:
                        counters["dropped"] += 1
                        continue
                    frame = without_udp_checksum(frame)
                    copies = 2 if rng.random() < args.duplicate else 1
                    counters["duplicated"] += copies - 1
                    for _ in range(copies):
                        order += 1
                        heapq.heappush(due, (time.monotonic() + later(), order, other[name], frame))
    except (Stop, KeyboardInterrupt):
        pass
    print(" ".join(f"{key}={value}" for key, value in counters.items()), flush=True)
    for sock in ports.values():
        sock.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
