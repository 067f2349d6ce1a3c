package tools

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Bounds of MCP servers.
const (
	mcpProtocolVersion = "2025-06-18"
	mcpStartTimeout    = 20 * time.Second
	defaultMCPTimeout  = 30 * time.Second
	mcpMaxMessage      = 4 << 20
	mcpMaxListPages    = 20
	mcpWriteTimeout    = 10 * time.Second
)

// MCPOptions declares a Model Context Protocol server run over stdio.
type MCPOptions struct {
	Name      string
	Argv      []string
	Env       []string // names passed through from agentd's environment, besides PATH
	Timeout   time.Duration
	Approval  Approval
	ConfigKey string
	LookupEnv func(string) (string, bool)
	Logger    *slog.Logger
}

// MCPServer is one MCP server process and the tools it offers. The process
// is started by NewMCPServer, restarted on the next call if it dies, runs in
// its own process group with a scrubbed environment like a command tool,
// and is killed with its group by Close.
type MCPServer struct {
	o     MCPOptions
	log   *slog.Logger
	mu    sync.Mutex // guards conn and closed
	conn  *mcpConn
	tools []Tool
	// closed is set by Close: no restart after it.
	closed bool
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

// NewMCPServer starts the server, performs the MCP handshake and lists its
// tools. Errors name the config key.
func NewMCPServer(ctx context.Context, o MCPOptions) (*MCPServer, error) {
	if o.ConfigKey == "" {
		o.ConfigKey = "MCP server " + o.Name
	}
	if len(o.Argv) == 0 || o.Argv[0] == "" {
		return nil, fmt.Errorf("%s.argv: must name the server program and its arguments", o.ConfigKey)
	}
	if _, err := exec.LookPath(o.Argv[0]); err != nil {
		return nil, fmt.Errorf("%s.argv[0]: program %q not found or not executable: %w — use an absolute path", o.ConfigKey, o.Argv[0], err)
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
	s := &MCPServer{o: o, log: log.With("component", "tools", "mcp_server", o.Name)}
	ctx, cancel := context.WithTimeout(ctx, mcpStartTimeout)
	defer cancel()
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.ConfigKey, err)
	}
	defs, err := conn.listTools(ctx)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: list tools: %w", o.ConfigKey, err)
	}
	seen := map[string]bool{}
	for _, d := range defs {
		name := mcpToolName(o.Name, d.Name)
		if seen[name] {
			s.log.Warn("skip MCP tool whose name collides after mapping", "tool", d.Name, "as", name)
			continue
		}
		seen[name] = true
		schema := d.InputSchema
		if len(bytes.TrimSpace(schema)) == 0 || string(schema) == "null" {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		desc := strings.TrimSpace(d.Description)
		if desc == "" {
			desc = fmt.Sprintf("Tool %s of the %s service.", d.Name, o.Name)
		}
		s.tools = append(s.tools, &mcpTool{srv: s, remote: d.Name, spec: Spec{
			Name: name, Description: desc, ArgsSchema: schema, Approval: o.Approval,
			Timeout: o.Timeout + time.Second,
			// MCP tools may change things; only a server's explicit hint
			// makes one retryable.
			Idempotent: d.Annotations.IdempotentHint || d.Annotations.ReadOnlyHint,
		}})
	}
	return s, nil
}

// Tools returns the server's tools, named <server>_<tool>.
func (s *MCPServer) Tools() []Tool { return s.tools }

// Close kills the server and its process group.
func (s *MCPServer) Close() error {
	s.mu.Lock()
	c := s.conn
	s.conn, s.closed = nil, true
	s.mu.Unlock()
	if c != nil {
		c.close()
	}
	return nil
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

func (s *MCPServer) live(ctx context.Context) (*mcpConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("MCP server %s is closed", s.o.Name)
	}
	if s.conn != nil {
		select {
		case <-s.conn.done:
			s.log.Warn("MCP server exited; restarting", "error", s.conn.err())
			s.conn = nil
		default:
			return s.conn, nil
		}
	}
	sctx, cancel := context.WithTimeout(ctx, mcpStartTimeout)
	defer cancel()
	return s.startLocked(sctx)
}

func (s *MCPServer) connect(ctx context.Context) (*mcpConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked(ctx)
}

func (s *MCPServer) startLocked(ctx context.Context) (*mcpConn, error) {
	c, err := startMCP(s.o, s.log)
	if err != nil {
		return nil, err
	}
	if err := c.initialize(ctx); err != nil {
		c.close()
		return nil, fmt.Errorf("MCP handshake with %s: %w", s.o.Argv[0], err)
	}
	s.conn = c
	return c, nil
}

type mcpToolDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"inputSchema"`
	Annotations struct {
		ReadOnlyHint   bool `json:"readOnlyHint"`
		IdempotentHint bool `json:"idempotentHint"`
	} `json:"annotations"`
}

func (s *MCPServer) callTool(ctx context.Context, name string, args json.RawMessage) (Result, error) {
	c, err := s.live(ctx)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	params, err := json.Marshal(map[string]any{"name": name, "arguments": args})
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrInvalidArgs, err)
	}
	raw, err := c.request(ctx, "tools/call", params)
	if err != nil {
		return Result{}, fmt.Errorf("MCP %s/%s: %w", s.o.Name, name, err)
	}
	var res struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		StructuredContent json.RawMessage `json:"structuredContent"`
		IsError           bool            `json:"isError"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return Result{}, fmt.Errorf("MCP %s/%s: malformed result: %w", s.o.Name, name, err)
	}
	var texts []string
	for _, c := range res.Content {
		if c.Type == "text" {
			texts = append(texts, c.Text)
		} else {
			texts = append(texts, "["+c.Type+" content omitted]")
		}
	}
	text := strings.Join(texts, "\n")
	if res.IsError {
		return Result{}, fmt.Errorf("%w: MCP tool %s/%s reported: %s", ErrFailed, s.o.Name, name, text)
	}
	if sc, ok := compactJSON(res.StructuredContent); ok && string(sc) != "null" {
		return Result{Output: sc}, nil
	}
	return marshalResult(map[string]string{"text": text})
}

// mcpConn is one running server process speaking newline-delimited
// JSON-RPC 2.0 on its stdin and stdout.
type mcpConn struct {
	log    *slog.Logger
	name   string
	pid    int
	stdin  *os.File
	wmu    sync.Mutex
	pmu    sync.Mutex
	nextID int64
	wait   map[int64]chan mcpReply
	done   chan struct{} // closed when the reader stops
	endErr error         // why, set before done closes
	exited chan struct{} // closed when the process has been waited for
	stderr *tailBuffer
	smu    sync.Mutex    // guards stderr
	errEOF chan struct{} // closed when stderr is drained
}

type mcpReply struct {
	result json.RawMessage
	err    error
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func startMCP(o MCPOptions, log *slog.Logger) (*mcpConn, error) {
	cmd := exec.Command(o.Argv[0], o.Argv[1:]...)
	cmd.Env = childEnv(o.Env, o.LookupEnv)
	pipes, err := startChild(cmd)
	if err != nil {
		return nil, err
	}
	stdoutR, stderrR := pipes.stdout, pipes.stderr
	c := &mcpConn{
		log: log, name: o.Name, pid: cmd.Process.Pid, stdin: pipes.stdin,
		wait: map[int64]chan mcpReply{}, done: make(chan struct{}), exited: make(chan struct{}),
		stderr: &tailBuffer{}, errEOF: make(chan struct{}),
	}
	go func() {
		_ = cmd.Wait()
		// The server is gone; whatever it left behind (in its group, or
		// re-parented to agentd after a setsid) goes with it.
		_ = killTree(c.pid, false)
		close(c.exited)
	}()
	go func() {
		defer close(c.errEOF)
		defer stderrR.Close()
		buf := make([]byte, 4096)
		for {
			n, err := stderrR.Read(buf)
			if n > 0 {
				c.smu.Lock()
				c.stderr.Write(buf[:n])
				c.smu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	go c.readLoop(stdoutR)
	return c, nil
}

func (c *mcpConn) err() error {
	<-c.done
	return c.endErr
}

func (c *mcpConn) stderrTail() string {
	c.smu.Lock()
	defer c.smu.Unlock()
	return strings.TrimSpace(c.stderr.String())
}

// readLoop dispatches every message from the server until its stdout ends.
func (c *mcpConn) readLoop(stdout *os.File) {
	defer stdout.Close()
	r := bufio.NewReaderSize(stdout, 64<<10)
	var endErr error
	for {
		line, err := readLine(r, mcpMaxMessage)
		if err != nil {
			endErr = err
			break
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
			Error  *rpcError       `json:"error"`
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			c.log.Warn("MCP server wrote a line that is not JSON-RPC; ignored", "bytes", len(line))
			continue
		}
		hasID := len(msg.ID) > 0 && string(msg.ID) != "null"
		switch {
		case msg.Method != "" && hasID:
			c.answerServerRequest(msg.ID, msg.Method)
		case msg.Method != "":
			c.log.Debug("MCP notification", "method", msg.Method)
		case hasID:
			var id int64
			if err := json.Unmarshal(msg.ID, &id); err != nil {
				continue
			}
			c.pmu.Lock()
			ch := c.wait[id]
			delete(c.wait, id)
			c.pmu.Unlock()
			if ch == nil {
				continue
			}
			if msg.Error != nil {
				ch <- mcpReply{err: fmt.Errorf("server error %d: %s", msg.Error.Code, msg.Error.Message)}
			} else {
				ch <- mcpReply{result: msg.Result}
			}
		}
	}
	if errors.Is(endErr, io.EOF) {
		endErr = errors.New("the server exited")
		// Its last words on stderr explain why; give them a moment to arrive.
		select {
		case <-c.errEOF:
		case <-time.After(500 * time.Millisecond):
		}
	}
	if tail := c.stderrTail(); tail != "" {
		endErr = fmt.Errorf("%w: %s", endErr, tail)
	}
	c.endErr = endErr
	// A broken server must not linger half alive.
	_ = killGroup(c.pid)
	close(c.done)
	c.pmu.Lock()
	for id, ch := range c.wait {
		ch <- mcpReply{err: endErr}
		delete(c.wait, id)
	}
	c.pmu.Unlock()
}

// readLine reads one line of at most max bytes.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			return nil, err
		}
		line = append(line, chunk...)
		if len(line) > max {
			return nil, fmt.Errorf("%w: a message from the server exceeds %d bytes", ErrTooLarge, max)
		}
		if !isPrefix {
			return line, nil
		}
	}
}

// answerServerRequest answers the server's own requests: ping, and "not
// supported" for everything else (sampling, roots, elicitation), so agentd
// never hands the server a model or the file system.
func (c *mcpConn) answerServerRequest(id json.RawMessage, method string) {
	var msg map[string]any
	if method == "ping" {
		msg = map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]any{}}
	} else {
		msg = map[string]any{"jsonrpc": "2.0", "id": id, "error": rpcError{Code: -32601, Message: "agentd does not support " + method}}
	}
	if err := c.write(msg); err != nil {
		c.log.Debug("answer MCP server request", "method", method, "error", err)
	}
}

