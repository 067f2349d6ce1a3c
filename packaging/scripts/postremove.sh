#!/bin/sh
# On purge, remove agentd's state and user. A plain remove keeps the data
# (runs, ledgers, the token) so a reinstall loses nothing.
set -e
if [ "$1" = "purge" ]; then
    rm -rf /var/lib/agentd
    if getent passwd agentd >/dev/null 2>&1; then
        userdel agentd 2>/dev/null || deluser --system agentd 2>/dev/null || true
    fi
    if getent group agentd >/dev/null 2>&1; then
        groupdel agentd 2>/dev/null || true
    fi
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload || true
fi
exit 0
