package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentd/agentd/internal/buildinfo"
)

// Bounds of MCP servers.
const (
	mcpStartTimeout   = 20 * time.Second
	defaultMCPTimeout = 30 * time.Second
	mcpMaxMessage     = 4 << 20
	// mcpLastWords is how long a server that exited may still take to
	// flush its stderr, which says why.
	mcpLastWords = 500 * time.Millisecond
)

// MCPOptions declares a Model Context Protocol server: a program run over
// stdio (Argv) or a Streamable HTTP endpoint (URL), exactly one of them.
type MCPOptions struct {
	Name string
	Argv []string
	URL  string
	// AllowHosts is tools.http.allow_hosts: a URL's host must be on it, as
	// for every HTTP request agentd makes for a model.
	AllowHosts []string
	Lookup     LookupFunc // resolves the URL's host; nil means the system resolver
	Env        []string   // names passed through from agentd's environment, besides PATH
	Timeout    time.Duration
	Approval   Approval
	ConfigKey  string
	LookupEnv  func(string) (string, bool)
	Logger     *slog.Logger
}

// MCPServer is one MCP server and the tools it offers, spoken to through
// the official Go SDK. A stdio server's process is started by NewMCPServer,
// restarted on the next call if it dies, runs in its own process group with
// a scrubbed environment like a command tool, and is killed with its group
// by Close. An HTTP server is reached only through the host allowlist.
type MCPServer struct {
	o      MCPOptions
	log    *slog.Logger
	client *mcp.Client
	dial   func(ctx context.Context) (*mcpConn, error)

	mu    sync.Mutex // guards conn, tools and closed
	conn  *mcpConn
	tools []Tool
	// closed is set by Close: no restart after it.
	closed bool

	relist chan struct{} // a pending tool-list refresh; buffered 1
	stop   chan struct{} // closed by Close
	wg     sync.WaitGroup
}

// mcpTool is one tool of an MCP server, registered as server_tool.
type mcpTool struct {
	srv    *MCPServer
	remote string
	spec   Spec
}

var (
	_ Tool      = (*mcpTool)(nil)
	_ io.Closer = (*MCPServer)(nil)
)

// Spec implements Tool.
func (t *mcpTool) Spec() Spec { return t.spec }

// Call implements Tool.
func (t *mcpTool) Call(ctx context.Context, args json.RawMessage) (Result, error) {
	return t.srv.callTool(ctx, t.remote, args)
}

// NewMCPServer connects to the server (starting it, for stdio), lets the
// SDK negotiate the protocol revision (the newest it knows, falling back to
// what an older server answers) and lists its tools. Errors name the config
// key.
func NewMCPServer(ctx context.Context, o MCPOptions) (*MCPServer, error) {
	if o.ConfigKey == "" {
		o.ConfigKey = "MCP server " + o.Name
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultMCPTimeout
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &MCPServer{
		o: o, log: log.With("component", "tools", "mcp_server", o.Name),
		relist: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	switch {
	case o.URL != "" && len(o.Argv) > 0:
		return nil, fmt.Errorf("%s: set either argv (a program run over stdio) or url (a Streamable HTTP endpoint), not both", o.ConfigKey)
	case o.URL != "":
		dial, err := s.httpDialer()
		if err != nil {
			return nil, err
		}
		s.dial = dial
	default:
		if len(o.Argv) == 0 || o.Argv[0] == "" {
			return nil, fmt.Errorf("%s.argv: must name the server program and its arguments (or set url)", o.ConfigKey)
		}
		if _, err := exec.LookPath(o.Argv[0]); err != nil {
			return nil, fmt.Errorf("%s.argv[0]: program %q not found or not executable: %w — use an absolute path", o.ConfigKey, o.Argv[0], err)
		}
		s.dial = s.startStdio
	}
	s.client = mcp.NewClient(&mcp.Implementation{Name: "agentd", Version: buildinfo.Version}, &mcp.ClientOptions{
		Logger: s.log,
		// No roots, no sampling, no elicitation: agentd never hands a
		// server its file system, a model or a person. The SDK answers
		// such requests "method not found".
		Capabilities: &mcp.ClientCapabilities{},
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			s.askRelist()
		},
	})

	ctx, cancel := context.WithTimeout(ctx, mcpStartTimeout)
	defer cancel()
	s.mu.Lock()
	conn, err := s.dial(ctx)
	s.conn = conn
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.ConfigKey, err)
	}
	tools, err := s.listTools(ctx, conn)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: list tools: %w", o.ConfigKey, err)
	}
	s.tools = tools
	return s, nil
}

