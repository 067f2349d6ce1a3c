package ollamasim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// This file is the differential test's instrument: it sends one wire-level
// request, turns the response into an observation (status, content type,
// framing, body) with the noisy values replaced by placeholders, and lists
// the differences between two observations by field path.

// wireCase is one request sent unchanged to both servers.
type wireCase struct {
	name   string
	method string // default POST
	path   string
	body   string
	// outcome reduces a 200 body to "<ok>" and an error body to its
	// message: for cases where only acceptance matters (what the random
	// model writes under a grammar is noise).
	outcome bool
	// exact names keys whose values are compared as sent although they
	// are noisy elsewhere (eval_count under num_predict).
	exact []string
	// project rewrites the decoded body before normalising (to keep the
	// test's models out of a list the real server shares with others).
	project func(any) any
	// before is sent to both servers first, unobserved (a load before
	// /api/ps).
	before *wireCase
	// check, when set, asserts something of the real server's answer
	// that the comparison alone would not catch (a list not empty).
	check func(*testing.T, observation)
	// real, when set, is what the real server must answer: the measured
	// behaviour the simulator copies, checked so a new Ollama that changes
	// it fails here rather than silently making the simulator stale.
	real *expectation
}

// expectation is a status and, for errors, the error message.
type expectation struct {
	status int
	err    string
}

// observation is what a client can see of one response.
type observation struct {
	Status      int    `json:"status"`
	ContentType string `json:"content_type"`
	Framing     string `json:"framing"` // json, ndjson, sse, text, empty
	Body        any    `json:"body"`
	// ReadError is how reading the body ended if not cleanly at EOF.
	ReadError string `json:"read_error,omitempty"`
}

func (o observation) tree() map[string]any {
	b, _ := json.Marshal(o)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// errorText returns the body's error message, or "" (native {"error": s}
// and OpenAI {"error": {"message": s}} both).
func (o observation) errorText() string {
	m, ok := o.Body.(map[string]any)
	if !ok {
		return ""
	}
	switch e := m["error"].(type) {
	case string:
		return e
	case map[string]any:
		s, _ := e["message"].(string)
		return s
	}
	return ""
}

// observe sends c to base and returns the normalised observation.
func observe(t *testing.T, base string, c wireCase) observation {
	t.Helper()
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var body io.Reader
	if method != http.MethodGet {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, base, c.path, err)
	}
	defer resp.Body.Close()
	raw, readErr := io.ReadAll(resp.Body)
	o := observation{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type")}
	if readErr != nil {
		o.ReadError = readErr.Error()
	}
	n := normalizer{exact: c.exact}
	media, _, _ := mime.ParseMediaType(o.ContentType)
	switch {
	case len(raw) == 0:
		o.Framing = "empty"
	case media == "application/x-ndjson":
		o.Framing = "ndjson"
		o.Body = n.stream(ndjsonEvents(raw), c.project)
	case media == "text/event-stream":
		o.Framing = "sse"
		o.Body = n.stream(sseEvents(raw), c.project)
	case media == "application/json":
		o.Framing = "json"
		o.Body = n.document(raw, c.project)
	default:
		o.Framing = "text"
		o.Body = string(raw)
	}
	if c.outcome {
		o.Body = outcomeOf(o)
	}
	return o
}

// outcomeOf is "<ok>" for a success and the error message otherwise.
func outcomeOf(o observation) any {
	if e := o.errorText(); e != "" {
		return map[string]any{"error": e}
	}
	if o.Status == http.StatusOK {
		return "<ok>"
	}
	return o.Body
}

// ndjsonEvents splits a body into its lines; a body that does not end
// with a newline gets a marker event, since a client reading lines would
// see a torn last line.
func ndjsonEvents(raw []byte) []string {
	s := string(raw)
	var out []string
	if !strings.HasSuffix(s, "\n") {
		defer func() { out = append(out, "<no trailing newline>") }()
	}
	for line := range strings.SplitSeq(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, line)
	}
	return out
}

// sseEvents splits a text/event-stream body into its data payloads.
func sseEvents(raw []byte) []string {
	s := string(raw)
	var out []string
	if !strings.HasSuffix(s, "\n\n") {
		defer func() { out = append(out, "<no blank line after the last event>") }()
	}
	for ev := range strings.SplitSeq(strings.TrimRight(s, "\n"), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok {
			out = append(out, "<not a data event: "+ev+">")
			continue
		}
		out = append(out, data)
	}
	return out
}

// normalizer replaces values that differ between any two runs (or between
// a random-weight model and a simulator) by placeholders that still say
// what kind of value was there, so that shape and semantics remain.
type normalizer struct {
	exact []string
}

// stream normalises each event and folds runs of identical events into
// one: how many tokens a model streams is noise, but which kinds of chunk
// come, in which order, and how the stream ends is not.
func (n normalizer) stream(events []string, project func(any) any) []any {
	var out []any
	var last string
	for _, ev := range events {
		v := n.document([]byte(ev), project)
		key, _ := json.Marshal(v)
		if string(key) == last {
			continue
		}
		last = string(key)
		out = append(out, v)
	}
	return out
}

// document decodes one JSON value; what is not JSON is kept as text.
func (n normalizer) document(raw []byte, project func(any) any) any {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return string(raw)
	}
	if project != nil {
		v = project(v)
	}
	return n.value("", v)
}

