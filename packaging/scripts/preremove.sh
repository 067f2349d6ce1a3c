#!/bin/sh
# Stop the service on removal (not on upgrade). Harmless without systemd.
set -e
if [ "$1" = "remove" ] || [ "$1" = "0" ]; then
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl stop agentd.service || true
        systemctl disable agentd.service || true
    fi
fi
exit 0
