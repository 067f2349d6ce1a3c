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
