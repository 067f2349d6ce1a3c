#!/bin/sh
# Create the agentd system user before files owned by it are unpacked.
set -e
if ! getent group agentd >/dev/null 2>&1; then
    groupadd --system agentd
fi
if ! getent passwd agentd >/dev/null 2>&1; then
    useradd --system --gid agentd --home-dir /var/lib/agentd --no-create-home \
        --shell /usr/sbin/nologin --comment "agentd daemon" agentd
fi
exit 0
