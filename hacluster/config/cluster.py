"""The resource configuration beside ha.cf: ``resources.crm`` or Heartbeat's ``haresources``.

Exactly one of them may exist (both is an error that names the two files).  Neither is
fine: the cluster then manages membership only.  A ``haresources`` cluster runs as Heartbeat
did, without fencing; ``stonith``/``stonith_host`` lines in ha.cf count as fencing devices.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from hacluster.config.haresources import parse_haresources
from hacluster.config.model import LoadedConfig
from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core.cib import ClusterConfig
from hacluster.core.fencing import FenceDeviceSpec
from hacluster.errors import ConfigError

RESOURCES_CRM = "resources.crm"
HARESOURCES = "haresources"


@dataclass(frozen=True, slots=True)
class ResourceSource:
    config: ClusterConfig
    path: Path | None
    """The file it came from; None when there is no resource file."""
    digest: str
    """sha256 of the file's bytes ("" without a file): tells a changed file from the stored copy."""
    warnings: tuple[str, ...] = field(default=())


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


def load_resources(loaded: LoadedConfig, *, check_scripts: bool = True) -> ResourceSource:
    """Read whichever resource file sits beside ha.cf; ``ConfigError`` lists every problem."""
    directory = Path(loaded.directory)
    crm, hares = directory / RESOURCES_CRM, directory / HARESOURCES
    if crm.exists() and hares.exists():
        raise ConfigError(
            [
                f"{crm}: both {RESOURCES_CRM} and {HARESOURCES} exist in {directory}; "
                f"keep one (resources.crm is the richer format; haresources is read as Heartbeat did)"
            ]
        )
    for path in (crm, hares):
        if path.exists():
            try:
                data = path.read_bytes()
                text = data.decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    [f"{path}: cannot read it ({exc}); check its permissions and encoding"]
                ) from exc
            digest = hashlib.sha256(data).hexdigest()
            warnings: list[str] = []
            if path == crm:
                config = parse_resources_crm(text, str(path))
            else:
                config = parse_haresources(
                    text,
                    str(path),
                    resource_d=(resource_dir(loaded),),
                    auto_failback=loaded.auto_failback,
                    check_scripts=check_scripts,
                    warnings=warnings,
                )
            return ResourceSource(config, path, digest, tuple(warnings))
    return ResourceSource(empty_config(), None, "")


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
