package api

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// TokenFile holds the API token on disk (mode 0600) and notices when
// `agentd token --rotate` replaces it, so a running daemon needs no restart.
type TokenFile struct {
	Path string

	mu      sync.Mutex
	token   string
	modTime time.Time
	checked time.Time
}

// LoadOrCreateToken reads the token at path, creating one on first start.
func LoadOrCreateToken(path string) (*TokenFile, error) {
	t := &TokenFile{Path: path}
	tok, err := readToken(path)
	if errors.Is(err, fs.ErrNotExist) {
		if tok, err = RotateToken(path); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	t.token = tok
	if st, err := os.Stat(path); err == nil {
		t.modTime = st.ModTime()
	}
	return t, nil
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", fmt.Errorf("token file %s holds no usable token — run `agentd token --rotate`", path)
	}
	return tok, nil
}

// RotateToken writes a fresh random token to path with mode 0600 and
// returns it.
func RotateToken(path string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := "agd_" + hex.EncodeToString(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", fmt.Errorf("create %s: %w — set server.token_file or storage.state_dir to a writable place", filepath.Dir(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write token file %s: %w — set server.token_file or storage.state_dir to a writable place", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	return tok, nil
}

// Token returns the current token, re-reading the file at most once a
// second if it changed.
func (t *TokenFile) Token() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Since(t.checked) > time.Second {
		t.checked = time.Now()
		if st, err := os.Stat(t.Path); err == nil && !st.ModTime().Equal(t.modTime) {
			if tok, err := readToken(t.Path); err == nil {
				t.token, t.modTime = tok, st.ModTime()
			}
		}
	}
	return t.token
}

// Check compares a presented token in constant time.
func (t *TokenFile) Check(presented string) bool {
	want := t.Token()
	return presented != "" && subtle.ConstantTimeCompare([]byte(presented), []byte(want)) == 1
}
