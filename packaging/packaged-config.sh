#!/bin/sh
# packaged-config.sh EXAMPLE OUT: the /etc/agentd/config.toml the .deb ships.
# It is the documented example with storage.state_dir set to the service's
# StateDirectory, so that `agentd token`, `agentd doctor` and every other
# command reading this file use the service's files, whoever runs them.
set -eu
example=$1 out=$2
awk '
$0 == "state_dir = \"\"" {
    n++
    print "# Packaged install: the service'\''s StateDirectory, named here so that every"
    print "# agentd command that reads this file (token, doctor, db backup) uses the"
    print "# service'\''s files, whoever runs it."
    print "state_dir = \"/var/lib/agentd\""
    next
}
{ print }
END { exit n == 1 ? 0 : 1 }
' "$example" > "$out" || {
    echo "packaged-config.sh: $example must have exactly one line 'state_dir = \"\"' (in [storage]) for the package to set" >&2
    rm -f "$out"
    exit 1
}
