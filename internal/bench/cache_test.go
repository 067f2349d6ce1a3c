package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	agentrun "github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/internal/scenarios"
)

// A small workload end to end on a fast simulator, both sides: with the
// cache off every run is right, and the report renders every figure and
// target. (What the cache saves is measured by `agentd bench --cache`,
// not asserted here.)
func TestCacheBenchSmallWorkload(t *testing.T) {
	res, err := RunCache(context.Background(), config.Default(), CacheOptions{TimeScale: 0.01, Requests: 30, RemoteRequests: 6,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Off.Rows) != 30 || len(res.On.Rows) != 30 {
		t.Fatalf("rows off %d on %d, want 30 each", len(res.Off.Rows), len(res.On.Rows))
	}
	off := res.Off.totals()
	if off.done != 30 || off.stepAccuracy() != 1 || off.finalAccuracy() != 1 {
		for _, r := range res.Off.Rows {
			if !r.Score.PlanOK || !r.Score.AnswerOK {
				t.Logf("%q: %s %v %s", r.Text, r.Status, r.Score.Missing, r.Err)
			}
		}
		t.Fatalf("cache off: done %d/30, step accuracy %.3f, final accuracy %.3f: want every run right", off.done, off.stepAccuracy(), off.finalAccuracy())
	}
	// With the cache off the planner plans every run, once, and nothing
	// claims a template.
	if off.plannerCalls != 30 || off.served != 0 {
		t.Errorf("cache off: %d planner calls, %d served from a template; want 30 and 0", off.plannerCalls, off.served)
	}
	for _, r := range res.Off.Rows {
		if r.Wall <= 0 || r.Calls == 0 || r.PromptTokens == 0 {
			t.Errorf("%q: %+v", r.Text, r)
		}
	}
	on := res.On.totals()
	if on.runs != 30 {
		t.Errorf("cache on: %d runs", on.runs)
	}
	// The remote part: with the cache off every hard request was planned
	// remotely, and paid for.
	ro := res.RemoteOff.totals()
	if ro.runs != 6 || ro.done != 6 || ro.finalAccuracy() != 1 || ro.remoteRoute != 6 || ro.remoteCalls != 6 || res.RemoteOff.RemoteRequests != 6 || res.RemoteOff.RemoteUSD <= 0 {
		for _, r := range res.RemoteOff.Rows {
			t.Logf("%q: %s route %s %v %s", r.Text, r.Status, r.Route, r.Score.Missing, r.Err)
		}
		t.Errorf("remote-only: %+v, remote requests %d, spend $%g", ro, res.RemoteOff.RemoteRequests, res.RemoteOff.RemoteUSD)
	}
	t.Logf("cache on: planner calls %d, served %d, wrong %d, final accuracy %.3f; remote spend $%g vs $%g",
		on.plannerCalls, on.served, on.wrong, on.finalAccuracy(), res.RemoteOn.RemoteUSD, res.RemoteOff.RemoteUSD)

	var b bytes.Buffer
	res.Render(&b)
	out := b.String()
	for _, want := range []string{
		"## Plan cache: cache off vs cache on, cold", "planner calls (plan, repair, replan)", "median latency", "p90 latency",
		"step accuracy", "100.0% (30/30)", "served from a learned template", "By request type:",
		"- planner calls down ≥50%: 30 → ", "- median latency down ≥27%", "- accuracy ≥97% of cache-off", "- wrong-template answers 0",
		"## Plan cache with the remote fallback", "- remote spend ≥97% below remote-only",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// A run a learned template planned with another request's arguments is
// counted as a wrong-template answer; the same run from the planner is
// wrong but not a template's fault; a right run from a template is not
// wrong.
func TestCacheScoreCountsWrongTemplates(t *testing.T) {
	req, ok := scenarios.RecogniseWorkload("Convert 250 EUR to NOK")
	if !ok {
		t.Fatal("request not recognised")
	}
	exp, err := req.Expect()
	if err != nil {
		t.Fatal(err)
	}
	// The template learned from "Convert 100 USD to EUR", applied with its
	// own values left in.
	wrongArgs, _ := json.Marshal(map[string]any{"amount": 100, "from": "USD", "to": "EUR"})
	now := time.Now()
	later := now.Add(2 * time.Second)
	rec := func(route string, args json.RawMessage, answer string) *runRecord {
		return &runRecord{
			run: &agentrun.Run{Status: agentrun.Done, Route: route, Answer: answer, CreatedAt: now, FinishedAt: &later,
				Meta: json.RawMessage(`{"template":{"id":"tpl-convert","name":"convert {amount} {from} to {to}","params":{"amount":100}}}`)},
			wall:  2 * time.Second,
			steps: []*agentrun.Step{{StepID: "convert", Tool: "convert_currency", Status: agentrun.StepDone, Args: args, Output: `{"result":92}`}},
			calls: []db.ModelCall{{Purpose: "synthesize", PromptTokens: 200, OutputTokens: 30}},
		}
	}
	identity := func(d time.Duration) time.Duration { return d }

	wrong := scoreCacheRun(req, exp, rec(routeCache, wrongArgs, "100 USD is 92 EUR at a rate of 0.92 [convert]."), identity)
	if !wrong.served() || !wrong.wrongTemplate() || wrong.Template != "tpl-convert" || wrong.PlannerCalls != 0 {
		t.Errorf("wrong template run: %+v", wrong)
	}
	fromPlanner := scoreCacheRun(req, exp, rec("local", wrongArgs, "100 USD is 92 EUR."), identity)
	if fromPlanner.served() || fromPlanner.wrongTemplate() || fromPlanner.Score.AnswerOK {
		t.Errorf("planner's wrong run: %+v", fromPlanner)
	}
	rightArgs, _ := json.Marshal(exp.Steps[0].Args)
	right := scoreCacheRun(req, exp, rec(routeCache, rightArgs, "250 EUR is "+strings.TrimSuffix(exp.Facts[0], " NOK")+" NOK [convert]."), identity)
	if !right.served() || right.wrongTemplate() {
		t.Errorf("right template run: %+v (facts %v)", right, exp.Facts)
	}
	side := cacheSide{Name: "cache on", Rows: []cacheRow{wrong, fromPlanner, right}}
	if tot := side.totals(); tot.served != 2 || tot.wrong != 1 || tot.templates != 1 {
		t.Errorf("totals %+v", tot)
	}
	var b bytes.Buffer
	renderWrong(&b, side)
	if !strings.Contains(b.String(), "template tpl-convert") {
		t.Errorf("wrong runs list:\n%s", b.String())
	}
}
