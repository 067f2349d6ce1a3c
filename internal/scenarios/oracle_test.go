package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/ollama/ollama/api"
)

func oracleTools(t *testing.T) (*ToolServer, []api.Tool) {
	t.Helper()
	ts, err := NewToolServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ts.Close() })
	var offered []api.Tool
	for _, ti := range ts.List() {
		var fn api.ToolFunction
		fn.Name, fn.Description = ti.Name, ti.Description
		if err := json.Unmarshal(ti.Parameters, &fn.Parameters); err != nil {
			t.Fatalf("tool %s schema: %v", ti.Name, err)
		}
		offered = append(offered, api.Tool{Type: "function", Function: fn})
	}
	return ts, offered
}

// runCalls answers a reply's tool calls the way a framework does: an
// assistant message with the calls, then one tool message each.
func runCalls(t *testing.T, ts *ToolServer, msgs []api.Message, calls []api.ToolCall) []api.Message {
	t.Helper()
	msgs = append(msgs, api.Message{Role: "assistant", ToolCalls: calls})
	for _, c := range calls {
		out, err := ts.Call(context.Background(), c.Function.Name, json.RawMessage(c.Function.Arguments.String()))
		if err != nil {
			t.Fatalf("%s: %v", c.Function.Name, err)
		}
		msgs = append(msgs, api.Message{Role: "tool", ToolName: c.Function.Name, ToolCallID: c.ID, Content: string(out)})
	}
	return msgs
}

