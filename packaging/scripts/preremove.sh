#!/bin/sh
# Stop the service on removal (not on upgrade). Harmless without systemd.
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    deb-systemd-invoke stop agentd.service >/dev/null || true
fi
exit 0
