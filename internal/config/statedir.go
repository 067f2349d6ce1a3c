package config

import (
	"os/user"
	"strconv"
	"sync"
)

// SystemStateDir is the state directory of a system-wide agentd: the
// packaged unit's StateDirectory, and what the packaged config names.
const SystemStateDir = "/var/lib/agentd"

// ServiceUser is the system account the package creates and the service
// runs as.
const ServiceUser = "agentd"

// serviceUserUID is the uid of ServiceUser, or -1 where there is no such
// user; looked up once (a variable so tests can pretend to be it).
var serviceUserUID = sync.OnceValue(func() int {
	u, err := user.Lookup(ServiceUser)
	if err != nil {
		return -1
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return -1
	}
	return uid
})

// usesSystemStateDir reports whether a process of uid keeps its state in
// SystemStateDir when the config names none: root, and the service's own
// user, so `sudo -u agentd agentd token` (or doctor) reads the files the
// service writes even outside systemd, where $STATE_DIRECTORY is unset.
func usesSystemStateDir(uid int) bool {
	return uid == 0 || uid == serviceUserUID()
}
