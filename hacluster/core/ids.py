"""Identifier types, so a node name is never passed where a link name belongs."""

from typing import NewType

NodeName = NewType("NodeName", str)
"""A configured machine, as ``uname -n`` prints it (lower case)."""

LinkName = NewType("LinkName", str)
"""One local transport path, e.g. ``"bcast eth0"`` or ``"serial /dev/ttyS0"``."""