var (
	hexDigest  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	openAIID   = regexp.MustCompile(`^chatcmpl-[0-9]{1,3}$`)
	toolCallID = regexp.MustCompile(`^call_[a-z0-9]{8}$`)
)

// dropped marks a key removed from the comparison.
type dropped struct{}

// modelInfoKeys are the model_info entries clients read (agentd reads the
// context and embedding lengths); the rest describe the weights' tensors
// and tokenizer, which a simulator has no weights to describe.
var modelInfoKeys = []string{"general.architecture", "general.parameter_count", "general.file_type",
	"llama.context_length", "llama.embedding_length"}

func (n normalizer) value(key string, v any) any {
	if slices.Contains(n.exact, key) {
		return v
	}
	switch key {
	case "created_at", "expires_at", "modified_at":
		if s, ok := v.(string); ok {
			if _, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return "<time>"
			}
			return "<not RFC 3339: " + s + ">"
		}
	case "created":
		if isPositive(v) {
			return "<unix time>"
		}
	case "total_duration", "load_duration", "prompt_eval_duration", "eval_duration":
		if isPositive(v) {
			return "<duration>"
		}
	case "prompt_eval_count", "eval_count", "prompt_tokens", "completion_tokens", "total_tokens", "parameter_count", "general.parameter_count":
		if isPositive(v) {
			return "<count>"
		}
	case "size":
		if isPositive(v) {
			return "<bytes>"
		}
	case "content", "response", "thinking", "reasoning", "template", "modelfile", "parent_model":
		if _, ok := v.(string); ok {
			return "<text>"
		}
	case "context":
		if list, ok := v.([]any); ok && len(list) > 0 {
			return "<token ids>"
		}
	case "embeddings":
		if list, ok := v.([]any); ok {
			out := make([]any, len(list))
			for i, e := range list {
				vec, _ := e.([]any)
				out[i] = fmt.Sprintf("<vector of %d>", len(vec))
			}
			return out
		}
	case "digest":
		if s, ok := v.(string); ok && hexDigest.MatchString(s) {
			return "<digest>"
		}
	case "id":
		if s, ok := v.(string); ok {
			switch {
			case openAIID.MatchString(s):
				return "chatcmpl-<n>"
			case toolCallID.MatchString(s):
				return "call_<id>"
			}
		}
	case "tensors":
		return dropped{}
	case "model_info":
		if m, ok := v.(map[string]any); ok {
			kept := map[string]any{}
			for _, k := range modelInfoKeys {
				if x, ok := m[k]; ok {
					kept[k] = n.value(k, x)
				}
			}
			return kept
		}
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if nv := n.value(k, e); nv != (dropped{}) {
				out[k] = nv
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = n.value("", e)
		}
		return out
	}
	return v
}

func isPositive(v any) bool {
	num, ok := v.(json.Number)
	if !ok {
		return false
	}
	f, err := num.Float64()
	return err == nil && f > 0
}

// onlyModels keeps the entries of a {"models": [...]} body whose name is
// one of names, sorted by name: the real server may hold other models and
// list them in its own order.
func onlyModels(names ...string) func(any) any {
	return func(v any) any {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		list, _ := m["models"].([]any)
		var kept []any
		for _, e := range list {
			if em, ok := e.(map[string]any); ok && slices.Contains(names, fmt.Sprint(em["name"])) {
				kept = append(kept, e)
			}
		}
		sort.Slice(kept, func(i, j int) bool {
			return fmt.Sprint(kept[i].(map[string]any)["name"]) < fmt.Sprint(kept[j].(map[string]any)["name"])
		})
		out := map[string]any{}
		for k, e := range m {
			out[k] = e
		}
		out["models"] = kept
		return out
	}
}

// diffTrees lists every difference between real and sim as
// "path: real … / sim …", keys sorted so the report is stable.
func diffTrees(path string, real, sim any, out *[]string) {
	show := func(v any) string {
		b, _ := json.Marshal(v)
		s := string(b)
		if len(s) > 160 {
			s = s[:160] + "…"
		}
		return s
	}
	at := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch r := real.(type) {
	case map[string]any:
		s, ok := sim.(map[string]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: real %s / sim %s", path, show(real), show(sim)))
			return
		}
		keys := make([]string, 0, len(r)+len(s))
		for k := range r {
			keys = append(keys, k)
		}
		for k := range s {
			if _, ok := r[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			rv, inReal := r[k]
			sv, inSim := s[k]
			switch {
			case !inSim:
				*out = append(*out, fmt.Sprintf("%s: real has %s / sim lacks it", at(k), show(rv)))
			case !inReal:
				*out = append(*out, fmt.Sprintf("%s: real lacks it / sim has %s", at(k), show(sv)))
			default:
				diffTrees(at(k), rv, sv, out)
			}
		}
	case []any:
		s, ok := sim.([]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: real %s / sim %s", path, show(real), show(sim)))
			return
		}
		if len(r) != len(s) {
			*out = append(*out, fmt.Sprintf("%s: real has %d elements / sim %d", path, len(r), len(s)))
		}
		for i := range min(len(r), len(s)) {
			diffTrees(fmt.Sprintf("%s[%d]", path, i), r[i], s[i], out)
		}
	default:
		if fmt.Sprint(real) != fmt.Sprint(sim) || fmt.Sprintf("%T", real) != fmt.Sprintf("%T", sim) {
			*out = append(*out, fmt.Sprintf("%s: real %s / sim %s", path, show(real), show(sim)))
		}
	}
}
