"""The resource configuration beside ha.cf: ``resources.crm``, Heartbeat's ``haresources``, or a CIB.

Exactly one of ``resources.crm`` and ``haresources`` may exist (both is an error that names
the two files).  Neither is fine: the cluster then manages membership only.  A
``haresources`` cluster runs as Heartbeat did, without fencing; ``stonith``/``stonith_host``
lines in ha.cf count as fencing devices.

With ``crm on`` (``yes``, ``respawn``, ``pacemaker on`` …) the resources of a Heartbeat v2 or
Pacemaker-on-Heartbeat cluster are in its CIB: ``resources.crm`` still wins when present (it
is what ``hacrm configure import`` writes), else the CIB is read from ``cib_file`` or from where
Heartbeat v2 and Pacemaker keep it (``CIB_LOCATIONS``), and ``haresources`` is ignored with a
warning, as Heartbeat ignores it.  ``load_cluster`` reads ha.cf, authkeys and the resource
file and reports the problems of all of them at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from hacluster.config.cib_xml import parse_cib_xml
from hacluster.config.haresources import parse_haresources
from hacluster.config.load import read_config
from hacluster.config.model import LoadedConfig
from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core.cib import ClusterConfig
from hacluster.core.fencing import FenceDeviceSpec
from hacluster.errors import ConfigError

RESOURCES_CRM = "resources.crm"
HARESOURCES = "haresources"
CIB_LOCATIONS: tuple[Path, ...] = (
    Path("/var/lib/pacemaker/cib/cib.xml"),
    Path("/var/lib/heartbeat/crm/cib.xml"),
)
"""Where Pacemaker 1.1+ and Heartbeat v2 / Pacemaker 1.0 keep the CIB, searched in this order."""


@dataclass(frozen=True, slots=True)
class ResourceSource:
    config: ClusterConfig
    path: Path | None
    """The file it came from; None when there is no resource file."""
    digest: str
    """sha256 of the file's bytes ("" without a file): tells a changed file from the stored copy."""
    warnings: tuple[str, ...] = field(default=())
    summary: str = ""
    """One line for ``daemon --check``: where the resources came from and what they are."""


@dataclass(frozen=True, slots=True)
class ResourceContext:
    """What reading the resource file needs from ha.cf (also when ha.cf itself has problems)."""

    directory: Path
    nodes: tuple[str, ...] | None
    """ha.cf's nodes; None when unknown (autojoin any): haresources node names are not checked."""
    auto_failback: str = "legacy"
    crm: str = "off"
    cib_file: Path | None = None
    crm_where: str = ""
    """``path:line`` of the crm/pacemaker line, for messages."""

    @classmethod
    def of(cls, loaded: LoadedConfig) -> ResourceContext:
        return cls(
            directory=Path(loaded.directory),
            nodes=None if loaded.autojoin == "any" else tuple(loaded.nodes),
            auto_failback=loaded.auto_failback,
            crm=loaded.crm,
            cib_file=loaded.cib_file,
            crm_where=loaded.where.get("crm") or loaded.where.get("pacemaker") or str(loaded.path),
        )


def empty_config() -> ClusterConfig:
    return ClusterConfig(
        epoch=0,
        primitives=(),
        groups=(),
        locations=(),
        colocations=(),
        orders=(),
        properties=(),
        rsc_defaults=(),
        op_defaults=(),
        source="none",
    )


def resource_dir(loaded: LoadedConfig) -> Path:
    """Heartbeat's ``resource.d``: beside ha.cf (``/etc/ha.d/resource.d`` for ``/etc/ha.d/ha.cf``)."""
    return Path(loaded.directory) / "resource.d"


def load_cluster(
    hacf_path: str | Path, node_name: str, *, check_scripts: bool = True
) -> tuple[LoadedConfig, ResourceSource]:
    """ha.cf, authkeys and the resource file; one ``ConfigError`` with the problems of all of them."""
    parts = read_config(hacf_path, node_name)
    problems = list(parts.problems)
    resources: ResourceSource | None = None
    context = _context_of_parts(parts.path, parts.hacf.values if parts.hacf else {}, parts.hacf)
    try:
        resources = _load_resources(context, check_scripts)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems or resources is None:
        raise ConfigError(problems)
    return parts.loaded(), resources


def _context_of_parts(path: Path, values: dict[str, object], hacf: object) -> ResourceContext:
    nodes = values.get("nodes")
    autojoin = values.get("autojoin", "none")
    crm = values.get("crm", "off")
    cib_file = values.get("cib_file")
    where = getattr(hacf, "where", {})
    return ResourceContext(
        directory=path.parent,
        nodes=tuple(str(n) for n in nodes) if isinstance(nodes, tuple) and autojoin != "any" else None,
        auto_failback=str(values.get("auto_failback", "legacy")),
        crm=str(crm),
        cib_file=cib_file if isinstance(cib_file, Path) else None,
        crm_where=where.get("crm") or where.get("pacemaker") or str(path),
    )


def load_resources(loaded: LoadedConfig, *, check_scripts: bool = True) -> ResourceSource:
    """Read whichever resource file sits beside ha.cf; ``ConfigError`` lists every problem."""
    return _load_resources(ResourceContext.of(loaded), check_scripts)


