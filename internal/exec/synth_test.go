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

// A template's answer pattern writes the reply from the results with no
// model call; a reference that does not resolve hands it back to the
// summarizer.
func TestAnswerPatternNeedsNoModelCall(t *testing.T) {
	for _, c := range []struct {
		name, pattern, want string
		calls               int
	}{
		{"filled", "Austin is ${austin_weather.temp_c} C today.", "Austin is 35 C today.", 0},
		{"a reference that does not resolve", "Austin is ${austin_weather.humidity} humid.", "summarized", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.tools.add(&fakeTool{name: "weather", idempotent: true, fn: func(_ context.Context, _ map[string]any) (ToolResult, error) {
				return ToolResult{Output: `{"temp_c": 35}`}, nil
			}})
			h.planner.plan = staticPlan(&plan.Plan{Goal: "g", Answer: "combine", AnswerPattern: c.pattern,
				Steps: []plan.Step{{ID: "austin_weather", Tool: "weather"}}})
			calls := 0
			h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
				calls++
				return ChatResponse{Content: "summarized [austin_weather]"}, nil
			}
			h.start()
			r := h.wait(h.submit("how hot is Austin").ID)
			if r.Status != run.Done || !strings.Contains(r.Answer, c.want) || calls != c.calls {
				t.Fatalf("status %s, answer %q, model calls %d; want %q with %d calls", r.Status, r.Answer, calls, c.want, c.calls)
			}
		})
	}
}
