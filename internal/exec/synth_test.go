package exec

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

func TestSynthesizer(t *testing.T) {
	cases := []struct {
		name  string
		reply func(ChatRequest) (ChatResponse, error)
		want  []string
	}{
		{"cites its steps", func(req ChatRequest) (ChatResponse, error) {
			return ChatResponse{Content: "Austin is 35 C [austin_weather]."}, nil
		}, []string{"Austin is 35 C [austin_weather]."}},
		{"no citation gets sources", func(req ChatRequest) (ChatResponse, error) {
			return ChatResponse{Content: "Austin is hot."}, nil
		}, []string{"Austin is hot.", "Sources: [austin_weather]"}},
		{"summarizer fails", func(req ChatRequest) (ChatResponse, error) {
			return ChatResponse{}, errors.New("model not found")
		}, []string{"Results:", "[austin_weather] 35"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.tools.add(&fakeTool{name: "weather", idempotent: true, fn: func(_ context.Context, _ map[string]any) (ToolResult, error) {
				return ToolResult{Output: "35"}, nil
			}})
			h.planner.plan = onePlan(plan.Step{ID: "austin_weather", Tool: "weather"})
			var seen ChatRequest
			h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
				seen = req
				return c.reply(req)
			}
			h.start()
			r := h.wait(h.submit("how hot is Austin").ID)
			if r.Status != run.Done {
				t.Fatalf("status %s", r.Status)
			}
			for _, w := range c.want {
				if !strings.Contains(r.Answer, w) {
					t.Errorf("answer lacks %q:\n%s", w, r.Answer)
				}
			}
			if seen.Model != "model-summarizer" || !strings.Contains(seen.Messages[1].Content, "How to answer: combine") ||
				!strings.Contains(seen.Messages[1].Content, "[austin_weather] 35") {
				t.Errorf("summarizer request %+v", seen)
			}
		})
	}
}
