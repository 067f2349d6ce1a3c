// Package tools is agentd's tool registry: the built-in tools (calc, now,
// http_get/http_post, read_file/list_dir, sqlite_query, search_docs), the
// command and HTTP tools declared in config, argument validation against each
// tool's JSON Schema, and a concurrency limit per tool. Every tool that touches
// the outside world is sandboxed here: host allowlists enforced at dial time,
// file roots enforced on real paths, read-only databases, child processes in
// their own process group with a scrubbed environment.
package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Approval says whether a call needs a human's yes before it runs.
type Approval string

// The approval policies a tool may have.
const (
	ApprovalNone     Approval = "none"
	ApprovalRequired Approval = "required"
)

// DefaultConcurrency bounds the simultaneous calls of a tool whose Spec says 0.
const DefaultConcurrency = 4

// DefaultTimeout bounds a call of a tool whose Spec says 0.
const DefaultTimeout = 30 * time.Second

// Spec describes a tool to the planner, the executor and the dashboard.
type Spec struct {
	Name        string
	Description string
	// ArgsSchema is the JSON Schema (draft 2020-12) of the arguments object.
	ArgsSchema json.RawMessage
	// Idempotent tools may be retried after a transient failure.
	Idempotent bool
	Approval   Approval
	// Timeout bounds one call; 0 means DefaultTimeout.
	Timeout time.Duration
	// Concurrency bounds simultaneous calls; 0 means DefaultConcurrency.
	Concurrency int
}

// Result is what a call returns. Output is always valid JSON.
type Result struct {
	Output json.RawMessage
	// ExitCode is the exit status of a command tool's process; 0 for others.
	ExitCode int
}

// Tool is one callable tool. Call receives arguments that the Registry has
// already validated against Spec().ArgsSchema when called through
// Registry.Call; a Tool still treats them as untrusted.
type Tool interface {
	Spec() Spec
	Call(ctx context.Context, args json.RawMessage) (Result, error)
}

var toolName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// entry is a registered tool with what the registry derives from it once.
type entry struct {
	tool   Tool
	spec   Spec // with the registry's overrides applied
	schema *jsonschema.Schema
	sem    chan struct{}
}

// Registry holds the tools agentd may call. It is safe for concurrent use.
type Registry struct {
	mu      sync.RWMutex
	entries map[string]*entry
	closers []io.Closer
	indexer *Indexer
	log     *slog.Logger
}

// DocsIndexer returns the indexer behind search_docs, or nil when no
// document folder is configured. It is not running: the caller runs it.
func (r *Registry) DocsIndexer() *Indexer { return r.indexer }

// NewRegistry returns an empty registry.
func NewRegistry(log *slog.Logger) *Registry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{entries: map[string]*entry{}, log: log.With("component", "tools")}
}

// Register adds t, compiling its argument schema once. Names are unique.
func (r *Registry) Register(t Tool) error {
	e, err := newEntry(t)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.entries[e.spec.Name]; dup {
		return fmt.Errorf("register tool %s: a tool with this name is already registered", e.spec.Name)
	}
	r.entries[e.spec.Name] = e
	if c, ok := t.(io.Closer); ok {
		r.closers = append(r.closers, c)
	}
	return nil
}

// newEntry checks t's spec, fills in defaults and compiles its schema.
func newEntry(t Tool) (*entry, error) {
	spec := t.Spec()
	if !toolName.MatchString(spec.Name) {
		return nil, fmt.Errorf("register tool %q: name must be lower_snake_case, starting with a letter, at most 64 characters", spec.Name)
	}
	if strings.TrimSpace(spec.Description) == "" {
		return nil, fmt.Errorf("register tool %s: needs a description, the model chooses tools by it", spec.Name)
	}
	switch spec.Approval {
	case "":
		spec.Approval = ApprovalNone
	case ApprovalNone, ApprovalRequired:
	default:
		return nil, fmt.Errorf("register tool %s: approval %q must be \"none\" or \"required\"", spec.Name, spec.Approval)
	}
	if spec.Concurrency < 0 {
		return nil, fmt.Errorf("register tool %s: concurrency %d must be zero (default) or more", spec.Name, spec.Concurrency)
	}
	if spec.Concurrency == 0 {
		spec.Concurrency = DefaultConcurrency
	}
	if spec.Timeout <= 0 {
		spec.Timeout = DefaultTimeout
	}
	sch, canonical, err := compileSchema(spec.Name, spec.ArgsSchema)
	if err != nil {
		return nil, fmt.Errorf("register tool %s: %w", spec.Name, err)
	}
	spec.ArgsSchema = canonical
	return &entry{tool: t, spec: spec, schema: sch, sem: make(chan struct{}, spec.Concurrency)}, nil
}