// Follow calls changed, from a goroutine of the server's own until Close,
// each time the server announced that its tool list changed (or was
// restarted) and agentd listed its tools again. It is called once the
// first list is registered: a change announced before is not lost, it
// waits for Follow.
func (s *MCPServer) Follow(changed func(old, tools []Tool)) {
	s.wg.Add(1)
	go s.followToolList(changed)
}

// Tools returns the server's tools, named <server>_<tool>, as last listed.
func (s *MCPServer) Tools() []Tool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tools
}

// Close ends the session; a stdio server is killed with its process group.
func (s *MCPServer) Close() error {
	s.mu.Lock()
	c := s.conn
	wasClosed := s.closed
	s.conn, s.closed = nil, true
	s.mu.Unlock()
	if !wasClosed {
		close(s.stop)
	}
	if c != nil {
		c.close()
	}
	s.wg.Wait()
	return nil
}

// askRelist schedules a tool-list refresh without blocking the SDK's
// reader: notifications arrive on it, and a request made there would wait
// for an answer that reader has yet to read.
func (s *MCPServer) askRelist() {
	select {
	case s.relist <- struct{}{}:
	default: // one is pending already; it will see this change too
	}
}

// followToolList lists the tools again whenever asked, until Close.
func (s *MCPServer) followToolList(changed func(old, tools []Tool)) {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.relist:
		}
		s.mu.Lock()
		c := s.conn
		s.mu.Unlock()
		if c == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
		go func() { // Close must not wait for a slow server's answer
			select {
			case <-s.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		tools, err := s.listTools(ctx, c)
		cancel()
		if err != nil {
			s.log.Warn("MCP server changed its tools but listing them failed; keeping the old list", "error", err)
			continue
		}
		s.mu.Lock()
		old := s.tools
		s.tools = tools
		s.mu.Unlock()
		s.log.Info("MCP server's tools changed", "before", len(old), "now", len(tools))
		changed(old, tools)
	}
}

// listTools lists every page of the server's tools and maps them into
// agentd's tool name space.
func (s *MCPServer) listTools(ctx context.Context, c *mcpConn) ([]Tool, error) {
	var tools []Tool
	seen := map[string]bool{}
	for d, err := range c.cs.Tools(ctx, nil) {
		if err != nil {
			return nil, c.explain(err)
		}
		name := mcpToolName(s.o.Name, d.Name)
		if seen[name] {
			s.log.Warn("skip MCP tool whose name collides after mapping", "tool", d.Name, "as", name)
			continue
		}
		seen[name] = true
		schema, err := json.Marshal(d.InputSchema)
		if err != nil || string(schema) == "null" {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		desc := strings.TrimSpace(d.Description)
		if desc == "" {
			desc = fmt.Sprintf("Tool %s of the %s service.", d.Name, s.o.Name)
		}
		// MCP tools may change things; only a server's explicit hint makes
		// one retryable.
		idem := d.Annotations != nil && (d.Annotations.IdempotentHint || d.Annotations.ReadOnlyHint)
		tools = append(tools, &mcpTool{srv: s, remote: d.Name, spec: Spec{
			Name: name, Description: desc, ArgsSchema: schema, Approval: s.o.Approval,
			Timeout: s.o.Timeout + time.Second, Idempotent: idem,
		}})
	}
	return tools, nil
}

// mcpToolName maps a server's tool name into agentd's tool name space.
func mcpToolName(server, tool string) string {
	var sb strings.Builder
	sb.WriteString(server + "_")
	for _, r := range strings.ToLower(tool) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			sb.WriteRune(r)
		} else {
			sb.WriteByte('_')
		}
	}
	n := sb.String()
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

