"""Fence devices and levels: which devices can shoot a node, in what order.  Pure.

Devices come from the configuration: ``stonith:`` primitives (``pcmk_host_list``,
``pcmk_host_map``, ``pcmk_delay_base``, ``pcmk_delay_max``, ``pcmk_*_retries``) and ha.cf
``stonith_host`` lines (built in ``hacluster.config``).  ``fencing_topology`` gives, per
target, levels tried in order; every device of a level must succeed (AND), the first level
that succeeds wins (OR).  Without a topology each device that can reach the target is a
level of its own, in configuration order.
"""

from __future__ import annotations

from dataclasses import dataclass

from hacluster.core.cib import ClusterConfig, parse_time_ms


@dataclass(frozen=True, slots=True)
class FenceDeviceSpec:
    id: str
    agent: str
    params: tuple[tuple[str, str], ...]
    host_list: tuple[str, ...] = ()
    host_map: tuple[tuple[str, str], ...] = ()
    delay_base_ms: int = 0
    delay_max_ms: int = 0
    """Static and random delays before this device fires; the shell's fencer applies them."""
    timeout_ms: int = 60_000
    retries: int = 2

    def may_fence(self, target: str) -> bool:
        """True when the device is configured for ``target`` (no list or map: any node)."""
        if self.host_list or self.host_map:
            return target in self.host_list or any(node == target for node, _ in self.host_map)
        return True


def _split_hosts(text: str) -> tuple[str, ...]:
    return tuple(h.lower() for h in text.replace(",", " ").split() if h)


def _host_map(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in text.replace(";", " ").split():
        node, sep, port = item.replace("=", ":").partition(":")
        if sep and node and port:
            pairs.append((node.lower(), port))
    return tuple(pairs)


def devices_from_config(
    config: ClusterConfig, extra: tuple[FenceDeviceSpec, ...] = ()
) -> tuple[FenceDeviceSpec, ...]:
    """Every fence device: ``stonith:`` primitives, then ``extra`` (from ha.cf)."""
    devices = []
    for primitive in config.primitives:
        if primitive.agent_class != "stonith":
            continue
        params = dict(primitive.params)
        delay = _time_param(params, "pcmk_delay_base")
        delay_max = _time_param(params, "pcmk_delay_max")
        retries = 2
        for key in ("pcmk_reboot_retries", "pcmk_off_retries"):
            text = params.get(key, "")
            if text.isascii() and text.isdigit():  # str.isdigit alone takes "²", which int refuses
                retries = int(text)
        timeout = 60_000
        for op in primitive.ops:
            if op.name in ("off", "reboot") and op.timeout_ms > 0:
                timeout = op.timeout_ms
        devices.append(
            FenceDeviceSpec(
                id=primitive.id,
                agent=primitive.type,
                params=tuple((k, v) for k, v in primitive.params if not k.startswith("pcmk_")),
                host_list=_split_hosts(params.get("pcmk_host_list", "")),
                host_map=_host_map(params.get("pcmk_host_map", "")),
                delay_base_ms=delay,
                delay_max_ms=delay_max,
                timeout_ms=timeout,
                retries=retries,
            )
        )
    return (*devices, *extra)


def _time_param(params: dict[str, str], name: str) -> int:
    try:
        return parse_time_ms(params.get(name, "0"))
    except ValueError:
        return 0


def levels_for(
    config: ClusterConfig, devices: tuple[FenceDeviceSpec, ...], target: str
) -> list[tuple[str, ...]]:
    """The levels that can fence ``target``, in the order they are tried (empty: none can)."""
    by_id = {d.id for d in devices}
    explicit = config.fencing_levels_for(target)
    if explicit:
        return [tuple(d for d in level.devices if d in by_id) for level in explicit if level.devices]
    return [(d.id,) for d in devices if d.may_fence(target)]
