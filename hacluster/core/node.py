"""One node's whole core: membership and resource manager behind a single ``handle``.

The shell feeds every input here with the monotonic time and carries out what comes back:
``Send``/``SendPings``/``Notice`` from membership, ``RunAgent``/``ConfigAdopted`` from the
resource manager.  Membership changes and ``hac_*`` messages are routed from one layer to
the other inside this function, in order, so the result of any input is deterministic.

A graceful stop hands resources over first: ``StopRequested`` makes the resource manager
leave (its resources are planned elsewhere and stopped here); only when nothing of ours runs
any more does membership say goodbye (``shutdone``) and the node stop.
"""

from __future__ import annotations

import dataclasses

from hacluster.core.cib import ClusterConfig
from hacluster.core.crm import Broadcast, ResourceManager, RmSettings
from hacluster.core.effects import (
    Effect,
    Input,
    MessageDelivered,
    NodeStateChanged,
    Rng,
    StopRequested,
    Tick,
)
from hacluster.core.fencing import FenceFinished
from hacluster.core.ids import NodeName
from hacluster.core.lrm import AgentFinished
from hacluster.core.membership import Membership
from hacluster.core.settings import MembershipSettings

NodeInput = Input | AgentFinished | FenceFinished


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
        if not rm.generation:  # the resource manager orders its messages by our generation
            rm = dataclasses.replace(rm, generation=membership.generation)
        self.rm = ResourceManager(rm, config, now_ms)
        self._stopping = False
        self._last_now_ms = now_ms
        self._deadtime_ms = membership.deadtime_ms

    @property
    def stopped(self) -> bool:
        return self.membership.stopped

    def start(self, now_ms: int) -> list[object]:
        return self._route(list(self.membership.start(now_ms)), now_ms) + self._route(
            self.rm.step(now_ms), now_ms
        )

    def handle(self, inp: NodeInput, now_ms: int) -> list[object]:
        gap = now_ms - self._last_now_ms
        self._last_now_ms = now_ms
        out: list[object] = []
        if gap > self._deadtime_ms and self.membership.comm_up and not self._stopping:
            out += self._route(self.rm.on_resumed(gap, now_ms), now_ms)
        return out + self._handle(inp, now_ms)

    def _handle(self, inp: NodeInput, now_ms: int) -> list[object]:
        if isinstance(inp, AgentFinished):
            return self._route(self.rm.on_agent_finished(inp, now_ms), now_ms)
        if isinstance(inp, FenceFinished):
            return self._route(self.rm.on_fence_finished(inp, now_ms), now_ms)
        if isinstance(inp, StopRequested):
            self._stopping = True
            out = self._route(self.rm.begin_shutdown(now_ms), now_ms)
            return out + self._finish_stop(now_ms)
        out = self._route(list(self.membership.handle(inp, now_ms)), now_ms)
        if isinstance(inp, Tick):
            out += self._route(self.rm.step(now_ms), now_ms)
        return out + self._finish_stop(now_ms)

    def propose_config(self, config: ClusterConfig, now_ms: int) -> list[object]:
        """An operator's change made here; it reaches every member."""
        return self._route(self.rm.propose_config(config, now_ms), now_ms)

    def cleanup(self, rsc: str, node: str, now_ms: int) -> list[object]:
        return self._route(self.rm.cleanup(rsc, node, now_ms), now_ms)

    def confirm_fenced(self, node: NodeName, now_ms: int) -> list[object]:
        return self._route(self.rm.confirm_fenced(node, now_ms), now_ms)

    def request_fence(self, node: NodeName, now_ms: int) -> list[object]:
        return self._route(self.rm.request_fence(node, now_ms), now_ms)

    def next_deadline_ms(self) -> int:
        return min(self.membership.next_deadline_ms(), self.rm.next_deadline_ms())

    def _finish_stop(self, now_ms: int) -> list[object]:
        if self._stopping and self.rm.shutdown_complete and not self.membership.stopped:
            if not self.rm.left_clean:
                # Something may still run here (a stop failed): a goodbye would let peers take
                # it over unfenced.  Fall silent instead; they declare us dead and fence us.
                return self._route(list(self.membership.stop_silently(now_ms)), now_ms)
            return self._route(list(self.membership.handle(StopRequested(), now_ms)), now_ms)
        return []

    def route(self, effects: list[object], now_ms: int) -> list[object]:
        """Route effects the shell obtained from one layer directly (e.g. after a reload)."""
        return self._route(effects, now_ms)

    def _route(self, effects: list[object], now_ms: int) -> list[object]:
        """Pass membership events to the resource manager and RM broadcasts to membership."""
        out: list[object] = []
        queue = list(effects)
        while queue:
            effect = queue.pop(0)
            if isinstance(effect, NodeStateChanged):
                out.append(effect)
                generation = self.membership.peer_generation(effect.node)
                queue.extend(self.rm.on_membership(effect, self.membership.members(), now_ms, generation))
            elif isinstance(effect, MessageDelivered):
                queue.extend(self.rm.on_message(effect, now_ms))
            elif isinstance(effect, Broadcast):
                sent: list[Effect] = self.membership.send_message(effect.mtype, effect.pairs, now_ms)
                out.extend(sent)
            else:
                out.append(effect)
        return out
