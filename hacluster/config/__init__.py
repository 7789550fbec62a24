"""The configuration layer: Heartbeat's ha.cf and authkeys, parsed with line numbers.

Call ``load_config(path, node_name)``; it returns a ``LoadedConfig`` or raises
``hacluster.errors.ConfigError`` listing every problem as ``file:line: …``.
"""

from hacluster.config.authkeys import load_authkeys, read_authkeys
from hacluster.config.hacf import parse_hacf
from hacluster.config.load import default_node_name, load_config
from hacluster.config.model import LinkConfig, LoadedConfig, PingConfig
from hacluster.config.values import parse_bool, parse_time_ms

__all__ = [
    "LinkConfig",
    "LoadedConfig",
    "PingConfig",
    "default_node_name",
    "load_authkeys",
    "load_config",
    "parse_bool",
    "parse_hacf",
    "parse_time_ms",
    "read_authkeys",
]
