package llm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/buildinfo"
)

// maxStreamLine is the longest line a chat stream may hold, as in
// api.Client (8 MB).
const maxStreamLine = 8 << 20

// lineBufs are the streams' scan buffers. api.Client.Chat allocates (and
// the runtime zeroes) an 8 MB buffer for every call, which was most of the
// CPU agentd spent around a short model call; a pooled 64 KB buffer grows
// only when a line needs it.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// lineScanner scans r's lines into a pooled buffer, up to maxStreamLine a
// line; release gives the buffer back (a rare huge line's is not kept).
func lineScanner(r io.Reader) (sc *bufio.Scanner, release func()) {
	bp := lineBufs.Get().(*[]byte)
	sc = bufio.NewScanner(r)
	sc.Buffer((*bp)[:0], maxStreamLine)
	return sc, func() {
		if cap(*bp) <= 1<<20 {
			lineBufs.Put(bp)
		}
	}
}

// chat sends a chat request to Ollama and hands each streamed chunk to fn. It is
// api.Client.Chat — the same request, the same error values for the same
// answers, and, like it, a quiet end when the body breaks off (the caller
// checks for the final chunk) — with a pooled line buffer. Endpoints that
// need Ollama's signed requests (ollama.com) go through api.Client.
func (b *ollamaBackend) chat(ctx context.Context, req *api.ChatRequest, fn api.ChatResponseFunc) error {
	if b.httpc == nil || b.base.Hostname() == "ollama.com" {
		return b.api.Chat(ctx, req, fn)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base.JoinPath("/api/chat").String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/x-ndjson")
	hreq.Header.Set("User-Agent", userAgent())
	resp, err := b.httpc.Do(hreq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	sc, release := lineScanner(resp.Body)
	defer release()
	for sc.Scan() {
		line := sc.Bytes()
		var e struct {
			Error string `json:"error,omitempty"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			if resp.StatusCode >= http.StatusBadRequest {
				return api.StatusError{StatusCode: resp.StatusCode, Status: resp.Status, ErrorMessage: string(line)}
			}
			return errors.New(string(line))
		}
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			return api.AuthorizationError{StatusCode: resp.StatusCode, Status: resp.Status}
		case resp.StatusCode >= http.StatusBadRequest:
			return api.StatusError{StatusCode: resp.StatusCode, Status: resp.Status, ErrorMessage: e.Error}
		case e.Error != "":
			return errors.New(e.Error)
		}
		var chunk api.ChatResponse
		if err := json.Unmarshal(line, &chunk); err != nil {
			return err
		}
		if err := fn(chunk); err != nil {
			return err
		}
	}
	return nil
}

// userAgent is what agentd's requests say they come from, as api.Client
// writes it.
func userAgent() string {
	return fmt.Sprintf("agentd/%s (%s %s) Go/%s", buildinfo.Get().Version, runtime.GOARCH, runtime.GOOS, runtime.Version())
}