def _load_resources(context: ResourceContext, check_scripts: bool) -> ResourceSource:
    directory = context.directory
    crm, hares = directory / RESOURCES_CRM, directory / HARESOURCES
    if context.crm != "off" and not crm.exists():
        return _load_cib(context, hares)
    if crm.exists() and hares.exists() and context.crm != "off":
        return _read_resource_file(context, crm, check_scripts, (_ignored_haresources(context, hares),))
    if crm.exists() and hares.exists():
        raise ConfigError(
            [
                f"{crm}: both {RESOURCES_CRM} and {HARESOURCES} exist in {directory}; "
                f"keep one (resources.crm is the richer format; haresources is read as Heartbeat did)"
            ]
        )
    for path in (crm, hares):
        if path.exists():
            return _read_resource_file(context, path, check_scripts, ())
    return ResourceSource(empty_config(), None, "", summary="no resource file: membership only")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read it ({exc.strerror}); check its permissions"]) from exc


def _read_resource_file(
    context: ResourceContext, path: Path, check_scripts: bool, notes: tuple[str, ...]
) -> ResourceSource:
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: cannot read it ({exc}); save it as UTF-8"]) from exc
    digest = hashlib.sha256(data).hexdigest()
    warnings: list[str] = list(notes)
    if path.name == RESOURCES_CRM:
        config = parse_resources_crm(text, str(path), warnings=warnings)
    else:
        config = parse_haresources(
            text,
            str(path),
            resource_d=(context.directory / "resource.d",),
            auto_failback=context.auto_failback,
            check_scripts=check_scripts,
            warnings=warnings,
            nodes=context.nodes,
        )
    return ResourceSource(config, path, digest, tuple(warnings), summary=f"{path}: {_describe(config)}")


def _ignored_haresources(context: ResourceContext, hares: Path) -> str:
    return (
        f"{hares}: not used because {context.crm_where} turns crm on (Heartbeat ignores it too); "
        "remove it, or set crm off to use it instead of the CIB"
    )


def _load_cib(context: ResourceContext, hares: Path) -> ResourceSource:
    """``crm on`` without resources.crm: the CIB, read as ``hacrm configure import`` reads it."""
    notes = [_ignored_haresources(context, hares)] if hares.exists() else []
    candidates = (context.cib_file,) if context.cib_file is not None else CIB_LOCATIONS
    found = next((path for path in candidates if path.exists()), None)
    if found is None:
        searched = " and ".join(str(c) for c in candidates)
        notes.append(
            f"{context.crm_where}: crm is on but there is no CIB ({searched}); the cluster starts with no "
            "resources, as Pacemaker does with an empty CIB; name the CIB with cib_file PATH, or write "
            f"{context.directory / RESOURCES_CRM}"
        )
        return ResourceSource(
            empty_config(), None, "", tuple(notes), summary="crm on, no CIB found: no resources"
        )
    data = _read_bytes(found)
    warnings: list[str] = []
    try:
        config = parse_cib_xml(data, str(found), warnings=warnings)
    except ConfigError as exc:
        raise ConfigError(
            [
                *exc.problems,
                f"{context.crm_where}: crm is on, so the resources come from {found}, which hacluster cannot run "
                f"as it is (the lines above); convert it with: hacrm configure import {found} --print > "
                f"{context.directory / RESOURCES_CRM}, edit what is refused, then start again",
            ]
        ) from None
    notes.append(
        f"{context.crm_where}: crm is on: the resources are read from {found} (as hacrm configure import reads "
        f"it); to manage them as a file: hacrm configure import {found} --print > {context.directory / RESOURCES_CRM}"
    )
    summary = f"{found} (crm on): imports as {_describe(config)}"
    return ResourceSource(
        config, found, hashlib.sha256(data).hexdigest(), tuple([*notes, *warnings]), summary=summary
    )


def _describe(config: ClusterConfig) -> str:
    constraints = len(config.locations) + len(config.colocations) + len(config.orders)
    return (
        f"{len(config.primitives)} primitive(s), {len(config.groups)} group(s), {constraints} constraint(s), "
        f"{len(config.properties)} propert(y/ies)"
    )


def hacf_fence_devices(loaded: LoadedConfig) -> tuple[FenceDeviceSpec, ...]:
    """Fence devices from ha.cf, as Heartbeat wrote them.

    ``stonith_host <host|*> <type> <params…>``: a ``fence_*`` type takes ``name=value``
    parameters (fence-agents); any other type is a cluster-glue plugin run through
    ``stonith -t <type>``, its parameters passed in order as Heartbeat did.  ``stonith <type>
    <file>`` reads the plugin's parameters from the file.  The ``host`` field names the node
    that can reach the device; every node may run it here (the DC does), so it is recorded
    in the device id only.
    """
    devices = []
    for index, line in enumerate(loaded.stonith_host, start=1):
        words = line.split()
        host, kind, params = words[0], words[1], words[2:]
        device_id = f"hacf-stonith-{index}-{host.replace('*', 'any')}"
        devices.append(_hacf_device(device_id, kind, params))
    for index, line in enumerate(loaded.stonith, start=1):
        kind, _, config_file = line.partition(" ")
        devices.append(
            FenceDeviceSpec(
                id=f"hacf-stonith-file-{index}",
                agent=f"stonith:{kind}",
                params=(("file", config_file.strip()),),
            )
        )
    return tuple(devices)


def _hacf_device(device_id: str, kind: str, params: list[str]) -> FenceDeviceSpec:
    if kind.startswith("fence_"):
        pairs = tuple(tuple(p.split("=", 1)) for p in params if "=" in p)
        host_list = tuple(v for k, v in pairs if k == "pcmk_host_list")
        return FenceDeviceSpec(
            id=device_id,
            agent=kind,
            params=tuple((k, v) for k, v in pairs if not k.startswith("pcmk_")),
            host_list=tuple(h for item in host_list for h in item.replace(",", " ").split()),
        )
    return FenceDeviceSpec(id=device_id, agent=f"stonith:{kind}", params=(("args", " ".join(params)),))
