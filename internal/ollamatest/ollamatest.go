// Package ollamatest gives conformance tests a real Ollama server: the one
// named by AGENTD_TEST_OLLAMA (a running server, for example a user's own
// at http://127.0.0.1:11434), or one started from the binary named by
// AGENTD_TEST_OLLAMA_BIN (../shared/ollama/ollama in CI), with the tiny
// random-weight model beside it. Tests that need it call Shared or Start;
// when neither variable is set they are skipped with a line saying how to
// run them, and .ci/run sets them so CI never skips.
//
// The models it makes from the tiny weights:
//   - Plain ("tiny"): completion only, like a model without tool calling.
//   - Tools ("tiny-tools"): a template that renders .Tools, so Ollama
//     reports the tools capability and parses tool calls.
//
// What the model says is noise; protocol, grammars, stream endings, errors
// and timing are the real server's.
package ollamatest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Model names created on every server this package starts (and on an
// external one, if missing).
const (
	Plain = "tiny"
	Tools = "tiny-tools"
)

// toolsTemplate renders the tools offered, which is what makes Ollama
// report the tools capability, and a plain transcript otherwise.
const toolsTemplate = `{{- if .Tools }}Tools:{{ range .Tools }} {{ .Function.Name }}{{ end }}
{{ end }}{{ range .Messages }}{{ .Role }}: {{ .Content }}
{{ end }}assistant:`

// Env names.
const (
	EnvURL = "AGENTD_TEST_OLLAMA"
	EnvBin = "AGENTD_TEST_OLLAMA_BIN"
)

// Server is one real Ollama server.
type Server struct {
	URL string
	Dir string // its model store and log (empty for an external server)
	Log string // path of its log (for an external server, AGENTD_TEST_OLLAMA_LOG)

	cmd    *exec.Cmd
	port   int
	bin    string
	ownDir bool // Dir was made here and goes with the server
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
	started    []*Server
	startedMu  sync.Mutex
)

// Available reports whether a real server can be had.
func Available() bool { return os.Getenv(EnvURL) != "" || os.Getenv(EnvBin) != "" }

func skip(t testing.TB) {
	t.Helper()
	if !Available() {
		t.Skipf("no real Ollama for conformance tests: set %s=http://127.0.0.1:11434 (a running server with nothing else to do) or %s=path/to/ollama (../shared/ollama/ollama)", EnvURL, EnvBin)
	}
}

// Shared returns the server every test in this test binary shares: the
// external one if AGENTD_TEST_OLLAMA is set, else one started once. Tests
// that kill or restart a server use Start instead.
func Shared(t testing.TB) *Server {
	t.Helper()
	skip(t)
	sharedOnce.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			shared = &Server{URL: strings.TrimRight(u, "/"), Log: os.Getenv("AGENTD_TEST_OLLAMA_LOG")}
			sharedErr = shared.ensureModels()
			return
		}
		shared, sharedErr = start(os.Getenv(EnvBin), 0, "")
	})
	if sharedErr != nil {
		t.Fatalf("real ollama: %v", sharedErr)
	}
	return shared
}

