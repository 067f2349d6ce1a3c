#!/bin/sh
# Give the agentd user the GPU device groups, prepare its directories, and
# enable the service where systemd runs. Harmless where it does not
# (containers, chroots): every systemd step is skipped.
set -e
for g in video render; do
    if getent group "$g" >/dev/null 2>&1; then
        usermod -a -G "$g" agentd 2>/dev/null || true
    fi
done
install -d -m 0750 -o agentd -g agentd /var/lib/agentd
if [ -f /etc/agentd/config.toml ]; then
    chgrp agentd /etc/agentd/config.toml 2>/dev/null || true
    chmod 0640 /etc/agentd/config.toml 2>/dev/null || true
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload || true
    systemctl enable agentd.service || true
    if [ "$1" = "configure" ] && [ -n "$2" ]; then
        # Upgrade: restart onto the new binary; runs resume where they were.
        systemctl try-restart agentd.service || true
    else
        systemctl start agentd.service || true
    fi
fi
exit 0
