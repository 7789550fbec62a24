"""Source for child interpreters that run out of something for real (no doubles).

``USE_UP_DESCRIPTORS`` defines ``use_up_descriptors() -> list[int]``: it lowers RLIMIT_NOFILE
to a little above what is open and opens ``/dev/null`` until EMFILE, returning the
descriptors it holds (close them to recover).  Call it after the event loop exists, which
needs descriptors of its own.
"""

from __future__ import annotations

USE_UP_DESCRIPTORS = """
import os as _os, resource as _resource

def use_up_descriptors():
    open_now = len(_os.listdir("/proc/self/fd"))
    _resource.setrlimit(_resource.RLIMIT_NOFILE, (open_now + 8, open_now + 8))
    held = []
    try:
        while True:
            held.append(_os.open("/dev/null", _os.O_RDONLY))
    except OSError:
        pass
    return held
"""
