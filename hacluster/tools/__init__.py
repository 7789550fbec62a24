"""Pacemaker-compatible command-line tools that talk to the local hacluster daemon.

ClusterLabs' resource agents set promotion scores and node attributes by running
``crm_attribute``, ``crm_master``, ``attrd_updater`` and ``crm_node``.  These modules take
the same options (the ones agents use; see ``docs/operator-guide.md``) and answer through the
daemon's API socket.  ``bin/`` holds one small executable per tool; the executor puts it
first on every agent's ``PATH`` and names it ``HA_SBIN_DIR``, so the agents work whether or
not Pacemaker is installed.
"""