// live returns the session, reconnecting (restarting a stdio server) when
// the last one ended.
func (s *MCPServer) live(ctx context.Context) (*mcpConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("MCP server %s is closed", s.o.Name)
	}
	if s.conn != nil {
		select {
		case <-s.conn.done:
			s.log.Warn("MCP session ended; reconnecting", "error", s.conn.endErr)
			s.conn = nil
		default:
			return s.conn, nil
		}
	}
	sctx, cancel := context.WithTimeout(ctx, mcpStartTimeout)
	defer cancel()
	c, err := s.dial(sctx)
	if err != nil {
		return nil, err
	}
	s.conn = c
	// A restarted server may offer other tools than before.
	s.askRelist()
	return c, nil
}

func (s *MCPServer) callTool(ctx context.Context, name string, args json.RawMessage) (Result, error) {
	c, err := s.live(ctx)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	// The SDK sends notifications/cancelled when ctx ends first: the step
	// timeout and a cancelled run both reach the server.
	res, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("MCP %s/%s: %w", s.o.Name, name, ctx.Err())
		}
		return Result{}, fmt.Errorf("MCP %s/%s: %w", s.o.Name, name, c.explain(err))
	}
	var texts []string
	for _, ct := range res.Content {
		if t, ok := ct.(*mcp.TextContent); ok {
			texts = append(texts, t.Text)
		} else {
			texts = append(texts, "["+contentType(ct)+" content omitted]")
		}
	}
	text := strings.Join(texts, "\n")
	if res.IsError {
		return Result{}, fmt.Errorf("%w: MCP tool %s/%s reported: %s", ErrFailed, s.o.Name, name, text)
	}
	if res.StructuredContent != nil {
		if sc, err := json.Marshal(res.StructuredContent); err == nil && string(sc) != "null" {
			return Result{Output: sc}, nil
		}
	}
	return marshalResult(map[string]string{"text": text})
}

// contentType is the wire name of a content block's type ("image").
func contentType(c mcp.Content) string {
	b, err := json.Marshal(c)
	if err == nil {
		var v struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(b, &v) == nil && v.Type != "" {
			return v.Type
		}
	}
	return "non-text"
}

// mcpConn is one session with the server: for stdio, one process.
type mcpConn struct {
	cs     *mcp.ClientSession
	pid    int           // a stdio server's process; 0 for HTTP
	done   chan struct{} // closed when the session has ended
	endErr error         // why, set before done closes
	close  func()        // ends the session and waits for it
}

// explain turns the SDK's "connection closed" into why the server went
// away (its exit and last words on stderr), when the session has ended.
func (c *mcpConn) explain(err error) error {
	if !errors.Is(err, mcp.ErrConnectionClosed) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) && !errors.Is(err, os.ErrClosed) {
		return err
	}
	select {
	case <-c.done:
		return c.endErr
	case <-time.After(mcpLastWords):
		return err
	}
}

