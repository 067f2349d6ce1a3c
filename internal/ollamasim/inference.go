package ollamasim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
)

// inference is one admitted chat or generate request: a held slot, the
// output the model will produce and its simulated timing.
type inference struct {
	model     *Model
	lease     *lease
	out       output
	timing    timing
	midStream bool // FaultMidStream struck
}

// piece is one streamed chunk of output.
type piece struct {
	thinking  string
	content   string
	toolCalls []api.ToolCall
	tokens    int
}

// pieces splits the output into token-sized chunks, reasoning first, as a
// streaming model emits them.
func (inf *inference) pieces() []piece {
	var ps []piece
	for _, t := range splitTokens(inf.out.thinking) {
		ps = append(ps, piece{thinking: t, tokens: 1})
	}
	for _, t := range splitTokens(inf.out.content) {
		ps = append(ps, piece{content: t, tokens: 1})
	}
	if len(inf.out.toolCalls) > 0 {
		n := 0
		for _, tc := range inf.out.toolCalls {
			n += countTokens(tc.Function.Name) + countTokens(tc.Function.Arguments.String())
		}
		ps = append(ps, piece{toolCalls: inf.out.toolCalls, tokens: n})
	}
	if inf.out.aborted() {
		for range repeatLimit {
			ps = append(ps, piece{content: inf.out.loop, tokens: 1})
		}
	}
	return ps
}

// splitTokens cuts s into 4-rune pieces, matching countTokens.
func splitTokens(s string) []string {
	r := []rune(s)
	var out []string
	for i := 0; i < len(r); i += 4 {
		out = append(out, string(r[i:min(i+4, len(r))]))
	}
	return out
}

func (inf *inference) metrics() api.Metrics {
	return api.Metrics{
		TotalDuration:      inf.lease.loadDuration + inf.timing.prefill + inf.timing.decode,
		LoadDuration:       inf.lease.loadDuration,
		PromptEvalCount:    inf.timing.promptTokens,
		PromptEvalDuration: inf.timing.prefill,
		EvalCount:          inf.timing.evalTokens,
		EvalDuration:       inf.timing.decode,
	}
}

// keepAliveOf resolves a request's keep_alive against the default.
func (s *Server) keepAliveOf(d *api.Duration) time.Duration {
	if d == nil {
		return s.cfg.KeepAlive
	}
	if d.Duration < 0 {
		return Forever
	}
	return d.Duration
}

// numCtxOf is the context length the runner is loaded with: the request's
// num_ctx or the server default, capped at the model's trained length.
func (s *Server) numCtxOf(m *Model, opts map[string]any) int {
	n := s.cfg.DefaultNumCtx
	if v, ok := opts["num_ctx"].(float64); ok && v > 0 {
		n = int(v)
	}
	if m.ContextLength > 0 && n > m.ContextLength {
		n = m.ContextLength
	}
	return n
}

// numPredictOf returns options.num_predict, or -1 for unlimited.
func numPredictOf(opts map[string]any) int {
	if v, ok := opts["num_predict"].(float64); ok && v >= 0 {
		return int(v)
	}
	return -1
}

// promptTokens counts a chat prompt as the template would render it: each
// message with role overhead, plus the tool definitions. A format schema
// is not counted: Ollama turns it into a sampling grammar and never renders
// it into the prompt (TestFormatIsNotPrompt measures this on the real
// server).
func promptTokens(req *api.ChatRequest) int {
	n := 0
	for _, m := range req.Messages {
		n += messageOverheadTokens + countTokens(m.Content)
		for _, tc := range m.ToolCalls {
			n += countTokens(tc.Function.Name) + countTokens(tc.Function.Arguments.String())
		}
	}
	if len(req.Tools) > 0 {
		n += countTokens(req.Tools.String())
	}
	return n
}

// promptText is the prompt as one text, in the order a chat template
// renders it (tool definitions first, then each message), for matching a
// slot's cached prefix.
func promptText(req *api.ChatRequest) string {
	var b strings.Builder
	if len(req.Tools) > 0 {
		b.WriteString(req.Tools.String())
	}
	for _, m := range req.Messages {
		b.WriteString("\x00" + m.Role + "\x00" + m.Content)
		for _, tc := range m.ToolCalls {
			b.WriteString(tc.Function.Name + tc.Function.Arguments.String())
		}
	}
	// The assistant turn the model writes next.
	b.WriteString("\x00assistant\x00")
	return b.String()
}

