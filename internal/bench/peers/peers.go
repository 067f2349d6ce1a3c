// Package peers runs agentd's scenarios in other agent frameworks —
// LangGraph.js (its prebuilt ReAct agent and its plan-and-execute pattern)
// and Strands Agents — side by side with agentd, on the same simulator,
// latency model and fixture tools. Every framework meets the same perfect
// model (agentd's prompts are answered by the scenario script, the
// others' by the scenario oracle), so what the comparison shows is
// structure: model calls, prompt and output tokens, parallelism, wall time.
//
// Each framework is a plain-JS harness in bench/peers, run with node as a
// child process per scenario; the simulator's counters, read before and
// after each run (runs go one at a time), give its calls and tokens.
package peers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/bench"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/scenarios"
)

// Framework is one peer harness.
type Framework struct {
	Name    string
	Script  string // file in bench/peers
	Config  string // what runs, in words (models filled in by Run)
	Planner bool   // uses the planner model too
}

// Frameworks are the peers, in report order.
var Frameworks = []Framework{
	{Name: "langgraph-react", Script: "langgraph_react.mjs",
		Config: "LangGraph.js prebuilt `createReactAgent`, ChatOllama (/api/chat) on %[1]s, the scenario tools"},
	{Name: "langgraph-plan-execute", Script: "langgraph_plan_execute.mjs", Planner: true,
		Config: "LangGraph.js plan-and-execute (the tutorial's graph): planner and replanner `withStructuredOutput` on %[2]s, executor `createReactAgent` on %[1]s per step"},
	{Name: "strands-agent", Script: "strands_agent.mjs",
		Config: "Strands Agents `Agent` with the scenario tools, its OpenAI provider (chat completions, /v1) on %[1]s — the TypeScript SDK has no Ollama provider"},
}

// Packages are the npm packages whose versions the report lists.
var Packages = []string{"@langchain/langgraph", "@langchain/ollama", "@langchain/core", "@strands-agents/sdk", "openai", "zod"}

// Options configure a comparison.
type Options struct {
	// Dir is the harness directory (bench/peers, with node_modules);
	// empty: found from the working directory upwards.
	Dir string
	// Node is the node binary (default "node" on $PATH).
	Node string
	// TimeScale: real seconds per simulated second, for every framework
	// and agentd alike (0 = instant; walls are then real time).
	TimeScale float64
	// Scenarios to run (default: all).
	Scenarios []scenarios.Scenario
	// Frameworks by name (default: all).
	Frameworks []string
	// Base config: models and the price table (default config.Default()).
	Base *config.Config
	// Agentd is the scenario suite's result to compare with; nil runs the
	// suite (bench.RunSuite) on its own simulator with the same settings.
	Agentd *bench.SuiteResult
	// AgentdRows, when set, are agentd's rows as measured elsewhere (for
	// instance `agentd bench --suite` with the same time scale); they take
	// the place of running the suite.
	AgentdRows []Row
	// SkipAgentd leaves agentd out (no ratios).
	SkipAgentd bool
	// Oracle chooses how the simulated model plays the peers' tool-calling
	// agents: every ready call at once (default) or one call a turn.
	Oracle scenarios.OracleOptions
	// Timeout per harness run (default 10 minutes).
	Timeout time.Duration
	Log     *slog.Logger
}

// Row is one scenario in one framework.
type Row struct {
	Scenario, Framework string
	// Status: done (every expected fact in the answer), wrong (an answer
	// without them) or error.
	Status string
	Err    string
	// Wall is simulated time (real / TimeScale) from the request to the
	// answer, as the harness measured it (node start-up excluded).
	Wall         time.Duration
	Calls        int // model requests the simulator served
	PromptTokens int
	OutputTokens int
	ToolCalls    int
	CostUSD      float64
	Answer       string
}

// Report is the comparison.
type Report struct {
	Date      string
	TimeScale float64
	PriceName string
	Price     config.PriceConfig
	Node      string
	Versions  map[string]string
	Configs   map[string]string // framework -> what ran
	// Oracle says how the simulated model played the peers' agents.
	Oracle string
	Rows   []Row // agentd's rows have Framework "agentd"
}

// ErrNoModules says the harnesses' packages are not installed.
var ErrNoModules = errors.New("bench/peers/node_modules is missing")

