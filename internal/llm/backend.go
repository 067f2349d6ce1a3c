package llm

import (
	"context"
	"net/http"
	"net/url"

	"github.com/ollama/ollama/api"
)

// backend is the protocol one endpoint speaks for the calls every kind of
// model server answers. Endpoint choice, retries, classification, usage
// records and output limits sit above it and are the same for every kind;
// what differs (the wire format, the way a server says "busy") stays below.
// Residency calls (/api/ps, /api/tags) are Ollama's alone and are not here:
// an endpoint without them has a nil endpoint.api.
type backend interface {
	// chat streams one chat call, handing fn every chunk in Ollama's shape;
	// the last has Done set and carries the token counts. Like api.Client
	// it returns nil when the body breaks off before that last chunk.
	chat(ctx context.Context, req *api.ChatRequest, fn api.ChatResponseFunc) error
	show(ctx context.Context, model string) (*api.ShowResponse, error)
	embed(ctx context.Context, req *api.EmbedRequest) (*api.EmbedResponse, error)
	// alive answers whether the server is up, after a stream that ended
	// without its last chunk.
	alive(ctx context.Context) error
}

var (
	_ backend = (*ollamaBackend)(nil)
	_ backend = (*openaiBackend)(nil)
)

// ollamaBackend is Ollama's own API, through api.Client except for the
// chat stream (see stream.go).
type ollamaBackend struct {
	api   *api.Client
	httpc *http.Client // what api uses, for the pooled chat stream
	base  *url.URL
}

func (b *ollamaBackend) show(ctx context.Context, model string) (*api.ShowResponse, error) {
	return b.api.Show(ctx, &api.ShowRequest{Model: model})
}

func (b *ollamaBackend) embed(ctx context.Context, req *api.EmbedRequest) (*api.EmbedResponse, error) {
	return b.api.Embed(ctx, req)
}

func (b *ollamaBackend) alive(ctx context.Context) error {
	_, err := b.api.Version(ctx)
	return err
}