// startStdio starts the server program the way a command tool is started
// (startChild: scrubbed environment, own pipes, own process group) and
// speaks MCP with it over its stdin and stdout.
func (s *MCPServer) startStdio(ctx context.Context) (*mcpConn, error) {
	cmd := exec.Command(s.o.Argv[0], s.o.Argv[1:]...)
	cmd.Env = childEnv(s.o.Env, s.o.LookupEnv)
	pipes, err := startChild(cmd)
	if err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		// The server is gone; whatever it left behind (in its group, or
		// re-parented to agentd after a setsid) goes with it.
		_ = killTree(pid, false)
		close(exited)
	}()
	var smu sync.Mutex
	var stderr tailBuffer
	stderrEOF := make(chan struct{})
	go func() {
		defer close(stderrEOF)
		defer pipes.stderr.Close()
		buf := make([]byte, 4096)
		for {
			n, err := pipes.stderr.Read(buf)
			if n > 0 {
				smu.Lock()
				stderr.Write(buf[:n])
				smu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	// lastWords is the server's stderr once it has had a moment to flush.
	lastWords := func(err error) error {
		select {
		case <-stderrEOF:
		case <-time.After(mcpLastWords):
		}
		smu.Lock()
		tail := strings.TrimSpace(stderr.String())
		smu.Unlock()
		if tail != "" {
			return fmt.Errorf("%w: %s", err, tail)
		}
		return err
	}
	shutdown := func() {
		_ = killGroup(pid)
		<-exited
	}

	t := &mcp.IOTransport{Reader: pipes.stdout, Writer: pipes.stdin, MaxLineLength: mcpMaxMessage}
	cs, err := s.client.Connect(ctx, t, nil)
	if err != nil {
		shutdown()
		pipes.close()
		select {
		case <-exited:
			err = fmt.Errorf("%w (the server exited)", err)
		default:
		}
		return nil, fmt.Errorf("MCP handshake with %s: %w", s.o.Argv[0], lastWords(err))
	}
	s.log.Debug("MCP session", "pid", pid, "protocol", cs.InitializeResult().ProtocolVersion)
	c := &mcpConn{cs: cs, pid: pid, done: make(chan struct{})}
	go func() {
		_ = cs.Wait()
		// A broken server must not linger half alive.
		_ = killGroup(pid)
		c.endErr = lastWords(errors.New("the server exited"))
		close(c.done)
	}()
	c.close = func() {
		_ = cs.Close()
		shutdown()
		select {
		case <-c.done:
		case <-time.After(pipeGrace):
			s.log.Warn("MCP server output still open after kill", "pid", pid)
		}
	}
	return c, nil
}

// httpDialer checks the URL against the allowlist once, plainly, and
// returns what connects to it over Streamable HTTP through the same
// dial-time guard as the HTTP tools.
func (s *MCPServer) httpDialer() (func(context.Context) (*mcpConn, error), error) {
	key := s.o.ConfigKey + ".url"
	u, err := url.Parse(s.o.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%s: %q is not a URL, like \"http://127.0.0.1:8931/mcp\"", key, s.o.URL)
	}
	allow, err := NewAllowlist(s.o.AllowHosts)
	if err != nil {
		return nil, fmt.Errorf("tools.http.allow_hosts: %w", err)
	}
	g := &netGuard{allow: allow, lookup: s.o.Lookup, what: "tools.http.allow_hosts", dialer: newDialer(s.o.Timeout)}
	if err := g.checkURL(u); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	hc := g.client(s.o.Timeout)
	// The session's event stream stays open for as long as the session:
	// each request is bounded by its context instead of a client timeout.
	hc.Timeout = 0
	return func(ctx context.Context) (*mcpConn, error) {
		t := &mcp.StreamableClientTransport{Endpoint: s.o.URL, HTTPClient: hc, MaxEventSize: mcpMaxMessage}
		cs, err := s.client.Connect(ctx, t, nil)
		if err != nil {
			return nil, fmt.Errorf("MCP handshake with %s: %w", u.Redacted(), err)
		}
		s.log.Debug("MCP session", "url", u.Redacted(), "protocol", cs.InitializeResult().ProtocolVersion)
		c := &mcpConn{cs: cs, done: make(chan struct{})}
		go func() {
			err := cs.Wait()
			if err == nil {
				err = errors.New("the session ended")
			}
			c.endErr = fmt.Errorf("MCP session with %s ended: %w", u.Redacted(), err)
			close(c.done)
		}()
		c.close = func() {
			_ = cs.Close()
			<-c.done
		}
		return c, nil
	}, nil
}
