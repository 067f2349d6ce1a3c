#!/bin/sh
# Give the agentd user the GPU device groups, prepare its directories, and
# enable and start the service. deb-systemd-helper and deb-systemd-invoke do
# nothing harmful where systemd does not run (containers, chroots).
set -e
for g in video render; do
    if getent group "$g" >/dev/null 2>&1; then
        usermod -a -G "$g" agentd || true
    fi
done
install -d -m 0750 -o agentd -g agentd /var/lib/agentd
# State left by running agentd as root (before the install, or since) would
# stop the service: give it back to agentd. Carefully, as root in a
# directory another user writes to: never through a symlink (find does not
# follow them, chown -h changes a link itself), never onto another
# filesystem, and never a file with a second hard link, which could be
# someone else's file linked in. A symlinked /var/lib/agentd is the
# administrator's choice and is left alone.
if [ ! -L /var/lib/agentd ]; then
    fixed=$(find /var/lib/agentd -xdev ! -type l \( -type d -o -links 1 \) \
        \( ! -user agentd -o ! -group agentd \) -print -exec chown -h agentd:agentd {} + | wc -l)
    if [ "$fixed" -gt 0 ]; then
        echo "agentd: gave $fixed files in /var/lib/agentd back to the agentd user (left by running agentd as root?)"
    fi
fi
if [ -f /etc/agentd/config.toml ]; then
    chgrp agentd /etc/agentd/config.toml || true
    chmod 0640 /etc/agentd/config.toml || true
fi
if command -v deb-systemd-helper >/dev/null 2>&1; then
    deb-systemd-helper unmask agentd.service >/dev/null || true
    if deb-systemd-helper --quiet was-enabled agentd.service; then
        deb-systemd-helper enable agentd.service >/dev/null || true
    else
        deb-systemd-helper update-state agentd.service >/dev/null || true
        deb-systemd-helper enable agentd.service >/dev/null || true
    fi
fi
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    if [ -n "$2" ]; then
        # Upgrade: restart onto the new binary; runs resume where they were.
        deb-systemd-invoke try-restart agentd.service >/dev/null || true
    else
        deb-systemd-invoke start agentd.service >/dev/null || true
    fi
fi
exit 0
