package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/web"
)

// Pagination bounds for list endpoints.
const (
	defaultPageSize = 50
	maxPageSize     = 200
	// maxWait bounds how long POST /api/v1/runs holds the request open.
	maxWait = 10 * time.Minute
)

// routes holds the handlers' dependencies.
type routes struct {
	s   *Server
	d   Deps
	enc *encodeCache
}

// RegisterRoutes adds the run API, the event stream, the OpenAI-compatible
// endpoint, /metrics, login/logout and the dashboard to s. Engine, Runs and
// Events are required.
func RegisterRoutes(s *Server, d Deps) error {
	if d.Engine == nil || d.Runs == nil || d.Events == nil {
		return errors.New("api: RegisterRoutes needs Engine, Runs and Events")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.WSBuffer <= 0 {
		d.WSBuffer = 512
	}
	if d.WSPing <= 0 {
		d.WSPing = 20 * time.Second
	}
	if d.SSEKeepalive <= 0 {
		d.SSEKeepalive = 5 * time.Second
	}
	if d.RetryAfter <= 0 {
		d.RetryAfter = 5
	}
	if d.Workflows == nil {
		d.Workflows = func() []string { return nil }
	}
	if d.Dashboard == nil {
		d.Dashboard = web.FS()
	}
	rt := &routes{s: s, d: d, enc: newEncodeCache(4096)}

	s.Handle("POST /api/v1/runs", http.HandlerFunc(rt.submit))
	s.Handle("GET /api/v1/runs", http.HandlerFunc(rt.listRuns))
	s.Handle("GET /api/v1/runs/{id}", http.HandlerFunc(rt.getRun))
	s.Handle("POST /api/v1/runs/{id}/cancel", http.HandlerFunc(rt.cancel))
	s.Handle("GET /api/v1/approvals", http.HandlerFunc(rt.listApprovals))
	s.Handle("POST /api/v1/approvals/{run}/{step}", http.HandlerFunc(rt.decide))
	s.Handle("GET /api/v1/reviews", http.HandlerFunc(rt.listReviews))
	s.Handle("POST /api/v1/reviews/{run}/{step}", http.HandlerFunc(rt.resolveReview))
	s.Handle("GET /api/v1/egress", http.HandlerFunc(rt.egress))
	s.Handle("GET /api/v1/budgets", http.HandlerFunc(rt.budgets))
	s.Handle("GET /api/v1/residency", http.HandlerFunc(rt.residency))
	s.Handle("GET /api/v1/link", http.HandlerFunc(rt.link))
	rt.registerFallbackAdmin()
	rt.registerTemplates()
	s.Handle("GET /api/v1/history/gpu", http.HandlerFunc(rt.gpuHistory))
	s.Handle("GET /api/v1/events", http.HandlerFunc(rt.stream))
	s.Handle("GET /api/v1/session", http.HandlerFunc(rt.session))
	s.HandlePublic("POST /api/v1/login", http.HandlerFunc(rt.login))
	s.HandlePublic("POST /api/v1/logout", http.HandlerFunc(rt.logout))

	s.handleOpenAI("POST /v1/chat/completions", http.HandlerFunc(rt.chatCompletions))
	s.handleOpenAI("GET /v1/models", http.HandlerFunc(rt.models))
	s.handleOpenAI("GET /v1/models/{id}", http.HandlerFunc(rt.model))

	if d.Metrics != nil {
		s.Handle("GET /metrics", d.Metrics.Handler())
	}
	s.HandlePublic("GET /", dashboardHandler(d.Dashboard))
	return nil
}

// by names who acted: the dashboard authenticates with its cookie, every
// other client with the bearer header.
func by(r *http.Request) string {
	if r.Header.Get("Authorization") == "" {
		if _, err := r.Cookie(SessionCookie); err == nil {
			return "dashboard"
		}
	}
	return "api"
}

// decodeJSON reads a JSON body strictly, answering the error itself; it
// reports whether decoding succeeded.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value in the body")
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		// Name the field and the types, not the Go struct behind them.
		WriteError(w, http.StatusBadRequest, "bad_json",
			fmt.Sprintf("field %q must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value))
	case errors.As(err, &syntaxErr):
		WriteError(w, http.StatusBadRequest, "bad_json",
			fmt.Sprintf("the request body is not valid JSON (at byte %d): %v", syntaxErr.Offset, strings.TrimPrefix(err.Error(), "json: ")))
	case errors.As(err, &tooBig):
		WriteError(w, http.StatusRequestEntityTooLarge, "too_large",
			fmt.Sprintf("request body is over the limit of %d bytes (server.max_request_bytes)", tooBig.Limit))
	case errors.Is(err, io.EOF):
		WriteError(w, http.StatusBadRequest, "bad_json", "the request body is empty; send a JSON object")
	default:
		WriteError(w, http.StatusBadRequest, "bad_json", "the request body is not the expected JSON: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	return false
}

// jsonKind names a Go type as the JSON a client should send.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another type"
}

// engineError answers an error from the engine or the store.
func (rt *routes) engineError(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		msg := err.Error()
		if !strings.HasPrefix(msg, what) { // the store's error may name the run already
			msg = what + ": " + msg
		}
		WriteError(w, http.StatusNotFound, "not_found", msg)
	case errors.Is(err, ErrQueueFull):
		w.Header().Set("Retry-After", strconv.Itoa(rt.d.RetryAfter))
		WriteError(w, http.StatusServiceUnavailable, "queue_full",
			fmt.Sprintf("%s: %v — the run queue is full; retry in %d s, or raise executor.queue_size", what, err, rt.d.RetryAfter))
	case errors.Is(err, ErrConflict):
		WriteError(w, http.StatusConflict, "conflict", what+": "+err.Error())
	case errors.Is(err, ErrInvalid):
		WriteError(w, http.StatusBadRequest, "invalid", what+": "+err.Error())
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
	default:
		rt.s.log.Error(what, "err", err)
		WriteError(w, http.StatusInternalServerError, "internal", what+" failed: "+err.Error()+" — see agentd's log")
	}
}

// submitBody is POST /api/v1/runs.
type submitBody struct {
	Request   string          `json:"request"`
	Workflow  string          `json:"workflow"`
	Params    map[string]any  `json:"params"`
	Planner   string          `json:"planner"`
	Sensitive bool            `json:"sensitive"`
	Priority  int             `json:"priority"`
	Async     bool            `json:"async"`
	Wait      json.RawMessage `json:"wait"`
}

// parseWait reads wait: false/absent (0), true (until done, up to maxWait)
// or a number of seconds.
func parseWait(raw json.RawMessage) (time.Duration, error) {
	s := strings.TrimSpace(string(raw))
	switch s {
	case "", "null", "false":
		return 0, nil
	case "true":
		return maxWait, nil
	}
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil || secs < 0 {
		return 0, fmt.Errorf("wait is %s; send true, false, or a number of seconds from 0 to %d", s, int(maxWait.Seconds()))
	}
	return min(time.Duration(secs*float64(time.Second)), maxWait), nil
}

func (rt *routes) submit(w http.ResponseWriter, r *http.Request) {
	var b submitBody
	if !decodeJSON(w, r, &b) {
		return
	}
	b.Request = strings.TrimSpace(b.Request)
	b.Workflow = strings.TrimSpace(b.Workflow)
	if b.Request == "" && b.Workflow == "" {
		WriteError(w, http.StatusBadRequest, "missing_request", `"request" is empty; say what you want done, or name a "workflow"`)
		return
	}
	if b.Request == "" {
		b.Request = workflowRequest(b.Workflow, b.Params)
	}
	switch b.Planner {
	case "":
		b.Planner = "auto"
	case "auto", "local", "remote":
	default:
		WriteError(w, http.StatusBadRequest, "bad_planner", fmt.Sprintf(`"planner" is %q; use local, remote or auto`, b.Planner))
		return
	}
	if b.Priority < -100 || b.Priority > 100 {
		WriteError(w, http.StatusBadRequest, "bad_priority", fmt.Sprintf(`"priority" is %d; use -100 to 100 (higher runs first)`, b.Priority))
		return
	}
	wait, err := parseWait(b.Wait)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "bad_wait", err.Error())
		return
	}
	source := "api"
	if by(r) == "dashboard" {
		source = "dashboard"
	}
	rn, err := rt.d.Engine.Submit(r.Context(), SubmitRequest{
		Request: b.Request, Workflow: b.Workflow, Params: b.Params, Planner: b.Planner,
		Sensitive: b.Sensitive, Priority: b.Priority, Async: b.Async, Source: source,
	})
	if err != nil {
		rt.engineError(w, r, "submit run", err)
		return
	}
	if wait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		done, err := rt.d.Engine.Wait(ctx, rn.ID)
		cancel()
		switch {
		case err == nil:
			rn = done
		case r.Context().Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			// Answer with the run as it stands; the caller polls or watches.
			if d, err := rt.d.Runs.RunDetail(r.Context(), rn.ID); err == nil && d.Run != nil {
				rn = d.Run
			}
		default:
			rt.engineError(w, r, "wait for run "+rn.ID, err)
			return
		}
	}
	w.Header().Set("Location", "/api/v1/runs/"+rn.ID)
	WriteJSON(w, http.StatusCreated, rn)
}

