package config

import "testing"

// The service's user resolves the service's state dir outside systemd too,
// so `sudo -u agentd agentd token` and the service read the same token.
func TestResolveStateDirForTheServiceUser(t *testing.T) {
	saved := serviceUserUID
	t.Cleanup(func() { serviceUserUID = saved })
	serviceUserUID = func() int { return 998 }
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	home := map[string]string{"HOME": "/var/lib/agentd"}
	tests := []struct {
		name string
		conf string
		env  map[string]string
		uid  int
		want string
	}{
		{"service user, no systemd", "", home, 998, SystemStateDir},
		{"service user under systemd", "", map[string]string{"STATE_DIRECTORY": "/var/lib/agentd"}, 998, "/var/lib/agentd"},
		{"configured wins", "/srv/agentd", home, 998, "/srv/agentd"},
		{"root", "", map[string]string{"HOME": "/root"}, 0, SystemStateDir},
		{"another user", "", map[string]string{"HOME": "/home/op"}, 1000, "/home/op/.local/state/agentd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ResolveStateDir(tt.conf, env(tt.env), tt.uid); got != tt.want {
				t.Errorf("ResolveStateDir(%q, %v, %d) = %q, want %q", tt.conf, tt.env, tt.uid, got, tt.want)
			}
		})
	}
}
