"""Runs pgreplica actions in-process inside one node's namespace, as the node's daemon would.

Started by ``pgreplica_lab`` with ``ip netns exec``; reads one JSON request per line on stdin
(``{"action": …, "env": {…}}``) and answers one JSON line on stdout: the ``Result`` plus the
log lines the agent wrote during the action.  One long-lived process per node matters:
``ip netns exec`` gives every process a mount namespace of its own, and the agent only
counts a postmaster in its own mount namespace as running (see ``pgsql.postmaster_pid``).
"""

from __future__ import annotations

import json
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))

from hacluster.agents.pgreplica import PgReplicaAgent


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


def main() -> int:
    collect = _Collect()
    logging.getLogger("hacluster").addHandler(collect)
    logging.getLogger("hacluster").setLevel(logging.INFO)
    for line in sys.stdin:
        request = json.loads(line)
        collect.lines.clear()
        result = PgReplicaAgent().run(request["action"], request["env"])
        answer = {
            "rc": result.rc,
            "reason": result.exit_reason,
            "output": result.output,
            "log": collect.lines,
        }
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
