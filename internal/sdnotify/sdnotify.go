// Package sdnotify speaks systemd's notify protocol (Type=notify) over the
// $NOTIFY_SOCKET datagram socket, without cgo or libsystemd.
package sdnotify

import (
	"net"
	"os"
)

// States agentd reports.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)

// Notify sends state to systemd. It reports false with no error when agentd
// is not running under systemd (no $NOTIFY_SOCKET).
func Notify(state string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	if path[0] == '@' { // abstract namespace
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, err
	}
	return true, nil
}
