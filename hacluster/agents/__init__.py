"""hacluster's OCF resource agents: classes the daemon calls in-process, also run as scripts.

Importing this package is cheap (stdlib only); pyroute2 and psutil load on first use.
"""

from hacluster.agents.demoservice import DemoServiceAgent
from hacluster.agents.dummy import DummyAgent
from hacluster.agents.filesystem import FilesystemAgent
from hacluster.agents.ipaddr2 import IPaddr2Agent, send_garp
from hacluster.agents.ocf import (
    RC,
    Action,
    Agent,
    AgentError,
    Context,
    OCFReturnCode,
    Parameter,
    Result,
    main,
)
from hacluster.agents.pgreplica import PgReplicaAgent
from hacluster.agents.pgsql import PgsqlAgent

AGENTS: dict[str, type[Agent]] = {
    "Dummy": DummyAgent,
    "IPaddr2": IPaddr2Agent,
    "Filesystem": FilesystemAgent,
    "pgsql": PgsqlAgent,
    "pgreplica": PgReplicaAgent,
    "DemoService": DemoServiceAgent,
}
"""Agent classes by OCF type name, for the daemon's in-process runner."""

__all__ = [
    "AGENTS",
    "RC",
    "Action",
    "Agent",
    "AgentError",
    "Context",
    "DemoServiceAgent",
    "DummyAgent",
    "FilesystemAgent",
    "IPaddr2Agent",
    "OCFReturnCode",
    "Parameter",
    "PgReplicaAgent",
    "PgsqlAgent",
    "Result",
    "main",
    "send_garp",
]
