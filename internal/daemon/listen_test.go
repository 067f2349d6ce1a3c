package daemon

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
)

// writeSelfSigned writes a PEM certificate for 127.0.0.1 and its key.
func writeSelfSigned(t *testing.T) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agentd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

func TestServerTLS(t *testing.T) {
	certPath, keyPath := writeSelfSigned(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	tc, err := ServerTLS(config.ServerConfig{Listen: "0.0.0.0:8484", TLSCert: certPath, TLSKey: keyPath}, log)
	if err != nil || tc == nil || len(tc.Certificates) != 1 {
		t.Fatalf("valid cert: %v %v", tc, err)
	}

	missing := filepath.Join(t.TempDir(), "nope.pem")
	_, err = ServerTLS(config.ServerConfig{Listen: "0.0.0.0:8484", TLSCert: missing, TLSKey: keyPath}, log)
	if err == nil || !strings.Contains(err.Error(), "server.tls_cert") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing cert: %v, want the key and the file named", err)
	}

	if tc, err := ServerTLS(config.ServerConfig{Listen: "127.0.0.1:8484"}, log); tc != nil || err != nil || logs.Len() != 0 {
		t.Fatalf("loopback without TLS: %v %v, logged %q", tc, err, logs.String())
	}
	if tc, err := ServerTLS(config.ServerConfig{Listen: "0.0.0.0:8484", InsecurePlaintext: true}, log); tc != nil || err != nil ||
		!strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "insecure_plaintext") {
		t.Fatalf("plaintext opt-out: %v %v, logged %q", tc, err, logs.String())
	}
}

func TestAllowedHosts(t *testing.T) {
	got := AllowedHosts(config.ServerConfig{Listen: "agentd.lan:8484", AllowedHosts: []string{"*.site.example"}})
	if !slices.Equal(got, []string{"*.site.example", "agentd.lan"}) {
		t.Errorf("hosts %v", got)
	}
	if got := AllowedHosts(config.ServerConfig{Listen: "0.0.0.0:8484"}); len(got) != 0 {
		t.Errorf("an IP listen added %v", got)
	}
}
