package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
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

// Parse reads TOML from r over Default(), strictly. Every unknown key and
// every value of the wrong type is a Problem naming its key path and line,
// all of them at once in a Problems error; only a syntax error stops at the
// first, since the rest of the file cannot be read. name is used in messages
// only. The result is not yet validated: Check does both.
func Parse(r io.Reader, name string) (*Config, error) {
	cfg, _, probs, err := parse(r, name)
	if err != nil {
		return nil, err
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return cfg, nil
}

// Check parses like Parse and validates what it read, so that the file's
// unknown keys, wrong types and invalid values are listed together, in line
// order.
func Check(r io.Reader, name string) (*Config, error) {
	cfg, lines, probs, err := parse(r, name)
	if err != nil {
		return nil, err
	}
	// cfg holds everything that decoded; a key that did not keeps its
	// default. Validation may still refuse that stand-in (a list emptied of
	// its bad element); the key's problem is already listed.
	for _, vp := range validationProblems(name, lines, cfg.Validate()) {
		if !probs.cover(vp) {
			probs = append(probs, vp)
		}
	}
	if len(probs) > 0 {
		probs.sortByLine()
		return nil, probs
	}
	return cfg, nil
}

// parse decodes what it can of the document and lists what it cannot.
func parse(r io.Reader, name string) (*Config, keyLines, Problems, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, nil, nil, syntaxError(name, err)
	}
	lines := readKeyLines(data)
	shapes := &shapeChecker{}
	shapes.table("", reflect.TypeFor[Config](), doc)
	var probs Problems
	for _, e := range shapes.errs {
		probs = append(probs, &Problem{File: name, Line: lines.find(e.(keyed).keyPath()), Err: e})
	}
	if len(probs) > 0 {
		// What is left of the document, without the keys at fault.
		if data, err = toml.Marshal(doc); err != nil {
			return nil, nil, nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	cfg := Default()
	// Sections that hold lists replace the defaults rather than merging into
	// them, so the operator's list is the whole list.
	if hasKey(doc, "ollama", "endpoints") {
		cfg.Ollama.Endpoints = nil
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		// The shape check finds everything go-toml refuses; should the two
		// ever differ, go-toml's finding is still reported, not lost.
		probs = append(probs, decodeProblems(name, lines, err)...)
	}
	// An endpoint written without its server's limits has Ollama's
	// defaults, like the default endpoint: { name, url } is enough.
	def := Default().Ollama.Endpoints[0]
	for i := range cfg.Ollama.Endpoints {
		ep := &cfg.Ollama.Endpoints[i]
		if ep.Kind == "" {
			ep.Kind = def.Kind
		}
		if ep.ParallelSlots == 0 {
			ep.ParallelSlots = def.ParallelSlots
		}
		if ep.MaxQueue == 0 {
			ep.MaxQueue = def.MaxQueue
		}
	}
	probs.sortByLine()
	return cfg, lines, probs, nil
}

// hasKey reports whether the document sets table.key, so list defaults can be
// replaced rather than appended to.
func hasKey(doc map[string]any, table, key string) bool {
	t, ok := doc[table].(map[string]any)
	if !ok {
		return false
	}
	_, ok = t[key]
	return ok
}

func syntaxError(name string, err error) error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return &SyntaxError{File: name, Line: row, Column: col, Msg: strings.TrimPrefix(de.Error(), "toml: ")}
	}
	return &SyntaxError{File: name, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
}

// validationProblems places each of Validate's errors on its key's line.
func validationProblems(file string, lines keyLines, err error) Problems {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	ps := make(Problems, 0, len(errs))
	for _, e := range errs {
		line := 0
		if k, ok := e.(keyed); ok {
			line = lines.find(k.keyPath())
		}
		ps = append(ps, &Problem{File: file, Line: line, Err: e})
	}
	return ps
}

// decodeProblems words an error of go-toml's decoder as Problems.
func decodeProblems(name string, lines keyLines, err error) Problems {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		ps := make(Problems, 0, len(strict.Errors))
		for _, e := range strict.Errors {
			row, _ := e.Position()
			ps = append(ps, &Problem{File: name, Line: row, Err: &UnknownKeyError{Path: joinParts(e.Key())}})
		}
		return ps
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		path := joinParts(de.Key())
		return Problems{{File: name, Line: lines.find(path), Err: &ValueError{Path: path, Reason: goToTOMLWords(de.Error())}}}
	}
	return Problems{{File: name, Err: &ValueError{Path: "(file)", Reason: goToTOMLWords(err.Error())}}}
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
		cfg, err = Check(f, path)
		if err != nil {
			return nil, path, err
		}
		return cfg, path, nil
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
// is empty: systemd's $STATE_DIRECTORY, /var/lib/agentd for root and for the
// agentd service user, otherwise the user's XDG state directory, so
// `agentd serve` works unprivileged. (The packaged config names
// /var/lib/agentd outright, so on a packaged host every user's commands
// agree with the service.)
func ResolveStateDir(configured string, getenv func(string) string, uid int) string {
	if configured != "" {
		return configured
	}
	if d := getenv("STATE_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0]
	}
	if usesSystemStateDir(uid) {
		return SystemStateDir
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