// admit runs the steps every generating request shares once capability
// checks passed: the busy fault, scheduling (load, queue, eviction), the
// timeout fault, output generation, output faults and the latency model.
// On failure it has written the error response and returns nil.
func (s *Server) admit(ctx context.Context, w http.ResponseWriter, m *Model, req *api.ChatRequest) *inference {
	if s.faults.roll(FaultBusy, m.Name) {
		s.stats.fault(FaultBusy)
		writeError(w, errMaxQueue)
		return nil
	}
	l, err := s.sched.acquire(ctx, m, s.numCtxOf(m, req.Options), s.keepAliveOf(req.KeepAlive))
	if err != nil {
		writeError(w, err)
		return nil
	}
	inf := &inference{model: m, lease: l}
	if len(req.Messages) == 0 {
		return inf // load only
	}
	stream := wantsStream(req.Stream)
	// Ollama checks format only once the runner is ready, on its way to
	// the completion, so these errors come after a load and, when
	// streaming, through the stream's error path.
	if herr := checkFormat(req.Format); herr != nil {
		l.release()
		writeCompletionError(w, stream, herr)
		return nil
	}
	if s.faults.roll(FaultTimeout, m.Name) {
		s.stats.fault(FaultTimeout)
		s.log.Info("fault: hanging until the client gives up", "model", m.Name)
		<-ctx.Done()
		l.release()
		return nil
	}
	out, err := s.gen.produce(m, req)
	if err != nil {
		l.release()
		writeCompletionError(w, stream, err)
		return nil
	}
	out = s.applyOutputFaults(m, req, out)
	if limit := numPredictOf(req.Options); limit >= 0 && out.evalTokens() > limit {
		out = truncateOutput(out, limit)
	}
	full := promptTokens(req)
	pt := min(full, s.numCtxOf(m, req.Options))
	// The slot's cache spares the prefill of the prompt's cached prefix
	// (a prompt cut at the context limit loses its front, and with it the
	// prefix). The count stays whole: 0.17.4 reports the cached part too.
	text := promptText(req)
	cached := 0
	if common := l.reuse(text); full == pt && common > 0 && len(text) > 0 {
		cached = min(pt*common/len(text), pt-1) // Ollama evaluates at least the last token
	}
	written := out.allContent()
	for _, tc := range out.toolCalls {
		written += tc.Function.Name + tc.Function.Arguments.String()
	}
	l.grow(written)
	inf.out = out
	inf.timing = newTiming(m, pt, out.evalTokens(), l.gpuFraction, s.cfg.CPUSlowdown)
	inf.timing.prefill = newTiming(m, pt-cached, 0, l.gpuFraction, s.cfg.CPUSlowdown).prefill
	inf.midStream = s.faults.roll(FaultMidStream, m.Name)
	if inf.midStream {
		s.stats.fault(FaultMidStream)
	}
	s.stats.served(m.Name, inf.timing.prefill+inf.timing.decode, inf.timing.promptTokens, inf.timing.evalTokens)
	return inf
}

// applyOutputFaults corrupts the output per the configured faults.
func (s *Server) applyOutputFaults(m *Model, req *api.ChatRequest, out output) output {
	if len(out.toolCalls) > 0 && s.faults.roll(FaultUnknownTool, m.Name) {
		s.stats.fault(FaultUnknownTool)
		name := out.toolCalls[0].Function.Name + "_v2"
		for {
			if _, offered := findTool(req.Tools, name); !offered {
				break
			}
			name += "x"
		}
		out.toolCalls[0].Function.Name = name
	}
	if len(out.toolCalls) > 0 && s.faults.roll(FaultWrongArguments, m.Name) {
		if tool, ok := findTool(req.Tools, out.toolCalls[0].Function.Name); ok {
			s.stats.fault(FaultWrongArguments)
			out.toolCalls[0].Function.Arguments = wrongArguments(tool, out.toolCalls[0].Function.Arguments.ToMap())
		}
	}
	if hasFormat(req.Format) && out.content != "" && s.faults.roll(FaultInvalidJSON, m.Name) {
		s.stats.fault(FaultInvalidJSON)
		r := []rune(out.content)
		out.content = "Sure! Here is the JSON you asked for:\n" + string(r[:len(r)/2])
	}
	if !out.aborted() && s.faults.roll(FaultRepeatAbort, m.Name) {
		s.stats.fault(FaultRepeatAbort)
		out = withRepeatAbort(out)
	}
	if s.faults.roll(FaultTruncation, m.Name) {
		s.stats.fault(FaultTruncation)
		out = truncateOutput(out, out.evalTokens()/2)
	}
	return out
}

