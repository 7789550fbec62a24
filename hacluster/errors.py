"""The exception tree.

One root, ``HAClusterError``, caught only at the daemon's driver loop and in the CLI's
``main``.  Operator mistakes (``ConfigError``) carry every problem found at once; peer
mistakes (``RemoteProtocolError``) are counted and dropped by the shell, never fatal.
Programmer errors are plain ``AssertionError``s and are meant to crash.
"""

from __future__ import annotations

import enum


class HAClusterError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(HAClusterError):
    """One or more problems in the operator's configuration files.

    ``problems`` holds one line each, already formatted as ``file:line: what; fix``.
    """

    def __init__(self, problems: list[str]) -> None:
        assert problems, "a ConfigError needs at least one problem"
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class DropReason(enum.Enum):
    """Why an incoming packet was dropped; each has a counter in ``statistics()``."""

    MALFORMED = "malformed"
    TRUNCATED = "truncated"
    OVERSIZE = "oversize"
    BAD_AUTH = "bad_auth"
    UNKNOWN_KEY = "unknown_key"
    REPLAY = "replay"
    DUPLICATE = "duplicate"
    UNKNOWN_NODE = "unknown_node"
    OTHER_CLUSTER = "other_cluster"
    MISSING_FIELD = "missing_field"


class RemoteProtocolError(HAClusterError):
    """A peer sent something we must not trust; the packet is dropped and counted."""

    def __init__(self, reason: DropReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value}: {detail}")


class DecodeError(RemoteProtocolError):
    """The bytes are not a well-formed, authentic Heartbeat message."""