// Run runs every chosen framework on every chosen scenario.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Base == nil {
		o.Base = config.Default()
	}
	if o.Scenarios == nil {
		o.Scenarios = scenarios.All()
	}
	if o.Node == "" {
		o.Node = "node"
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	fws, err := pick(o.Frameworks)
	if err != nil {
		return nil, err
	}
	dir, err := harnessDir(o.Dir)
	if err != nil {
		return nil, err
	}
	m := o.Base.Models
	price := o.Base.Fallback.Prices[o.Base.Fallback.Model]
	rep := &Report{Date: time.Now().Format("2006-01-02"), TimeScale: o.TimeScale, PriceName: o.Base.Fallback.Model, Price: price,
		Versions: versions(dir), Configs: map[string]string{}, Oracle: "every tool call whose inputs are ready, in one turn (parallel function calling at its best)"}
	if o.Oracle.OneCallPerTurn {
		rep.Oracle = "one tool call a turn (classic ReAct)"
	}
	if out, err := exec.CommandContext(ctx, o.Node, "--version").Output(); err == nil {
		rep.Node = strings.TrimSpace(string(out))
	} else {
		return nil, fmt.Errorf("run %s --version: %w — install Node.js 20 or later", o.Node, err)
	}

	if len(o.AgentdRows) > 0 && !o.SkipAgentd {
		rep.Configs["agentd"] = "agentd's rows as given (Options.AgentdRows)"
		for _, r := range o.AgentdRows {
			r.Framework = "agentd"
			if r.CostUSD == 0 {
				r.CostUSD = price.Cost(r.PromptTokens, r.OutputTokens)
			}
			rep.Rows = append(rep.Rows, r)
		}
	} else if !o.SkipAgentd {
		suite := o.Agentd
		if suite == nil {
			suite, err = bench.RunSuite(ctx, o.Base, bench.SuiteOptions{TimeScale: o.TimeScale, Scenarios: o.Scenarios, Log: o.Log})
			if err != nil {
				return nil, fmt.Errorf("agentd's scenario suite: %w", err)
			}
		}
		rep.Configs["agentd"] = fmt.Sprintf("the daemon in process (`bench.RunSuite`, mode agentd): router and summarizer %s, planner %s, executor %s/%s, tool steps without a model call, parallel ready steps",
			m.Router, m.Planner, m.Fast, m.Standard)
		for _, r := range suite.Rows {
			if r.Mode != "agentd" && r.Mode != "agentd-learned" {
				continue
			}
			if r.Mode == "agentd-learned" {
				rep.Configs["agentd-learned"] = "agentd asked the same request a second time: the first run (not measured) taught the plan cache a template, so the planner is not called"
			}
			row := Row{Scenario: r.Scenario, Framework: r.Mode, Status: r.Status, Err: r.Err, Wall: r.Wall, Calls: r.Calls}
			for _, t := range r.Tokens {
				row.PromptTokens += t.Prompt
				row.OutputTokens += t.Output
			}
			row.CostUSD = price.Cost(row.PromptTokens, row.OutputTokens)
			rep.Rows = append(rep.Rows, row)
		}
	}

	sim, err := StartSim(ctx, SimOptions{TimeScale: o.TimeScale, Oracle: o.Oracle, Log: o.Log.With("component", "ollamasim")})
	if err != nil {
		return nil, err
	}
	defer sim.Close()
	if err := bench.Warm(ctx, sim.URL, m.Standard, m.Planner, m.Fast); err != nil {
		return nil, err
	}
	for _, fw := range fws {
		// A single agent runs on the standard tier, the largest model with
		// tools (the planner model has none); a plan-and-execute executor on
		// the fast tier, as agentd's task steps do.
		model := m.Standard
		if fw.Planner {
			model = m.Fast
		}
		rep.Configs[fw.Name] = fmt.Sprintf(fw.Config, model, m.Planner)
		for _, sc := range o.Scenarios {
			row, err := runOne(ctx, o, dir, sim, fw, sc, model, m.Planner)
			if err != nil {
				return nil, err
			}
			row.CostUSD = price.Cost(row.PromptTokens, row.OutputTokens)
			rep.Rows = append(rep.Rows, row)
		}
	}
	return rep, nil
}

func pick(names []string) ([]Framework, error) {
	if len(names) == 0 {
		return Frameworks, nil
	}
	var out []Framework
	for _, n := range names {
		i := slices.IndexFunc(Frameworks, func(f Framework) bool { return f.Name == n })
		if i < 0 {
			var known []string
			for _, f := range Frameworks {
				known = append(known, f.Name)
			}
			return nil, fmt.Errorf("unknown framework %q (known: %s)", n, strings.Join(known, ", "))
		}
		out = append(out, Frameworks[i])
	}
	return out, nil
}

