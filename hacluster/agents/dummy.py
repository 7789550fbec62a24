"""Dummy: a resource that is "running" while its state file exists.

It exists to test managers and the OCF contract itself, so it follows resource-agents'
Dummy exactly: start touches the state file, stop removes it (0 when already gone), monitor
answers 0/7, validate-all checks that the state file's directory is writable (2 if not).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping

from hacluster.agents.ocf import DEFAULT_RSCTMP, RC, Action, Agent, AgentError, Context, Parameter

logger = logging.getLogger(__name__)


class DummyAgent(Agent):
    name = "Dummy"
    version = "1.0"
    shortdesc = "Example stateless resource agent"
    longdesc = (
        "A resource that does nothing but remember whether it was started, in a state file. "
        "Useful to test a cluster manager without touching the system."
    )
    parameters = (
        Parameter(
            "state",
            "State file",
            "Location of the file whose existence means the resource is running. "
            "Default: HA_RSCTMP/Dummy-<instance>.state.",
            unique=True,
        ),
        Parameter(
            "fake", "Fake attribute", "A parameter with no effect, to exercise reloads.", default="dummy"
        ),
    )
    actions = (
        Action("start", 20_000),
        Action("stop", 20_000),
        Action("monitor", 20_000, interval_ms=10_000, depth=0),
        Action("migrate_to", 20_000),
        Action("migrate_from", 20_000),
        Action("meta-data", 5_000),
        Action("validate-all", 20_000),
    )

    def defaults(self, env: Mapping[str, str], instance: str) -> dict[str, str]:
        rsctmp = env.get("HA_RSCTMP") or DEFAULT_RSCTMP
        return {"state": os.path.join(rsctmp, f"Dummy-{instance}.state")}

    def _state_path(self, ctx: Context) -> str:
        state = ctx.param("state")
        if not os.path.isabs(state):
            raise AgentError(RC.ERR_CONFIGURED, f"state={state!r} must be an absolute path")
        return state

    def validate_all(self, ctx: Context) -> int:
        state = self._state_path(ctx)
        directory = os.path.dirname(state)
        if "OCF_RESKEY_state" not in ctx.env or not ctx.env["OCF_RESKEY_state"]:
            # The default lives under HA_RSCTMP, a tmpfs that starts empty after a reboot.
            os.makedirs(directory, mode=0o755, exist_ok=True)
        if not (os.path.isdir(directory) and os.access(directory, os.W_OK | os.X_OK)):
            raise AgentError(RC.ERR_ARGS, f"state directory {directory} is not writable")
        return RC.SUCCESS

    def start(self, ctx: Context) -> int:
        self.validate_all(ctx)
        if self.monitor(ctx) == RC.SUCCESS:
            return RC.SUCCESS
        with open(self._state_path(ctx), "a"):
            pass
        logger.info("dummy started instance=%s state=%s", ctx.instance, ctx.param("state"))
        return RC.SUCCESS

    def stop(self, ctx: Context) -> int:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._state_path(ctx))
        return RC.SUCCESS

    def monitor(self, ctx: Context) -> int:
        if os.path.exists(self._state_path(ctx)):
            return RC.SUCCESS
        if ctx.is_probe or ctx.action != "monitor":
            return RC.NOT_RUNNING
        raise AgentError(RC.NOT_RUNNING, "No process state file found")

    def migrate_to(self, ctx: Context) -> int:
        return self.stop(ctx)

    def migrate_from(self, ctx: Context) -> int:
        return self.start(ctx)
