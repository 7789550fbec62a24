"""Our fence agents (``fencing/fence_*`` are their launchers) and the contract they share (``api``)."""