// asCalls turns the oracle's reply into the wire's tool calls.
func asCalls(rs []ollamasim.ToolCallReply) []api.ToolCall {
	var out []api.ToolCall
	for i, r := range rs {
		var args api.ToolCallFunctionArguments
		b, _ := json.Marshal(r.Arguments)
		_ = json.Unmarshal(b, &args)
		out = append(out, api.ToolCall{ID: fmt.Sprintf("call_%d", i), Function: api.ToolCallFunction{Name: r.Name, Arguments: args}})
	}
	return out
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestOracleToolAgent(t *testing.T) {
	ts, offered := oracleTools(t)
	o := Oracle()
	want := map[string][]string{
		NameCities:   {"get_climate get_population get_climate get_population get_climate get_population get_climate get_population get_climate get_population"},
		NameOrder:    {"validate_order", "check_inventory", "calculate_shipping", "confirm_order"},
		NameResearch: {"search_notes"},
		NameReplan:   {"station_forecast tide_table", "regional_forecast"},
		NameTemplate: {"list_low_stock supplier_lead_times", "calc"},
	}
	for _, sc := range All() {
		t.Run(sc.Name, func(t *testing.T) {
			msgs := []api.Message{{Role: "system", Content: "You are a helpful assistant."}, {Role: "user", Content: sc.Request}}
			var turns []string
			for range 10 {
				r, ok := o.Respond(&api.ChatRequest{Model: "qwen3:8b", Messages: msgs, Tools: offered})
				if !ok {
					t.Fatal("the oracle does not recognise the scenario")
				}
				if len(r.ToolCalls) == 0 {
					if r.Content != sc.Answer {
						t.Fatalf("answer = %q, want the scenario's", r.Content)
					}
					break
				}
				var names []string
				for _, c := range r.ToolCalls {
					names = append(names, c.Name)
				}
				turns = append(turns, strings.Join(names, " "))
				msgs = runCalls(t, ts, msgs, asCalls(r.ToolCalls))
			}
			if fmt.Sprint(turns) != fmt.Sprint(want[sc.Name]) {
				t.Fatalf("turns = %q, want %q", turns, want[sc.Name])
			}
		})
	}
}

// TestOraclePlanAndExecute drives the oracle as LangGraph's plan-and-execute
// example does: a planner with a {"steps": [string]} schema, an executor
// agent per step that sees only the plan and its step, a replanner whose
// schema is a union of a plan and a response.
func TestOraclePlanAndExecute(t *testing.T) {
	ts, offered := oracleTools(t)
	o := Oracle()
	planSchema := json.RawMessage(`{"type":"object","properties":{"steps":{"type":"array","items":{"type":"string"}}},"required":["steps"]}`)
	actSchema := json.RawMessage(`{"type":"object","properties":{"action":{"anyOf":[` +
		`{"type":"object","properties":{"response":{"type":"string"}},"required":["response"]},` +
		`{"type":"object","properties":{"steps":{"type":"array","items":{"type":"string"}}},"required":["steps"]}]}},"required":["action"]}`)
	wantSteps := map[string]int{NameCities: 11, NameOrder: 4, NameResearch: 4, NameReplan: 4, NameTemplate: 3}
	for _, sc := range All() {
		t.Run(sc.Name, func(t *testing.T) {
			r, _ := o.Respond(&api.ChatRequest{Model: "gemma3:12b", Format: planSchema, Messages: []api.Message{{Role: "user", Content: "Make a plan for: " + sc.Request}}})
			var p struct{ Steps []string }
			if err := json.Unmarshal([]byte(r.Content), &p); err != nil || len(p.Steps) == 0 {
				t.Fatalf("plan %q: %v", r.Content, err)
			}
			var past []string
			executed := 0
			for range 20 {
				step := p.Steps[0]
				msgs := []api.Message{{Role: "user", Content: fmt.Sprintf("For the following plan:\n%s\n\nYou are tasked with executing step 1, %s.", strings.Join(p.Steps, "\n"), step)}}
				var result string
				for range 4 {
					r, ok := o.Respond(&api.ChatRequest{Model: "granite4:tiny-h", Messages: msgs, Tools: offered})
					if !ok {
						t.Fatalf("executor on %q: not recognised", step)
					}
					if len(r.ToolCalls) == 0 {
						result = r.Content
						break
					}
					msgs = runCalls(t, ts, msgs, asCalls(r.ToolCalls))
				}
				if !strings.Contains(result, "done: ") && !strings.Contains(result, "failed: ") {
					t.Fatalf("executor result %q has no progress tag", result)
				}
				executed++
				past = append(past, step+": "+result)
				r, _ := o.Respond(&api.ChatRequest{Model: "gemma3:12b", Format: actSchema, Messages: []api.Message{{Role: "user", Content: "Your objective was this:\n" + sc.Request +
					"\nYour original plan was this:\n" + strings.Join(p.Steps, "\n") + "\nYou have currently done the following steps:\n" + strings.Join(past, "\n")}}})
				var act struct {
					Action struct {
						Response string
						Steps    []string
					}
				}
				if err := json.Unmarshal([]byte(r.Content), &act); err != nil {
					t.Fatalf("replan %q: %v", r.Content, err)
				}
				if act.Action.Response != "" {
					if act.Action.Response != sc.Answer {
						t.Fatalf("response = %q", act.Action.Response)
					}
					if executed != wantSteps[sc.Name] {
						t.Fatalf("executed %d steps, want %d", executed, wantSteps[sc.Name])
					}
					return
				}
				p.Steps = act.Action.Steps
			}
			t.Fatal("no response after 20 replans")
		})
	}
}

func TestToolServerHTTP(t *testing.T) {
	ts, _ := oracleTools(t)
	srv := httptest.NewServer(Handler(http.NotFoundHandler(), ts))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/tools")
	if err != nil {
		t.Fatal(err)
	}
	var list []ToolInfo
	_ = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list) < 13 {
		t.Fatalf("GET /tools listed %d tools", len(list))
	}
	for _, c := range []struct {
		tool, body string
		status     int
		has        string
	}{
		{"get_climate", `{"city":"Austin, TX"}`, 200, "29.6"},
		{"station_forecast", `{"station":"BRAVO-AWS"}`, 200, `"error"`},
		{"get_climate", `{"town":1}`, 400, "error"},
		{"nope", `{}`, 404, "unknown tool"},
	} {
		resp, err := http.Post(srv.URL+"/tools/"+c.tool, "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		_, _ = fmt.Fprint(&b, readAll(resp))
		if resp.StatusCode != c.status || !strings.Contains(b.String(), c.has) {
			t.Errorf("POST /tools/%s %s = %d %s, want %d with %q", c.tool, c.body, resp.StatusCode, b.String(), c.status, c.has)
		}
	}
}

// With OneCallPerTurn the oracle's agent asks for one call a turn, every
// call the scenario needs still made, then the answer.
func TestOracleOneCallPerTurn(t *testing.T) {
	ts, offered := oracleTools(t)
	o := OracleWith(OracleOptions{OneCallPerTurn: true})
	for _, sc := range All() {
		msgs := []api.Message{{Role: "user", Content: sc.Request}}
		calls, answered := 0, false
		for range 20 {
			r, ok := o.Respond(&api.ChatRequest{Model: "qwen3:8b", Messages: msgs, Tools: offered})
			if !ok {
				t.Fatalf("%s: not recognised", sc.Name)
			}
			if len(r.ToolCalls) == 0 {
				answered = r.Content == sc.Answer
				break
			}
			if len(r.ToolCalls) != 1 {
				t.Fatalf("%s: %d calls in one turn, want 1", sc.Name, len(r.ToolCalls))
			}
			calls++
			msgs = runCalls(t, ts, msgs, asCalls(r.ToolCalls))
		}
		if !answered || calls != len(OracleCalls(sc)) {
			t.Errorf("%s: %d calls (want %d), answered %v", sc.Name, calls, len(OracleCalls(sc)), answered)
		}
	}
}
