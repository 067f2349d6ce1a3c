package tools

import (
	"net/netip"
	"strings"
	"testing"
)

func TestAllowlist(t *testing.T) {
	a, err := NewAllowlist([]string{"api.example.org", "*.intranet.example", "10.0.0.5:8080", "[::1]:9000", "Mixed.Case.ORG."})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host, port string
		want       bool
	}{
		{"api.example.org", "443", true},
		{"api.example.org", "8443", true}, // no port in the entry: any port
		{"API.example.org.", "443", true},
		{"evil-api.example.org", "443", false},
		{"api.example.org.evil.com", "443", false},
		{"example.org", "443", false},
		{"wiki.intranet.example", "80", true},
		{"a.b.intranet.example", "80", true},
		{"intranet.example", "80", false},
		{"xintranet.example", "80", false},
		{"10.0.0.5", "8080", true},
		{"10.0.0.5", "80", false},
		{"::1", "9000", true},
		{"::1", "9001", false},
		{"mixed.case.org", "80", true},
	}
	for _, tt := range tests {
		if got := a.Allows(tt.host, tt.port); got != tt.want {
			t.Errorf("Allows(%s, %s) = %v, want %v", tt.host, tt.port, got, tt.want)
		}
	}
	for _, bad := range []string{"", "http://x.org", "x.org/path", "a.*.org", "*", "x.org:99999", "x.org:abc", "user@x.org"} {
		if _, err := NewAllowlist([]string{bad}); err == nil {
			t.Errorf("NewAllowlist(%q) accepted", bad)
		}
	}
}

func TestBlockedAddr(t *testing.T) {
	tests := []struct {
		ip         string
		loopbackOK bool
		want       string // fragment; "" = allowed
	}{
		{"93.184.216.34", false, ""},
		{"10.1.2.3", false, ""},
		{"192.168.1.10", false, ""},
		{"2001:db8::1", false, ""},
		{"169.254.169.254", true, "metadata"},
		{"::ffff:169.254.169.254", true, "metadata"},
		{"64:ff9b::a9fe:a9fe", true, "metadata"},
		{"fd00:ec2::254", true, "metadata"},
		{"100.100.100.200", true, "metadata"},
		{"169.254.1.1", true, "link-local"},
		{"fe80::1", true, "link-local"},
		{"0.0.0.0", true, "unspecified"},
		{"0.1.2.3", true, "unspecified"},
		{"::", true, "unspecified"},
		{"224.0.0.1", true, "multicast"},
		{"ff02::1", true, "multicast"},
		{"255.255.255.255", true, "broadcast"},
		{"127.0.0.1", false, "loopback"},
		{"127.9.9.9", false, "loopback"},
		{"::1", false, "loopback"},
		{"::ffff:127.0.0.1", false, "loopback"},
		{"127.0.0.1", true, ""},
	}
	for _, tt := range tests {
		got := blockedAddr(netip.MustParseAddr(tt.ip), tt.loopbackOK)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("blockedAddr(%s, %v) = %q, want %q", tt.ip, tt.loopbackOK, got, tt.want)
		}
	}
}