// Replace swaps the tools in old for those in tools, as one change: an MCP
// server's tool list changed at runtime. Only entries that still hold a
// tool of old are removed (one that lost a name collision never held it);
// a new tool that is invalid or whose name is taken is skipped and logged,
// as at start. approval holds tools.approval's overrides, applied again.
// Registries made by Subset before the change keep the tools they had.
func (r *Registry) Replace(old, tools []Tool, approval map[string]string) {
	var add []*entry
	for _, t := range tools {
		e, err := newEntry(t)
		if err != nil {
			r.log.Warn("skip changed tool", "tool", t.Spec().Name, "error", err)
			continue
		}
		if a, ok := approval[e.spec.Name]; ok && (Approval(a) == ApprovalNone || Approval(a) == ApprovalRequired) {
			e.spec.Approval = Approval(a)
		}
		add = append(add, e)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range old {
		name := t.Spec().Name
		if e, ok := r.entries[name]; ok && e.tool == t {
			delete(r.entries, name)
		}
	}
	for _, e := range add {
		if _, dup := r.entries[e.spec.Name]; dup {
			r.log.Warn("skip changed tool", "tool", e.spec.Name, "error", "a tool with this name is already registered")
			continue
		}
		r.entries[e.spec.Name] = e
	}
}

// Get returns the tool called name.
func (r *Registry) Get(name string) (Tool, bool) {
	e, ok := r.entry(name)
	if !ok {
		return nil, false
	}
	return e.tool, true
}

// Spec returns the tool's spec with the registry's overrides (approval,
// defaults for timeout and concurrency) applied.
func (r *Registry) Spec(name string) (Spec, bool) {
	e, ok := r.entry(name)
	if !ok {
		return Spec{}, false
	}
	return e.specCopy(), true
}

// specCopy returns the spec with its own copy of the schema bytes, so no
// caller can change what the registry validates against.
func (e *entry) specCopy() Spec {
	s := e.spec
	s.ArgsSchema = slices.Clone(s.ArgsSchema)
	return s
}

// List returns every tool's spec, sorted by name.
func (r *Registry) List() []Spec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Spec, 0, len(r.entries))
	for _, name := range slices.Sorted(maps.Keys(r.entries)) {
		out = append(out, r.entries[name].specCopy())
	}
	return out
}

// Names returns the tool names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.entries))
}

// ArgsSchema returns a fresh decoded copy of the tool's argument schema, for
// embedding into a larger schema (the plan's). Callers may modify it.
func (r *Registry) ArgsSchema(name string) (map[string]any, bool) {
	e, ok := r.entry(name)
	if !ok {
		return nil, false
	}
	var m map[string]any
	if err := json.Unmarshal(e.spec.ArgsSchema, &m); err != nil {
		return nil, false // cannot happen: compiled at Register
	}
	return m, true
}

