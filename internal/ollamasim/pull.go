package ollamasim

import (
	"cmp"
	"net/http"
	"time"

	"github.com/ollama/ollama/api"
)

// pullBytesPerSecond is the simulated download speed (100 MB/s), scaled
// by TimeScale like every other wait.
const pullBytesPerSecond = 100 * mb

// pullProgressSteps is how many progress updates each layer reports.
const pullProgressSteps = 4

type layer struct {
	digest string
	size   int64
}

// layers fakes a model's manifest: the weights, then template, license
// and params blobs, as Ollama's library manifests have.
func layers(m *Model) []layer {
	small := []int64{1_500, 11_000, 120}
	weights := m.Size
	for _, n := range small {
		weights -= n
	}
	out := []layer{{"sha256:" + sha256Hex(m.Name+"/weights"), weights}}
	for i, n := range small {
		out = append(out, layer{"sha256:" + sha256Hex(m.Name+"/"+string(rune('a'+i))), n})
	}
	return out
}

// handlePull serves POST /api/pull with Ollama's status sequence: "pulling
// manifest", "pulling <digest[7:19]>" with total/completed per layer,
// "verifying sha256 digest", "writing manifest", "success". A name outside
// the catalog fails after "pulling manifest" with the registry's error, as
// an unknown model does in Ollama. Catalog models count as pulled already.
func (s *Server) handlePull(w http.ResponseWriter, r *http.Request) {
	var req api.PullRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	name := cmp.Or(req.Model, req.Name)
	if name == "" {
		writeError(w, &httpError{http.StatusBadRequest, "invalid model name"})
		return
	}
	stream := wantsStream(req.Stream)
	st := newStreamer(w)
	var latest api.ProgressResponse
	send := func(p api.ProgressResponse) bool {
		latest = p
		if !stream {
			return true
		}
		return st.write(p) == nil
	}
	fail := func(msg string) {
		if stream {
			st.fail(msg)
			return
		}
		writeError(w, &httpError{http.StatusInternalServerError, msg})
	}
	if !send(api.ProgressResponse{Status: "pulling manifest"}) {
		return
	}
	m, ok := s.catalog.lookup(name)
	if !ok {
		fail(msgPullNotFound)
		return
	}
	for _, l := range layers(m) {
		status := "pulling " + l.digest[7:19]
		for step := 0; step <= pullProgressSteps; step++ {
			done := l.size * int64(step) / pullProgressSteps
			if step > 0 {
				d := time.Duration(float64(l.size/pullProgressSteps) / pullBytesPerSecond * float64(time.Second))
				if err := s.sleeper.sleep(r.Context(), d); err != nil {
					return
				}
			}
			if !send(api.ProgressResponse{Status: status, Digest: l.digest, Total: l.size, Completed: done}) {
				return
			}
		}
	}
	for _, status := range []string{"verifying sha256 digest", "writing manifest", "success"} {
		if !send(api.ProgressResponse{Status: status}) {
			return
		}
	}
	if !stream {
		writeJSON(w, http.StatusOK, latest)
	}
}