// harnessDir finds bench/peers and checks its packages are installed.
func harnessDir(dir string) (string, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "bench", "peers", "package.json")); err == nil {
				dir = filepath.Join(d, "bench", "peers")
				break
			}
			if filepath.Dir(d) == d {
				return "", fmt.Errorf("no bench/peers/package.json above %s — run from the agentd repository", wd)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@langchain", "langgraph")); err != nil {
		return "", fmt.Errorf("%w: run `cd %s && npm ci` (needs Node.js 20+ and npm)", ErrNoModules, dir)
	}
	return dir, nil
}

// versions reads the installed version of each package.
func versions(dir string) map[string]string {
	out := map[string]string{}
	for _, p := range Packages {
		b, err := os.ReadFile(filepath.Join(dir, "node_modules", filepath.FromSlash(p), "package.json"))
		if err != nil {
			continue
		}
		var v struct{ Version string }
		if json.Unmarshal(b, &v) == nil {
			out[p] = v.Version
		}
	}
	return out
}

// harnessResult is the line a harness prints.
type harnessResult struct {
	Framework  string  `json:"framework"`
	WallMS     float64 `json:"wall_ms"`
	ModelCalls int     `json:"model_calls"`
	ToolCalls  int     `json:"tool_calls"`
	Answer     string  `json:"answer"`
	Error      string  `json:"error"`
}

func runOne(ctx context.Context, o Options, dir string, sim *Sim, fw Framework, sc scenarios.Scenario, model, planner string) (Row, error) {
	row := Row{Scenario: sc.Name, Framework: fw.Name}
	before := sim.Server.Stats()
	rctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, o.Node, fw.Script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AGENTD_SIM_URL="+sim.URL, "PEER_REQUEST="+sc.Request, "PEER_MODEL="+model, "PEER_PLANNER="+planner,
		"NODE_NO_WARNINGS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return row, ctx.Err()
	}
	after := sim.Server.Stats()
	row.Calls, row.PromptTokens, row.OutputTokens = diff(before, after)
	var res harnessResult
	line := lastLine(stdout.Bytes())
	if err := json.Unmarshal(line, &res); err != nil {
		row.Status, row.Err = "error", fmt.Sprintf("%s: %v; stderr: %s", fw.Script, runErr, tail(stderr.String(), 400))
		o.Log.Warn("peer harness failed", "framework", fw.Name, "scenario", sc.Name, "error", row.Err)
		return row, nil
	}
	row.ToolCalls, row.Answer = res.ToolCalls, res.Answer
	row.Wall = time.Duration(res.WallMS * float64(time.Millisecond))
	if o.TimeScale > 0 {
		row.Wall = time.Duration(float64(row.Wall) / o.TimeScale)
	}
	switch {
	case res.Error != "" || runErr != nil:
		row.Status, row.Err = "error", tail(res.Error+" "+stderr.String(), 400)
	case !allFacts(res.Answer, sc.Expect.Facts):
		row.Status, row.Err = "wrong", "the answer lacks expected facts"
	default:
		row.Status = "done"
	}
	o.Log.Info("peer run", "framework", fw.Name, "scenario", sc.Name, "status", row.Status, "calls", row.Calls, "wall", row.Wall)
	return row, nil
}

func diff(before, after ollamasim.Stats) (calls, prompt, output int) {
	for name, a := range after.Models {
		b := before.Models[name]
		calls += int(a.Requests - b.Requests)
		prompt += int(a.PromptTokens - b.PromptTokens)
		output += int(a.EvalTokens - b.EvalTokens)
	}
	return calls, prompt, output
}

func allFacts(answer string, facts []string) bool {
	low := strings.ToLower(answer)
	for _, f := range facts {
		if !strings.Contains(low, strings.ToLower(f)) {
			return false
		}
	}
	return true
}