// workflowRequest is the request text of a run that names a workflow and
// no request: the engine records and shows a request for every run, and a
// workflow with its parameters is a whole request.
func workflowRequest(workflow string, params map[string]any) string {
	text := "Run workflow " + workflow
	if len(params) > 0 {
		if b, err := json.Marshal(params); err == nil {
			text += " with parameters " + string(b)
		}
	}
	return text
}

// pageLimit reads ?limit=, answering a bad one itself.
func pageLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return defaultPageSize, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxPageSize {
		WriteError(w, http.StatusBadRequest, "bad_limit", fmt.Sprintf("limit is %q; use 1 to %d", s, maxPageSize))
		return 0, false
	}
	return n, true
}

var runStatuses = map[run.Status]bool{
	run.Queued: true, run.Planning: true, run.Running: true, run.WaitingApproval: true, run.Deferred: true,
	run.Review: true, run.Done: true, run.Partial: true, run.Failed: true, run.Canceled: true,
}

// RunPage is GET /api/v1/runs. NextBefore is the cursor for the next page
// (empty on the last).
type RunPage struct {
	Runs       []*run.Run `json:"runs"`
	NextBefore string     `json:"next_before,omitempty"`
}

func (rt *routes) listRuns(w http.ResponseWriter, r *http.Request) {
	limit, ok := pageLimit(w, r)
	if !ok {
		return
	}
	q := RunQuery{Limit: limit, Before: r.URL.Query().Get("before"), Workflow: r.URL.Query().Get("workflow")}
	for _, v := range r.URL.Query()["status"] {
		for st := range strings.SplitSeq(v, ",") {
			st = strings.TrimSpace(st)
			if st == "" {
				continue
			}
			if !runStatuses[run.Status(st)] {
				WriteError(w, http.StatusBadRequest, "bad_status",
					fmt.Sprintf("status %q is not a run status; use queued, planning, running, waiting_approval, deferred, review, done, partial, failed or canceled", st))
				return
			}
			q.Statuses = append(q.Statuses, run.Status(st))
		}
	}
	runs, err := rt.d.Runs.ListRuns(r.Context(), q)
	if err != nil {
		rt.engineError(w, r, "list runs", err)
		return
	}
	page := RunPage{Runs: runs}
	if page.Runs == nil {
		page.Runs = []*run.Run{}
	}
	if len(runs) == limit {
		page.NextBefore = runs[len(runs)-1].ID
	}
	WriteJSON(w, http.StatusOK, page)
}

