#!/bin/bash
# Install Linux-HA Heartbeat 3.0.6 (Debian 12 package) for the interop lab in
# tests/integration/heartbeat_lab.py.  Run as root on Debian 12; safe to run twice.
#
# The daemon is never started here: the lab starts one per network namespace itself.
# A temporary policy-rc.d stops the postinst from starting the init script (which
# would run a heartbeat in the root namespace with the stock, empty /etc/ha.d).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "install-heartbeat.sh: must run as root (apt-get install); rerun with sudo" >&2
    exit 1
fi

if [ -z "${HACLUSTER_INSTALL_LOCKED:-}" ]; then  # install-deps holds it already
    exec 9>/run/lock/hacluster-install.lock
    flock 9
fi

policy=/usr/sbin/policy-rc.d
restore_policy=""
# A policy-rc.d of ours is a leftover of an interrupted run, not the machine's own.
if [ -e "$policy" ] && ! grep -q "hacluster install" "$policy"; then
    cp -a "$policy" "$policy.hacluster-saved"
    restore_policy=yes
fi
cleanup() {
    if [ -n "$restore_policy" ]; then
        mv -f "$policy.hacluster-saved" "$policy"
    else
        rm -f "$policy"
    fi
}
trap cleanup EXIT
printf '#!/bin/sh\n# hacluster install-heartbeat.sh: never start services during install\nexit 101\n' >"$policy"
chmod 0755 "$policy"

export DEBIAN_FRONTEND=noninteractive
if ! dpkg-query -W -f='${Status}' heartbeat 2>/dev/null | grep -q 'install ok installed'; then
    apt-get update -qq
    # heartbeat pulls cluster-glue (hacluster user, haclient group), libheartbeat2 and
    # resource-agents.  iproute2 (ip netns) and util-linux (unshare, nsenter) run the lab.
    apt-get install -y -qq --no-install-recommends heartbeat iproute2 util-linux
fi

# cluster-glue's postinst creates these; make sure they exist even on odd images.
getent group haclient >/dev/null || groupadd --system haclient
getent passwd hacluster >/dev/null ||
    useradd --system --gid haclient --home-dir /var/lib/heartbeat --shell /usr/sbin/nologin hacluster

# The lab bind-mounts per-node copies over these, but the mount points must exist.
install -d -m 0755 /var/lib/heartbeat /etc/ha.d
install -d -m 0750 -o hacluster -g haclient /run/heartbeat

# If some init system started the root-namespace daemon anyway, leave it alone but say so:
# it would answer cl_status outside the lab and confuse anyone reading the results.
if [ -s /var/run/heartbeat.pid ] && kill -0 "$(cat /var/run/heartbeat.pid)" 2>/dev/null; then
    echo "install-heartbeat.sh: warning: a heartbeat daemon is running in the root namespace" >&2
fi

hb=$(dpkg -L heartbeat | grep -E '/heartbeat/heartbeat$' | head -n 1)
if [ -z "$hb" ] || [ ! -x "$hb" ]; then
    echo "install-heartbeat.sh: heartbeat daemon binary not found in 'dpkg -L heartbeat'" >&2
    exit 1
fi
echo "heartbeat daemon: $hb"
echo "cl_status: $(command -v cl_status)"