func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Markdown writes the table: every framework per scenario, agentd first,
// with each peer's ratio to agentd (peer / agentd) for wall and prompt
// tokens, then totals per framework.
func (r *Report) Markdown(w io.Writer) {
	fmt.Fprintf(w, "Simulated time (TimeScale %g: real / %g); cost prices every token at %s ($%.2f / $%.2f per million in/out), as the suite does.\n\n",
		r.TimeScale, r.TimeScale, r.PriceName, r.Price.InputPerMTok, r.Price.OutputPerMTok)
	if r.Oracle != "" {
		fmt.Fprintf(w, "The peers' tool-calling model asks for %s.\n\n", r.Oracle)
	}
	fmt.Fprintln(w, "| scenario | framework | status | wall | model calls | tokens in/out | cost USD | wall vs agentd | prompt tokens vs agentd |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	agentd := map[string]Row{}
	var order []string
	for _, row := range r.Rows {
		if row.Framework == "agentd" {
			agentd[row.Scenario] = row
		}
		if !slices.Contains(order, row.Scenario) {
			order = append(order, row.Scenario)
		}
	}
	type total struct {
		wall               time.Duration
		calls, prompt, out int
		cost               float64
		runs, done         int
	}
	totals := map[string]*total{}
	var fwOrder []string
	for _, sc := range order {
		for _, row := range r.Rows {
			if row.Scenario != sc {
				continue
			}
			ratioWall, ratioPrompt := "", ""
			if a, ok := agentd[sc]; ok && row.Framework != "agentd" {
				ratioWall, ratioPrompt = ratio(row.Wall.Seconds(), a.Wall.Seconds()), ratio(float64(row.PromptTokens), float64(a.PromptTokens))
			}
			status := row.Status
			if row.Err != "" && row.Status != "done" {
				status += ": " + oneLine(row.Err, 80)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.2f s | %d | %s/%s | %.5f | %s | %s |\n", sc, row.Framework, status, row.Wall.Seconds(), row.Calls,
				kTokens(row.PromptTokens), kTokens(row.OutputTokens), row.CostUSD, ratioWall, ratioPrompt)
			t := totals[row.Framework]
			if t == nil {
				t = &total{}
				totals[row.Framework] = t
				fwOrder = append(fwOrder, row.Framework)
			}
			t.wall += row.Wall
			t.calls += row.Calls
			t.prompt += row.PromptTokens
			t.out += row.OutputTokens
			t.cost += row.CostUSD
			t.runs++
			if row.Status == "done" {
				t.done++
			}
		}
	}
	fmt.Fprintln(w, "\n| framework | runs done | wall (sum) | model calls | tokens in/out | cost USD | wall vs agentd | prompt tokens vs agentd |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	a := totals["agentd"]
	for _, fw := range fwOrder {
		t := totals[fw]
		rw, rp := "", ""
		if a != nil && fw != "agentd" {
			rw, rp = ratio(t.wall.Seconds(), a.wall.Seconds()), ratio(float64(t.prompt), float64(a.prompt))
		}
		fmt.Fprintf(w, "| %s | %d/%d | %.2f s | %d | %s/%s | %.5f | %s | %s |\n", fw, t.done, t.runs, t.wall.Seconds(), t.calls,
			kTokens(t.prompt), kTokens(t.out), t.cost, rw, rp)
	}
	r.learnedVsFastest(w)
	fmt.Fprintln(w)
	for _, fw := range fwOrder {
		if c, ok := r.Configs[fw]; ok {
			fmt.Fprintf(w, "- **%s**: %s\n", fw, c)
		}
	}
	if len(r.Versions) > 0 {
		var vs []string
		for _, p := range Packages {
			if v, ok := r.Versions[p]; ok {
				vs = append(vs, p+" "+v)
			}
		}
		fmt.Fprintf(w, "- versions: node %s; %s\n", r.Node, strings.Join(vs, ", "))
	}
}

// learnedVsFastest says, per scenario, how agentd asked a second time
// (the plan cache warm) compares with the fastest peer that answered.
func (r *Report) learnedVsFastest(w io.Writer) {
	learned := map[string]Row{}
	fastest := map[string]Row{}
	var order []string
	for _, row := range r.Rows {
		switch {
		case row.Framework == "agentd-learned":
			learned[row.Scenario] = row
			order = append(order, row.Scenario)
		case row.Framework != "agentd" && row.Status == "done":
			if f, ok := fastest[row.Scenario]; !ok || row.Wall < f.Wall {
				fastest[row.Scenario] = row
			}
		}
	}
	if len(order) == 0 {
		return
	}
	fmt.Fprintln(w, "\nagentd the second time (plan cache warm) against the fastest peer that answered:")
	for _, sc := range order {
		l, f := learned[sc], fastest[sc]
		if f.Framework == "" || l.Status != "done" {
			fmt.Fprintf(w, "- %s: agentd-learned %s; no comparison\n", sc, l.Status)
			continue
		}
		fmt.Fprintf(w, "- %s: %s %.2f s / agentd-learned %.2f s = %s faster; prompt tokens %s / %s = %s fewer\n", sc, f.Framework,
			f.Wall.Seconds(), l.Wall.Seconds(), ratio(f.Wall.Seconds(), l.Wall.Seconds()),
			kTokens(f.PromptTokens), kTokens(l.PromptTokens), ratio(float64(f.PromptTokens), float64(l.PromptTokens)))
	}
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func kTokens(n int) string {
	if n >= 1000 {
		return fmt.Sprintf("%.1fk", float64(n)/1000)
	}
	return fmt.Sprint(n)
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
