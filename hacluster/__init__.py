"""hacluster: a Heartbeat-style cluster resource manager."""

__version__ = "0.1.0"
