"""One node's whole core: membership and resource manager behind a single ``handle``.

The shell feeds every input here with the monotonic time and carries out what comes back:
``Send``/``SendPings``/``Notice``/``NodeStateChanged``/``Stopped`` from membership,
``RunAgent``/``Fence``/``ConfigAdopted``/``Notice`` from the resource manager.  Membership
changes and ``hac_*`` messages are routed from one layer to the other inside this function,
in order, so the result of any input is deterministic.  Operator actions are inputs too
(``effects.OperatorInput``): the shell never reaches past ``handle`` to change anything.

A graceful stop hands resources over first: ``StopRequested`` makes the resource manager
leave (its resources are planned elsewhere and stopped here); only when nothing of ours runs
any more does membership say goodbye (``shutdone``) and the node stop.
"""

from __future__ import annotations

import dataclasses
from typing import assert_never

from hacluster.core.cib import ClusterConfig
from hacluster.core.crm import ResourceManager, RmSettings
from hacluster.core.effects import (
    AgentFinished,
    Broadcast,
    CleanupRequested,
    Effect,
    FenceConfirmed,
    FenceFinished,
    FenceRequested,
    KeyMessageToSend,
    KeyringInstalled,
    MembershipEffect,
    MessageDelivered,
    NodeInput,
    NodeStateChanged,
    PacketReceived,
    PingReplied,
    ProposeConfig,
    Reconfigured,
    RmEffect,
    Rng,
    StopRequested,
    Tick,
)
from hacluster.core.membership import KEY_MESSAGE, Membership
from hacluster.core.settings import MembershipSettings


class NodeCore:
    def __init__(
        self,
        membership: MembershipSettings,
        rm: RmSettings,
        config: ClusterConfig,
        rng: Rng,
        now_ms: int,
    ) -> None:
        self.membership = Membership(membership, rng, now_ms)
        """Read-only for everyone but this class (status and metrics read its statistics)."""
        if not rm.generation:  # the resource manager orders its messages by our generation
            rm = dataclasses.replace(rm, generation=membership.generation)
        self.rm = ResourceManager(rm, config, now_ms)
        """Read-only for everyone but this class (the shell reads it through ``shell/view.py``)."""
        self._stopping = False
        self._last_now_ms = now_ms
        self._deadtime_ms = membership.deadtime_ms
        self._rm_deadline_ms: int | None = None
        """The resource manager's next deadline as last asked, until the next input."""

    @property
    def stopped(self) -> bool:
        return self.membership.stopped

    def start(self, now_ms: int) -> list[Effect]:
        self._rm_deadline_ms = None
        return self._route(list(self.membership.start(now_ms)), now_ms) + self._route(
            self.rm.step(now_ms), now_ms
        )

    def handle(self, inp: NodeInput, now_ms: int) -> list[Effect]:
        rm_deadline_ms, self._rm_deadline_ms = self._rm_deadline_ms, None
        gap = now_ms - self._last_now_ms
        self._last_now_ms = now_ms
        out: list[Effect] = []
        if gap > self._deadtime_ms and self.membership.comm_up and not self._stopping:
            rm_deadline_ms = None
            out += self._route(self.rm.on_resumed(gap, now_ms), now_ms)
        return out + self._handle(inp, now_ms, rm_deadline_ms)

    def next_deadline_ms(self) -> int:
        if self._rm_deadline_ms is None:
            self._rm_deadline_ms = self.rm.next_deadline_ms()
        return min(self.membership.next_deadline_ms(), self._rm_deadline_ms)

    def _handle(self, inp: NodeInput, now_ms: int, rm_deadline_ms: int | None) -> list[Effect]:
        rm = self.rm
        match inp:
            case AgentFinished():
                return self._route(rm.on_agent_finished(inp, now_ms), now_ms)
            case FenceFinished():
                return self._route(rm.on_fence_finished(inp, now_ms), now_ms)
            case StopRequested():
                self._stopping = True
                return self._route(rm.begin_shutdown(now_ms), now_ms) + self._finish_stop(now_ms)
            case ProposeConfig():
                return self._route(rm.propose_config(inp.config, now_ms), now_ms)
            case CleanupRequested():
                return self._route(rm.cleanup(inp.resource, inp.node, now_ms), now_ms)
            case FenceConfirmed():
                return self._route(rm.confirm_fenced(inp.node, now_ms), now_ms)
            case FenceRequested():
                return self._route(rm.request_fence(inp.node, now_ms), now_ms)
            case KeyringInstalled():
                return self._route(self.membership.set_keyring(inp.keyring, inp.reason, now_ms), now_ms)
            case KeyMessageToSend():
                return self._route(self.membership.send_message(KEY_MESSAGE, inp.pairs, now_ms), now_ms)
            case Reconfigured():
                out = self._route(self.membership.reconfigure(inp.membership, now_ms), now_ms)
                return out + self._route(rm.reconfigure(inp.nodes, inp.extra_devices, now_ms), now_ms)
            case PacketReceived() | PingReplied():
                out = self._route(self.membership.handle(inp, now_ms), now_ms)
                return out + self._finish_stop(now_ms)
            case Tick():
                if rm_deadline_ms is None:
                    rm_deadline_ms = rm.next_deadline_ms()
                out = self._route(self.membership.handle(inp, now_ms), now_ms)
                # A tick is mostly membership's (a heartbeat to send): the resource manager
                # steps by itself on every input that changes it, so on a tick it only has
                # work once its own deadline has come (``ResourceManager.next_deadline_ms``).
                if now_ms >= rm_deadline_ms:
                    out += self._route(rm.step(now_ms), now_ms)
                return out + self._finish_stop(now_ms)
            case _:
                assert_never(inp)

    def _finish_stop(self, now_ms: int) -> list[Effect]:
        if self._stopping and self.rm.shutdown_complete and not self.membership.stopped:
            if not self.rm.left_clean:
                # Something may still run here (a stop failed): a goodbye would let peers take
                # it over unfenced.  Fall silent instead; they declare us dead and fence us.
                return self._route(self.membership.stop_silently(now_ms), now_ms)
            return self._route(self.membership.handle(StopRequested(), now_ms), now_ms)
        return []

    def _route(self, effects: list[MembershipEffect] | list[RmEffect], now_ms: int) -> list[Effect]:
        """Pass membership events to the resource manager and its broadcasts to membership."""
        out: list[Effect] = []
        queue: list[MembershipEffect | RmEffect] = list(effects)
        while queue:
            effect = queue.pop(0)
            match effect:
                case NodeStateChanged():
                    out.append(effect)
                    generation = self.membership.peer_generation(effect.node)
                    queue.extend(self.rm.on_membership(effect, self.membership.members(), now_ms, generation))
                case MessageDelivered():
                    queue.extend(self.rm.on_message(effect, now_ms))
                case Broadcast():  # sent before whatever the resource manager said next
                    out += self._route(
                        self.membership.send_message(effect.mtype, effect.pairs, now_ms), now_ms
                    )
                case _:
                    out.append(effect)
        return out
