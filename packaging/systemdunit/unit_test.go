package systemdunit

import (
	"strings"
	"testing"
)

// The unit `agentd install` writes for the packaged layout is the packaged
// unit itself, byte for byte.
func TestRenderOfThePackagedLayoutIsThePackagedUnit(t *testing.T) {
	got, err := Render("/usr/bin/agentd", []string{"serve", "--config", "/etc/agentd/config.toml"}, "agentd")
	if err != nil {
		t.Fatal(err)
	}
	if got != Packaged {
		t.Errorf("rendered unit differs from agentd.service:\n%s", got)
	}
}

func TestRenderAsRootAndOddPaths(t *testing.T) {
	got, err := Render("/opt/my tools/agentd", []string{"serve", "--config", "/etc/100%/a$b.toml"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := "ExecStart=\"/opt/my tools/agentd\" serve --config /etc/100%%/a$$b.toml\n"; !strings.Contains(got, want) {
		t.Errorf("want %q in:\n%s", want, got)
	}
	if strings.Contains(got, "\nUser=") || strings.Contains(got, "\nGroup=") {
		t.Errorf("root unit names a user:\n%s", got)
	}
}