func (rt *routes) getRun(w http.ResponseWriter, r *http.Request) {
	d, err := rt.d.Runs.RunDetail(r.Context(), r.PathValue("id"))
	if err != nil {
		rt.engineError(w, r, "run "+r.PathValue("id"), err)
		return
	}
	WriteJSON(w, http.StatusOK, d)
}

func (rt *routes) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := rt.d.Engine.Cancel(r.Context(), id, by(r)); err != nil {
		rt.engineError(w, r, "cancel run "+id, err)
		return
	}
	body := map[string]any{"id": id, "canceled_by": by(r)}
	if d, err := rt.d.Runs.RunDetail(r.Context(), id); err == nil && d.Run != nil {
		body["run"] = d.Run
	}
	WriteJSON(w, http.StatusOK, body)
}

func (rt *routes) listApprovals(w http.ResponseWriter, r *http.Request) {
	list, err := rt.d.Runs.PendingApprovals(r.Context())
	if err != nil {
		rt.engineError(w, r, "list approvals", err)
		return
	}
	if list == nil {
		list = []Approval{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"approvals": list})
}

type decisionBody struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

func (rt *routes) decide(w http.ResponseWriter, r *http.Request) {
	var b decisionBody
	if !decodeJSON(w, r, &b) {
		return
	}
	var approve bool
	switch b.Decision {
	case "approve":
		approve = true
	case "deny":
	default:
		WriteError(w, http.StatusBadRequest, "bad_decision", fmt.Sprintf(`"decision" is %q; use approve or deny`, b.Decision))
		return
	}
	runID, stepID, who := r.PathValue("run"), r.PathValue("step"), by(r)
	if err := rt.d.Engine.Decide(r.Context(), runID, stepID, approve, who, b.Reason); err != nil {
		rt.engineError(w, r, fmt.Sprintf("decide approval %s/%s", runID, stepID), err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"run_id": runID, "step_id": stepID, "decision": b.Decision, "decided_by": who, "reason": b.Reason})
}

