package ollamatest

import (
	"net/http"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestServerHasBothModels(t *testing.T) {
	s := Shared(t)
	for _, name := range []string{Plain, Tools} {
		var show struct {
			Capabilities []string `json:"capabilities"`
		}
		if err := s.call(http.MethodPost, "/api/show", map[string]any{"model": name}, &show); err != nil {
			t.Fatal(err)
		}
		caps := strings.Join(show.Capabilities, ",")
		if wantTools := name == Tools; strings.Contains(caps, "tools") != wantTools {
			t.Errorf("%s capabilities %q: tools capability should be %v", name, caps, wantTools)
		}
	}
}

func TestKillAndRestart(t *testing.T) {
	s := Start(t)
	s.Kill()
	if s.Up() {
		t.Fatal("server still up after Kill")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if !s.Up() {
		t.Fatal("server not up after Restart")
	}
}