// SetApproval overrides the approval policy of one tool.
func (r *Registry) SetApproval(name string, a Approval) error {
	if a != ApprovalNone && a != ApprovalRequired {
		return fmt.Errorf("approval %q for tool %s must be \"none\" or \"required\"", a, name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[name]
	if !ok {
		return r.unknownLocked(name)
	}
	ne := *e
	ne.spec.Approval = a
	r.entries[name] = &ne
	return nil
}

// Validate checks args against the tool's schema. Errors are *ArgsError
// (wrapping ErrInvalidArgs) with one line per problem, like
// "args.city: missing property", or an error wrapping ErrUnknownTool.
func (r *Registry) Validate(name string, args json.RawMessage) error {
	e, ok := r.entry(name)
	if !ok {
		return r.unknown(name)
	}
	return validateArgs(e, args)
}

// Subset returns a registry with only the named tools, sharing their
// concurrency limits with r (a tool's limit is global, whichever subset calls
// it). Unknown names are an error.
func (r *Registry) Subset(names []string) (*Registry, error) {
	sub := &Registry{entries: map[string]*entry{}, log: r.log}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, n := range names {
		e, ok := r.entries[n]
		if !ok {
			return nil, r.unknownLocked(n)
		}
		sub.entries[n] = e
	}
	return sub, nil
}

// Acquire waits for a free slot of the tool's concurrency limit. The caller
// must call release exactly once; extra calls are harmless.
func (r *Registry) Acquire(ctx context.Context, name string) (release func(), err error) {
	e, ok := r.entry(name)
	if !ok {
		return nil, r.unknown(name)
	}
	select {
	case e.sem <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-e.sem }) }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a free slot of tool %s (concurrency %d): %w", name, e.spec.Concurrency, ctx.Err())
	}
}

// Call validates args, waits for a concurrency slot, and runs the tool under
// its timeout. It does not ask for approval: that is the executor's gate.
func (r *Registry) Call(ctx context.Context, name string, args json.RawMessage) (Result, error) {
	e, args, err := r.prepare(name, args)
	if err != nil {
		return Result{}, err
	}
	release, err := r.Acquire(ctx, name)
	if err != nil {
		return Result{}, err
	}
	defer release()
	return r.run(ctx, e, name, args)
}

// Invoke is Call for a caller that already holds the tool's concurrency
// slot (the executor takes it with Acquire before it records the call):
// validate, then run under the tool's timeout, and check the output is JSON.
func (r *Registry) Invoke(ctx context.Context, name string, args json.RawMessage) (Result, error) {
	e, args, err := r.prepare(name, args)
	if err != nil {
		return Result{}, err
	}
	return r.run(ctx, e, name, args)
}

// prepare finds the tool and validates its arguments (none means {}).
func (r *Registry) prepare(name string, args json.RawMessage) (*entry, json.RawMessage, error) {
	e, ok := r.entry(name)
	if !ok {
		return nil, nil, r.unknown(name)
	}
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage(`{}`)
	}
	if err := validateArgs(e, args); err != nil {
		return nil, nil, err
	}
	return e, args, nil
}

// run calls the tool under its timeout and checks its output is JSON.
func (r *Registry) run(ctx context.Context, e *entry, name string, args json.RawMessage) (Result, error) {
	cctx, cancel := context.WithTimeout(ctx, e.spec.Timeout)
	defer cancel()
	start := time.Now()
	res, err := e.tool.Call(cctx, args)
	if err == nil && !json.Valid(res.Output) {
		err = fmt.Errorf("tool %s returned output that is not JSON", name)
	}
	if err != nil && cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s: %w: %w", e.spec.Timeout, context.DeadlineExceeded, err)
	}
	r.log.Debug("tool call", "tool", name, "duration", time.Since(start), "bytes", len(res.Output), "error", err)
	if err != nil {
		return res, fmt.Errorf("tool %s: %w", name, err)
	}
	return res, nil
}

func (r *Registry) addCloser(c io.Closer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closers = append(r.closers, c)
}

// Close releases what tools hold open (database handles, MCP servers).
func (r *Registry) Close() error {
	r.mu.Lock()
	closers := r.closers
	r.closers = nil
	r.mu.Unlock()
	var errs []error
	for _, c := range closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func (r *Registry) entry(name string) (*entry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[name]
	return e, ok
}

func (r *Registry) unknown(name string) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.unknownLocked(name)
}

func (r *Registry) unknownLocked(name string) error {
	names := slices.Sorted(maps.Keys(r.entries))
	if len(names) == 0 {
		return fmt.Errorf("%w %q: no tools are available here", ErrUnknownTool, name)
	}
	return fmt.Errorf("%w %q: use one of %s", ErrUnknownTool, name, strings.Join(names, ", "))
}
