package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// ErrSyntax marks a file that is not valid TOML; ErrUnknownKey a key agentd
// does not know; ErrInvalid a value outside what is allowed.
var (
	ErrSyntax     = errors.New("config syntax error")
	ErrUnknownKey = errors.New("unknown config key")
	ErrInvalid    = errors.New("invalid config value")
)

// SystemPath is where a packaged install keeps its configuration.
const SystemPath = "/etc/agentd/config.toml"

// EnvPath names the environment variable that points at a config file.
const EnvPath = "AGENTD_CONFIG"

// Parse reads TOML from r over Default(), strictly: unknown keys are errors
// naming their full path and line. name is used in messages only. The result
// is not yet validated.
func Parse(r io.Reader, name string) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	cfg := Default()
	// Sections that hold lists replace the defaults rather than merging into
	// them, so the operator's list is the whole list.
	if hasKey(data, "ollama", "endpoints") {
		cfg.Ollama.Endpoints = nil
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return nil, describeDecodeError(name, err)
	}
	// An endpoint written without its server's limits has Ollama's
	// defaults, like the default endpoint: { name, url } is enough.
	def := Default().Ollama.Endpoints[0]
	for i := range cfg.Ollama.Endpoints {
		ep := &cfg.Ollama.Endpoints[i]
		if ep.ParallelSlots == 0 {
			ep.ParallelSlots = def.ParallelSlots
		}
		if ep.MaxQueue == 0 {
			ep.MaxQueue = def.MaxQueue
		}
	}
	return cfg, nil
}

// hasKey reports whether the document sets table.key, so list defaults can be
// replaced rather than appended to.
func hasKey(data []byte, table, key string) bool {
	var raw map[string]any
	if toml.Unmarshal(data, &raw) != nil {
		return false
	}
	t, ok := raw[table].(map[string]any)
	if !ok {
		return false
	}
	_, ok = t[key]
	return ok
}

func describeDecodeError(name string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		msgs := make([]string, 0, len(strict.Errors))
		for _, e := range strict.Errors {
			row, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d: unknown key %q — remove it or check its spelling against `agentd config example`",
				name, row, strings.Join(e.Key(), ".")))
		}
		return fmt.Errorf("%w: %s", ErrUnknownKey, strings.Join(msgs, "; "))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		kind := ErrSyntax
		// A well-formed value of the wrong shape (a duration like "5 mins", a
		// string where a number belongs) is a value error, not a syntax one.
		if msg := de.Error(); strings.Contains(msg, "invalid duration") || strings.Contains(msg, "invalid size") || strings.Contains(msg, "cannot decode") {
			kind = ErrInvalid
		}
		if key := strings.Join(de.Key(), "."); key != "" {
			return fmt.Errorf("%w: %s:%d:%d: %s: %s", kind, name, row, col, key, de.Error())
		}
		return fmt.Errorf("%w: %s:%d:%d: %s", kind, name, row, col, de.Error())
	}
	// Type errors from custom unmarshalers (durations, sizes) arrive wrapped
	// without a position; keep the parser's words.
	return fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
}

// Load reads and validates the file at path. An empty path uses the lookup
// order: $AGENTD_CONFIG, /etc/agentd/config.toml, ./config.toml, and finally
// the defaults alone. It returns the path actually used ("" for defaults).
func Load(path string) (*Config, string, error) {
	if path == "" {
		path = Lookup(os.Getenv, fileExists)
	}
	cfg := Default()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, path, fmt.Errorf("open config: %w — pass --config FILE, or run `agentd config example > %s` to start one", err, path)
		}
		defer f.Close()
		cfg, err = Parse(f, path)
		if err != nil {
			return nil, path, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, path, err
	}
	return cfg, path, nil
}

// Lookup returns the first config file that exists in agentd's search order,
// or "" when none does.
func Lookup(getenv func(string) string, exists func(string) bool) string {
	if p := getenv(EnvPath); p != "" {
		return p
	}
	for _, p := range []string{SystemPath, "config.toml"} {
		if exists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// ResolveStateDir decides where agentd keeps its state when storage.state_dir
// is empty: systemd's $STATE_DIRECTORY, /var/lib/agentd for root, otherwise
// the user's XDG state directory, so `agentd serve` works unprivileged.
func ResolveStateDir(configured string, getenv func(string) string, uid int) string {
	if configured != "" {
		return configured
	}
	if d := getenv("STATE_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0]
	}
	if uid == 0 {
		return "/var/lib/agentd"
	}
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "agentd")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "agentd")
	}
	return ".agentd"
}

// Paths are the resolved locations of agentd's state.
type Paths struct {
	StateDir  string
	Database  string
	TokenFile string
	LockFile  string
}

// ResolvePaths fills in the derived locations.
func (c *Config) ResolvePaths() Paths {
	dir := ResolveStateDir(c.Storage.StateDir, os.Getenv, os.Getuid())
	p := Paths{StateDir: dir, Database: c.Storage.Database, TokenFile: c.Server.TokenFile}
	if p.Database == "" {
		p.Database = filepath.Join(dir, "agentd.db")
	}
	if p.TokenFile == "" {
		p.TokenFile = filepath.Join(dir, "api.token")
	}
	p.LockFile = filepath.Join(dir, "agentd.lock")
	return p
}

// Secret reads a secret from the file if set, else from the environment
// variable. Secrets are never accepted inline in the config file.
func Secret(envName, file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("secret file %s does not exist — create it (mode 0600) or unset the *_file key", file)
			}
			return "", fmt.Errorf("read secret file %s: %w", file, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if envName != "" {
		return os.Getenv(envName), nil
	}
	return "", nil
}