func (rt *routes) egress(w http.ResponseWriter, r *http.Request) {
	if rt.d.Ledger == nil {
		WriteError(w, http.StatusNotFound, "not_configured", "the egress ledger is not available: remote fallback is not configured")
		return
	}
	limit, ok := pageLimit(w, r)
	if !ok {
		return
	}
	var before int64
	if s := r.URL.Query().Get("before"); s != "" {
		var err error
		if before, err = strconv.ParseInt(s, 10, 64); err != nil || before < 1 {
			WriteError(w, http.StatusBadRequest, "bad_before", fmt.Sprintf("before is %q; use the next_before value of the previous page (a record id)", s))
			return
		}
	}
	recs, err := rt.d.Ledger.Egress(r.Context(), before, limit)
	if err != nil {
		rt.engineError(w, r, "read egress ledger", err)
		return
	}
	page := map[string]any{"records": recs}
	if recs == nil {
		page["records"] = []any{}
	}
	if len(recs) == limit {
		page["next_before"] = recs[len(recs)-1].ID
	}
	WriteJSON(w, http.StatusOK, page)
}

func (rt *routes) budgets(w http.ResponseWriter, r *http.Request) {
	if rt.d.Budgets == nil {
		WriteError(w, http.StatusNotFound, "not_configured", "budgets are not available: remote fallback is not configured")
		return
	}
	rep, err := rt.d.Budgets.Budgets(r.Context())
	if err != nil {
		rt.engineError(w, r, "read budgets", err)
		return
	}
	if rep.Caps == nil {
		rep.Caps = []BudgetCap{}
	}
	if rep.Alerts == nil {
		rep.Alerts = []string{}
	}
	WriteJSON(w, http.StatusOK, rep)
}

func (rt *routes) residency(w http.ResponseWriter, r *http.Request) {
	if rt.d.Residency == nil {
		WriteError(w, http.StatusNotFound, "not_configured", "model residency is not available")
		return
	}
	ms, err := rt.d.Residency.LoadedModels(r.Context())
	if err != nil {
		rt.engineError(w, r, "read loaded models", err)
		return
	}
	if ms == nil {
		ms = []LoadedModel{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"models": ms})
}

func (rt *routes) link(w http.ResponseWriter, r *http.Request) {
	if rt.d.Link == nil {
		WriteJSON(w, http.StatusOK, LinkStatus{State: "disabled", Reason: "remote fallback is not configured"})
		return
	}
	st, err := rt.d.Link.Link(r.Context())
	if err != nil {
		rt.engineError(w, r, "read link state", err)
		return
	}
	WriteJSON(w, http.StatusOK, st)
}

// gpuHistory is GET /api/v1/history/gpu?minutes=N (1..1440, default 30).
func (rt *routes) gpuHistory(w http.ResponseWriter, r *http.Request) {
	if rt.d.History == nil {
		WriteError(w, http.StatusNotFound, "not_configured", "GPU history is not kept")
		return
	}
	minutes := 30
	if s := r.URL.Query().Get("minutes"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1440 {
			WriteError(w, http.StatusBadRequest, "bad_minutes", fmt.Sprintf("minutes is %q; use 1 to 1440", s))
			return
		}
		minutes = n
	}
	pts, err := rt.d.History.GPUHistory(r.Context(), rt.d.Now().Add(-time.Duration(minutes)*time.Minute), 360)
	if err != nil {
		rt.engineError(w, r, "read GPU history", err)
		return
	}
	if pts == nil {
		pts = []GPUPoint{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"points": pts})
}

// session tells the dashboard it is logged in (it is behind Handle).
func (rt *routes) session(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]any{"authenticated": true, "auth_required": rt.s.cfg.AuthRequired, "as": by(r)})
}

type loginBody struct {
	Token string `json:"token"`
}

// login checks the token and sets the dashboard's cookie: HttpOnly so
// scripts cannot read it, SameSite=Strict so no other site can make the
// browser send it, Secure when served over TLS.
func (rt *routes) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	var b loginBody
	if !decodeJSON(w, r, &b) {
		return
	}
	if rt.s.cfg.AuthRequired && !rt.s.token.Check(strings.TrimSpace(b.Token)) {
		// Slow down guessing; the token has 256 bits, this only calms logs.
		time.Sleep(200 * time.Millisecond)
		WriteError(w, http.StatusUnauthorized, "bad_token", "that token is not agentd's token — print it with `agentd token` on the appliance")
		return
	}
	if rt.s.cfg.AuthRequired {
		http.SetCookie(w, &http.Cookie{
			Name: SessionCookie, Value: strings.TrimSpace(b.Token), Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
			MaxAge: int((30 * 24 * time.Hour).Seconds()),
		})
	}
	WriteJSON(w, http.StatusOK, map[string]any{"authenticated": true})
}

func (rt *routes) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	WriteJSON(w, http.StatusOK, map[string]any{"authenticated": false})
}
