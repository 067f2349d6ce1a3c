#!/bin/sh
# A plain remove keeps agentd's data (runs, ledgers, the token) so a reinstall
# loses nothing; purge removes it and the agentd user.
set -e
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = remove ] && command -v deb-systemd-helper >/dev/null 2>&1; then
    deb-systemd-helper mask agentd.service >/dev/null || true
fi
if [ "$1" = purge ]; then
    if command -v deb-systemd-helper >/dev/null 2>&1; then
        deb-systemd-helper purge agentd.service >/dev/null || true
        deb-systemd-helper unmask agentd.service >/dev/null || true
    fi
    rm -rf /var/lib/agentd
    if getent passwd agentd >/dev/null 2>&1; then
        userdel agentd || true
    fi
    if getent group agentd >/dev/null 2>&1; then
        groupdel agentd || true
    fi
fi
exit 0