// Start starts a private server, stopped when the test ends. It needs
// AGENTD_TEST_OLLAMA_BIN: tests that stop the server cannot do so to a
// server they do not own.
func Start(t testing.TB) *Server {
	t.Helper()
	skip(t)
	bin := os.Getenv(EnvBin)
	if bin == "" {
		t.Skipf("this test stops and restarts its own Ollama: set %s=path/to/ollama", EnvBin)
	}
	s, err := start(bin, 0, t.TempDir())
	if err != nil {
		t.Fatalf("real ollama: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Main runs the tests and then stops every server this package started.
// Test packages that use Shared call it from TestMain.
func Main(m interface{ Run() int }) {
	code := m.Run()
	startedMu.Lock()
	for _, s := range started {
		s.Stop()
		if s.ownDir {
			_ = os.RemoveAll(s.Dir)
		}
	}
	startedMu.Unlock()
	os.Exit(code)
}

func start(bin string, port int, dir string) (*Server, error) {
	if bin == "" {
		return nil, fmt.Errorf("%s is not set", EnvBin)
	}
	if st, err := os.Stat(bin); err == nil && st.IsDir() {
		bin = filepath.Join(bin, "ollama")
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s=%s: %w", EnvBin, bin, err)
	}
	ownDir := dir == ""
	if ownDir {
		d, err := os.MkdirTemp("", "agentd-ollama-")
		if err != nil {
			return nil, err
		}
		dir = d
	}
	if port == 0 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	s := &Server{Dir: dir, Log: filepath.Join(dir, "serve.log"), port: port, bin: bin, ownDir: ownDir,
		URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if err := s.launch(); err != nil {
		return nil, err
	}
	startedMu.Lock()
	started = append(started, s)
	startedMu.Unlock()
	if err := s.ensureModels(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) launch() error {
	if err := os.MkdirAll(filepath.Join(s.Dir, "models"), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "serve")
	cmd.Env = append(os.Environ(), "HOME="+s.Dir, "OLLAMA_MODELS="+filepath.Join(s.Dir, "models"),
		fmt.Sprintf("OLLAMA_HOST=127.0.0.1:%d", s.port))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so Stop also ends the runner it spawns; and
	// killed with the test binary if that dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	logf.Close()
	s.cmd = cmd
	go func() { _ = cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s.Up() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("ollama did not answer at %s within 20s; see %s", s.URL, s.Log)
}

// Up reports whether the server answers /api/version.
func (s *Server) Up() bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(s.URL + "/api/version")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Kill stops the server at once (SIGKILL to its process group), as a
// crash would. The URL stays the same for Restart.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	for i := 0; i < 100 && s.Up(); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd = nil
}

// Restart starts a killed server again on the same port and model store.
func (s *Server) Restart() error {
	if s.bin == "" {
		return fmt.Errorf("not a server this package started")
	}
	return s.launch()
}

// Stop ends a server this package started; an external one is left alone.
func (s *Server) Stop() { s.Kill() }

// LogText returns the server's log so far (empty for an external server
// whose log AGENTD_TEST_OLLAMA_LOG does not name).
func (s *Server) LogText() string {
	if s.Log == "" {
		return ""
	}
	b, _ := os.ReadFile(s.Log)
	return string(b)
}

// Weights returns the path of the tiny model's weights (tiny.gguf next to
// the binary, or AGENTD_TEST_OLLAMA_GGUF).
func weights() (string, error) {
	if p := os.Getenv("AGENTD_TEST_OLLAMA_GGUF"); p != "" {
		return p, nil
	}
	bin := os.Getenv(EnvBin)
	if bin == "" {
		return "", fmt.Errorf("no tiny.gguf: set AGENTD_TEST_OLLAMA_GGUF or %s", EnvBin)
	}
	if st, err := os.Stat(bin); err == nil && !st.IsDir() {
		bin = filepath.Dir(bin)
	}
	return filepath.Join(bin, "tiny.gguf"), nil
}

// ensureModels creates Plain and Tools unless they exist already.
func (s *Server) ensureModels() error {
	var tags struct {
		Models []struct {
			Name string `json:"name"`
			Size int64  `json:"size"`
		} `json:"models"`
	}
	if err := s.call(http.MethodGet, "/api/tags", nil, &tags); err != nil {
		return fmt.Errorf("list models at %s: %w", s.URL, err)
	}
	// Both are (re)made every time, so they carry testParameters even on a
	// server where someone made "tiny" without them (the start script).
	path, err := weights()
	if err != nil {
		// A user's own server without the tiny weights: make both from
		// its smallest model, so the suite runs with one variable set.
		smallest := ""
		var size int64
		for _, m := range tags.Models {
			name := strings.TrimSuffix(m.Name, ":latest")
			if name == Plain || name == Tools {
				continue
			}
			if smallest == "" || m.Size < size {
				smallest, size = m.Name, m.Size
			}
		}
		if smallest == "" {
			return fmt.Errorf("%s has no models and no tiny.gguf is at hand: `ollama pull` a small model, or set AGENTD_TEST_OLLAMA_GGUF", s.URL)
		}
		if err := s.Create(Plain, map[string]any{"from": smallest, "files": nil, "parameters": testParameters}); err != nil {
			return err
		}
		return s.Create(Tools, map[string]any{"from": smallest, "files": nil, "template": toolsTemplate, "parameters": testParameters})
	}
	files, err := s.upload(path)
	if err != nil {
		return err
	}
	if err := s.Create(Plain, map[string]any{"files": files, "parameters": testParameters}); err != nil {
		return err
	}
	return s.Create(Tools, map[string]any{"files": files, "template": toolsTemplate, "parameters": testParameters})
}

// testParameters are the test models' defaults. One thread: the model is
// tiny, and llama.cpp's default of a thread per core spins against the Go
// tests running beside it on a small machine, making a millisecond call
// take tens of seconds.
var testParameters = map[string]any{"num_thread": 1}

// ShowParameters is what /api/show reports as the test models'
// "parameters", in Ollama's layout (a simulator serving them says the same).
func ShowParameters() string {
	keys := make([]string, 0, len(testParameters))
	for k := range testParameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = fmt.Sprintf("%-30s %v", k, testParameters[k])
	}
	return strings.Join(lines, "\n")
}

// Create makes a model from the tiny weights' blob with /api/create; spec
// holds the request's other fields (files, template, parameters, system).
func (s *Server) Create(name string, spec map[string]any) error {
	body := map[string]any{"model": name, "stream": false}
	for k, v := range spec {
		if v != nil {
			body[k] = v
		}
	}
	if _, ok := spec["files"]; !ok {
		path, err := weights()
		if err != nil {
			return err
		}
		if body["files"], err = s.upload(path); err != nil {
			return err
		}
	}
	if err := s.call(http.MethodPost, "/api/create", body, nil); err != nil {
		return fmt.Errorf("create model %s: %w", name, err)
	}
	return nil
}

// upload puts the weights at path on the server as a blob and returns the
// "files" of a create request that uses them.
func (s *Server) upload(path string) (map[string]string, error) {
	blob, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(blob)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if err := s.send(http.MethodPost, "/api/blobs/"+digest, blob, nil); err != nil {
		return nil, fmt.Errorf("upload %s: %w", filepath.Base(path), err)
	}
	return map[string]string{"tiny.gguf": digest}, nil
}

func (s *Server) call(method, path string, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	return s.send(method, path, body, out)
}

// send makes one request and decodes a 2xx answer into out (when set).
func (s *Server) send(method, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