// wrongArguments breaks args against tool's schema: it drops the first
// required property, or else gives the first property the wrong type, or
// else adds an undeclared property.
func wrongArguments(tool api.Tool, args map[string]any) api.ToolCallFunctionArguments {
	if args == nil {
		args = map[string]any{}
	}
	schema, _ := toolSchema(tool)
	required := stringList(schema["required"])
	props, _ := schema["properties"].(map[string]any)
	switch {
	case len(required) > 0:
		delete(args, required[0])
	case len(props) > 0:
		keys := make([]string, 0, len(props))
		for k := range props {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		p, _ := props[keys[0]].(map[string]any)
		if t, _ := p["type"].(string); t == "string" {
			args[keys[0]] = 12345
		} else {
			args[keys[0]] = "not a " + strings.TrimSpace(t+" value")
		}
	default:
		args["unexpected_argument"] = true
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	a := api.NewToolCallFunctionArguments()
	for _, k := range keys {
		a.Set(k, args[k])
	}
	return a
}

// streamer writes NDJSON chunks, pacing them by the simulated decode time.
type streamer struct {
	w       http.ResponseWriter
	flusher http.Flusher
	started bool
}

func newStreamer(w http.ResponseWriter) *streamer {
	f, _ := w.(http.Flusher)
	return &streamer{w: w, flusher: f}
}

func (st *streamer) write(v any) error {
	if !st.started {
		st.w.Header().Set("Content-Type", "application/x-ndjson")
		st.w.WriteHeader(http.StatusOK)
		st.started = true
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := st.w.Write(append(b, '\n')); err != nil {
		return err
	}
	if st.flusher != nil {
		st.flusher.Flush()
	}
	return nil
}

// fail reports a mid-response error the way Ollama's streamResponse does:
// a JSON error with status 500 if nothing was sent yet, else an error line.
func (st *streamer) fail(msg string) {
	if !st.started {
		writeStreamError(st.w, &httpError{http.StatusInternalServerError, msg})
		return
	}
	_ = st.write(map[string]string{"error": msg})
}

// writeStreamError is an error streamResponse sends before any chunk:
// its own status, and "application/json" without a charset (gin's JSON
// writer is bypassed there).
func writeStreamError(w http.ResponseWriter, e *httpError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": e.msg})
}

// writeCompletionError answers an error raised on the way to the
// completion (format, runner): through the stream's error path when the
// client streams, as a plain JSON error otherwise.
func writeCompletionError(w http.ResponseWriter, stream bool, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		he = &httpError{http.StatusInternalServerError, err.Error()}
	}
	if stream {
		writeStreamError(w, he)
		return
	}
	writeError(w, he)
}

// deliver sends the inference as a stream of chunks or one response.
// render turns a piece into the endpoint's response type; final marks the
// closing chunk that carries done and the metrics.
func (s *Server) deliver(ctx context.Context, w http.ResponseWriter, inf *inference, stream bool, render func(p piece, final bool) any) {
	defer inf.lease.release()
	if !stream {
		if err := s.sleeper.sleep(ctx, inf.timing.prefill+inf.timing.decode); err != nil {
			return
		}
		if inf.midStream {
			writeError(w, &httpError{http.StatusInternalServerError, MsgRunnerStopped})
			return
		}
		// A completion the server aborted is still a 200, with the text so
		// far and "done": false (ChatHandler returns its last chunk).
		all := piece{thinking: inf.out.thinking, content: inf.out.allContent(), toolCalls: inf.out.toolCalls}
		writeJSON(w, http.StatusOK, render(all, !inf.out.aborted()))
		return
	}
	st := newStreamer(w)
	pace := s.sleeper.pacer()
	if err := pace.wait(ctx, inf.timing.prefill); err != nil {
		return
	}
	ps := inf.pieces()
	cut := len(ps)
	if inf.midStream {
		cut = len(ps) / 2
	}
	per := inf.timing.perToken()
	for _, p := range ps[:cut] {
		if err := pace.wait(ctx, per*time.Duration(p.tokens)); err != nil {
			return
		}
		if err := st.write(render(p, false)); err != nil {
			return
		}
	}
	if inf.midStream {
		st.fail(MsgRunnerStopped)
		return
	}
	if inf.out.aborted() {
		// Ollama's repeat abort: the stream just ends, with no final
		// chunk, and the response closes normally.
		return
	}
	_ = st.write(render(piece{}, true))
}

// wantsStream reports Ollama's default: stream unless "stream": false.
func wantsStream(b *bool) bool { return b == nil || *b }