func (c *mcpConn) write(msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// A server that stops reading its input must not block agentd forever.
	_ = c.stdin.SetWriteDeadline(time.Now().Add(mcpWriteTimeout))
	_, err = c.stdin.Write(b)
	return err
}

func (c *mcpConn) notify(method string, params any) error {
	m := map[string]any{"jsonrpc": "2.0", "method": method}
	if params != nil {
		m["params"] = params
	}
	return c.write(m)
}

func (c *mcpConn) request(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	ch := make(chan mcpReply, 1)
	c.pmu.Lock()
	select {
	case <-c.done:
		c.pmu.Unlock()
		return nil, fmt.Errorf("MCP server %s is not running: %w", c.name, c.endErr)
	default:
	}
	c.nextID++
	id := c.nextID
	c.wait[id] = ch
	c.pmu.Unlock()
	msg := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if len(params) > 0 {
		msg["params"] = params
	}
	if err := c.write(msg); err != nil {
		c.pmu.Lock()
		delete(c.wait, id)
		c.pmu.Unlock()
		return nil, fmt.Errorf("send %s: %w", method, err)
	}
	select {
	case r := <-ch:
		return r.result, r.err
	case <-ctx.Done():
		c.pmu.Lock()
		delete(c.wait, id)
		c.pmu.Unlock()
		_ = c.notify("notifications/cancelled", map[string]any{"requestId": id, "reason": "timeout or cancellation"})
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

func (c *mcpConn) initialize(ctx context.Context) error {
	params, _ := json.Marshal(map[string]any{
		"protocolVersion": mcpProtocolVersion,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "agentd", "version": "1"},
	})
	raw, err := c.request(ctx, "initialize", params)
	if err != nil {
		return err
	}
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || res.ProtocolVersion == "" {
		return fmt.Errorf("malformed initialize result")
	}
	return c.notify("notifications/initialized", nil)
}

func (c *mcpConn) listTools(ctx context.Context) ([]mcpToolDef, error) {
	var all []mcpToolDef
	cursor := ""
	for range mcpMaxListPages {
		var params json.RawMessage
		if cursor != "" {
			params, _ = json.Marshal(map[string]string{"cursor": cursor})
		}
		raw, err := c.request(ctx, "tools/list", params)
		if err != nil {
			return nil, err
		}
		var page struct {
			Tools      []mcpToolDef `json:"tools"`
			NextCursor string       `json:"nextCursor"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, fmt.Errorf("malformed tools/list result: %w", err)
		}
		all = append(all, page.Tools...)
		if page.NextCursor == "" {
			return all, nil
		}
		cursor = page.NextCursor
	}
	return all, nil
}

// close ends the process group and waits for the reader to finish.
func (c *mcpConn) close() {
	_ = c.stdin.Close()
	_ = killGroup(c.pid)
	select {
	case <-c.done:
	case <-time.After(pipeGrace):
		c.log.Warn("MCP server output still open after kill", "pid", c.pid)
	}
	<-c.exited
}
