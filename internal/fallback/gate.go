package fallback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/telemetry/genai"
)

// Errors PlanRemote returns before anything is sent. A *CapError (matching
// ErrCapReached) means the caller continues locally and marks the run
// degraded.
var (
	ErrDisabled  = errors.New("remote fallback is disabled (fallback.enabled = false)")
	ErrSensitive = errors.New("request is marked sensitive: it never leaves this machine")
	ErrLink      = errors.New("link does not allow a remote call")
)

// LinkError says why the link refused a call; it matches ErrLink.
type LinkError struct{ Reason string }

func (e *LinkError) Error() string        { return "remote call not made: " + e.Reason }
func (e *LinkError) Is(target error) bool { return target == ErrLink }

// Sizing of a call, in bytes and tokens, beyond what its body says.
const (
	// promptTokenOverhead covers what a provider adds to the prompt (chat
	// template, the tool-use preamble of forced tools). Prompt tokens are
	// reserved as the body's byte count plus this: a token is at least a
	// byte, so the reservation is a true worst case.
	promptTokenOverhead = 1024
	// Expected and worst response size per output token, plus the envelope.
	expectedBytesPerToken = 4
	worstBytesPerToken    = 12
	responseEnvelope      = 4096
)

// GateOptions builds a Gate.
type GateOptions struct {
	Config config.FallbackConfig
	Store  *db.Store
	// Provider overrides the configured one (tests, `agentd doctor`).
	Provider Provider
	// Link overrides a link monitor built from Config.Link; the daemon runs
	// the Link's Run.
	Link       *Link
	Publisher  Publisher
	Logger     *slog.Logger
	HTTPClient *http.Client // providers and alert webhooks
	Now        func() time.Time
	// Tracer records each remote call as a "chat <model>" span (nil: no
	// spans). Never with the request or reply text.
	Tracer trace.Tracer
}

// Gate is the remote planner behind every policy: it answers the router's
// question (may this plan go remote now?) and makes the call — redact,
// ledger, reserve, send, settle, restore.
type Gate struct {
	cfg      config.FallbackConfig
	provider Provider
	redactor *Redactor
	ledger   *Ledger
	budget   *Budget
	link     *Link
	finetune *Finetune
	pub      Publisher
	log      *slog.Logger
	// slots bounds remote calls in flight (fallback.max_in_flight): the
	// most a provider that overbills can overshoot a cap by, before its
	// suspension stops new calls, is that many calls.
	slots chan struct{}
	// susp is the provider's suspension; nil when there is no provider.
	susp   *suspension
	tracer trace.Tracer
}

// NewGate builds the gate and recovers what a previous process left open:
// its reservations are kept at their worst case (see Budget) and its
// unfinished ledger rows marked interrupted.
func NewGate(ctx context.Context, o GateOptions) (*Gate, error) {
	if o.Store == nil {
		return nil, errors.New("fallback gate: a store is required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Tracer == nil {
		o.Tracer = noop.NewTracerProvider().Tracer("")
	}
	if o.Publisher == nil {
		o.Publisher = nopPublisher{}
	}
	g := &Gate{cfg: o.Config, provider: o.Provider, link: o.Link, pub: o.Publisher, tracer: o.Tracer,
		log: o.Logger.With("component", "fallback")}
	var err error
	if g.redactor, err = NewRedactor(o.Config.Privacy); err != nil {
		return nil, err
	}
	if g.budget, err = NewBudget(BudgetOptions{Store: o.Store, Config: o.Config, Publisher: o.Publisher,
		Logger: o.Logger, HTTPClient: o.HTTPClient, Now: o.Now}); err != nil {
		return nil, err
	}
	if g.provider == nil && o.Config.Enabled {
		if g.provider, err = NewProvider(o.Config, ProviderOptions{Client: o.HTTPClient, Logger: o.Logger}); err != nil {
			return nil, err
		}
	}
	if g.link == nil {
		g.link = NewLink(LinkOptions{Config: o.Config.Link, Client: o.HTTPClient, Publisher: o.Publisher, Logger: o.Logger, Now: o.Now})
	}
	g.slots = make(chan struct{}, max(o.Config.MaxInFlight, 1))
	if g.provider != nil {
		now := o.Now
		if now == nil {
			now = time.Now
		}
		if g.susp, err = loadSuspension(ctx, o.Store, g.provider.Name(), g.provider.Destination(), now); err != nil {
			return nil, err
		}
		if st := g.susp.snapshot(); st.Suspended {
			g.log.Warn("remote provider is suspended: no remote call until a person re-enables it (`agentd fallback enable`)",
				"provider", st.Provider, "destination", st.Destination, "reason", st.Reason, "since", st.SuspendedAt)
		}
	}
	g.ledger = NewLedger(o.Store, o.Publisher)
	g.finetune = NewFinetune(o.Store)
	if _, err := g.budget.Recover(ctx); err != nil {
		return nil, err
	}
	if _, err := g.ledger.Recover(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

// Budget is the gate's budget, for the dashboard and `agentd budget`.
func (g *Gate) Budget() *Budget { return g.budget }

// Link is the gate's link monitor; the composition root runs its Run.
func (g *Gate) Link() *Link { return g.link }

// Ledger is the egress ledger.
func (g *Gate) Ledger() *Ledger { return g.ledger }

// Finetune is the fine-tuning candidate store.
func (g *Gate) Finetune() *Finetune { return g.finetune }

// ExportEgress writes the egress ledger (see Ledger.Export).
func (g *Gate) ExportEgress(ctx context.Context, w io.Writer, since time.Time, format string) error {
	return g.ledger.Export(ctx, w, since, format)
}

// ExportFinetune writes the fine-tuning candidates (see Finetune.Export).
func (g *Gate) ExportFinetune(ctx context.Context, w io.Writer) (int, error) {
	return g.finetune.Export(ctx, w)
}

// RemoteOnlyCost is what a call of these sizes would cost on the remote
// model, for the counterfactual the run records (0 when it has no price).
func (g *Gate) RemoteOnlyCost(promptTokens, outputTokens int) float64 {
	usd, _ := g.budget.Cost(g.cfg.Model, promptTokens, outputTokens)
	return usd
}

// PlanRequest is a planning step the router may send remote.
type PlanRequest struct {
	RunID        string
	Purpose      string // plan | replan | step; empty is plan
	SystemPrompt string
	UserRequest  string
	// Schema is the plan's JSON Schema, generated from the tool registry.
	// Its descriptions and titles are redacted; names, enums and patterns
	// are sent as they are, since the plan must match them.
	Schema    json.RawMessage
	Sensitive bool
	// The local planner's failed attempt, kept with the candidate.
	LocalPlan   string
	LocalErrors []string
}

// PlanUsage is what a remote plan cost and moved.
type PlanUsage struct {
	Provider     string         `json:"provider"`
	Model        string         `json:"model"`
	InputTokens  int            `json:"input_tokens"`
	OutputTokens int            `json:"output_tokens"`
	CostUSD      float64        `json:"cost_usd"`
	BytesOut     int64          `json:"bytes_out"`
	BytesIn      int64          `json:"bytes_in"`
	Duration     time.Duration  `json:"duration"`
	Redactions   map[string]int `json:"redactions"`
}

// prepared is a request redacted and encoded, ready to be weighed.
type prepared struct {
	session      *Session
	system, user string
	body         []byte
	promptTokens int
	worstUSD     float64
	expectedIn   int64
	worstIn      int64
}

// prepare refuses what may never go remote, then redacts, encodes and
// prices the request.
func (g *Gate) prepare(req PlanRequest) (*prepared, error) {
	if !g.cfg.Enabled || g.provider == nil {
		return nil, ErrDisabled
	}
	if req.Sensitive {
		return nil, ErrSensitive
	}
	p := &prepared{session: g.redactor.NewSession()}
	p.system = p.session.Redact(req.SystemPrompt)
	p.user = p.session.Redact(req.UserRequest)
	schema, err := p.session.RedactSchema(req.Schema)
	if err != nil {
		return nil, err
	}
	p.body, err = g.provider.Encode(Request{Model: g.cfg.Model, SystemPrompt: p.system, UserMessage: p.user,
		Schema: schema, MaxTokens: g.cfg.MaxTokens})
	if err != nil {
		return nil, fmt.Errorf("encode remote request: %w", err)
	}
	p.promptTokens = len(p.body) + promptTokenOverhead
	var ok bool
	if p.worstUSD, ok = g.budget.Cost(g.cfg.Model, p.promptTokens, g.cfg.MaxTokens); !ok {
		return nil, fmt.Errorf("remote model %q has no price — add [fallback.prices.%q]", g.cfg.Model, g.cfg.Model)
	}
	p.expectedIn = int64(g.cfg.MaxTokens*expectedBytesPerToken + responseEnvelope)
	p.worstIn = int64(g.cfg.MaxTokens*worstBytesPerToken + responseEnvelope)
	return p, nil
}

// Check answers the router: may this request be planned remotely now? It
// returns nil, or the very error PlanRemote would return before sending:
// ErrDisabled, ErrSensitive, *SuspendedError, *LinkError or *CapError, so
// that a refusal at routing and one at reservation read alike (Degrades
// tells which of them mark the run degraded). It reserves nothing.
func (g *Gate) Check(ctx context.Context, req PlanRequest) error {
	_, err := g.check(ctx, req)
	return err
}

// check is Check, with the link's reason for a yes.
func (g *Gate) check(ctx context.Context, req PlanRequest) (string, error) {
	p, err := g.prepare(req)
	if err != nil {
		return "", err
	}
	if err := g.susp.check(); err != nil {
		return "", err
	}
	ok, reason := g.link.Allow(int64(len(p.body)) + p.expectedIn)
	if !ok {
		return "", &LinkError{Reason: reason}
	}
	return reason, g.budget.Check(ctx, req.RunID, p.worstUSD, int64(len(p.body))+p.worstIn)
}

// AllowRemote is Check as a yes or no with a reason, for the router's
// RemoteGate. Callers that mark runs degraded use Check and Degrades.
func (g *Gate) AllowRemote(ctx context.Context, req PlanRequest) (bool, string) {
	reason, err := g.check(ctx, req)
	if err != nil {
		var le *LinkError
		if errors.As(err, &le) {
			return false, le.Reason
		}
		return false, err.Error()
	}
	return true, reason
}

// PlanRemote plans req on the remote model: redact, check the link, reserve
// the worst case, write the ledger, send, settle, and map the placeholders
// in the plan back to the real values. Errors: ErrDisabled, ErrSensitive,
// *SuspendedError, *LinkError, *CapError (continue locally; Degrades says
// whether the run is marked degraded; a capped request is kept as a
// fine-tuning candidate), *RemoteError, or ctx's error while waiting for
// one of fallback.max_in_flight slots.
//
// A provider whose reported usage breaks the reservation (more output
// tokens than max_tokens, or a cost above the worst case) is billed what
// it reported, raises an overbill alert and is suspended; calls already in
// flight finish, no new one starts.
func (g *Gate) PlanRemote(ctx context.Context, req PlanRequest) (json.RawMessage, PlanUsage, error) {
	ctx, span := g.tracer.Start(ctx, genai.OpChat+" "+g.cfg.Model, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(genai.OperationName.String(genai.OpChat), genai.ProviderName.String(g.cfg.Provider),
			genai.RequestModel.String(g.cfg.Model), genai.Purpose.String(string(req.Purpose)), genai.RunID.String(req.RunID),
			attribute.Bool("agentd.remote", true)))
	plan, usage, err := g.planRemote(ctx, req)
	span.SetAttributes(genai.UsageInputTokens.Int(usage.InputTokens), genai.UsageOutputTokens.Int(usage.OutputTokens),
		attribute.Float64("agentd.cost_usd", usage.CostUSD), attribute.Int64("agentd.bytes_out", usage.BytesOut),
		attribute.Int64("agentd.bytes_in", usage.BytesIn))
	if err != nil {
		// The error's type, not its text: a remote error may quote the
		// request.
		span.SetAttributes(genai.ErrorType.String(fmt.Sprintf("%T", err)))
		span.SetStatus(codes.Error, fmt.Sprintf("%T", err))
	}
	span.End()
	return plan, usage, err
}

func (g *Gate) planRemote(ctx context.Context, req PlanRequest) (json.RawMessage, PlanUsage, error) {
	usage := PlanUsage{Model: g.cfg.Model}
	if req.Purpose == "" {
		req.Purpose = PurposePlan
	}
	p, err := g.prepare(req)
	if err != nil {
		return nil, usage, err
	}
	usage.Provider = g.provider.Name()
	usage.Redactions = p.session.Report()
	usage.BytesOut = int64(len(p.body))
	// The suspension is checked while holding a slot, so that every call
	// that can still overbill after the first one is one of the slots.
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, usage, fmt.Errorf("wait for a remote call slot (fallback.max_in_flight = %d): %w", cap(g.slots), ctx.Err())
	}
	defer func() { <-g.slots }()
	if err := g.susp.check(); err != nil {
		return nil, usage, err
	}
	ok, trial, reason := g.link.Admit(usage.BytesOut + p.expectedIn)
	if !ok {
		return nil, usage, &LinkError{Reason: reason}
	}
	res, err := g.budget.Reserve(ctx, req.RunID, usage.Provider, g.cfg.Model, req.Purpose, p.promptTokens,
		g.cfg.MaxTokens, usage.BytesOut+p.worstIn)
	if err != nil {
		if trial {
			g.link.Abandon()
		}
		if errors.Is(err, ErrCapReached) {
			g.keep(ctx, req, p, "", ReasonCapReached)
		}
		return nil, usage, err
	}
	id, err := g.ledger.Begin(ctx, Egress{RunID: req.RunID, Destination: g.provider.Destination(), Provider: usage.Provider,
		Model: g.cfg.Model, Purpose: req.Purpose, Body: p.body, Redactions: usage.Redactions})
	if err != nil {
		if trial {
			g.link.Abandon()
		}
		g.settle(ctx, res, g.budget.Release(ctx, res))
		return nil, usage, err
	}
	sendCtx := ctx
	if t := g.cfg.Timeout.D(); t > 0 {
		var cancel context.CancelFunc
		sendCtx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	start := time.Now()
	resp, err := g.provider.Send(sendCtx, p.body)
	usage.Duration = time.Since(start)
	usage.BytesIn = resp.BytesIn
	usage.InputTokens, usage.OutputTokens = resp.Usage.InputTokens, resp.Usage.OutputTokens
	g.observe(ctx, resp, err, trial)
	if err != nil {
		var re *RemoteError
		isRemote := errors.As(err, &re)
		switch {
		case isRemote && !re.Sent:
			_ = g.ledger.Finish(ctx, id, 0, "unsent")
			g.settle(ctx, res, g.budget.Release(ctx, res))
		case isRemote && (re.Status != 0 || re.Kind == KindResponse):
			// An answer came back (an error status or an unusable body): bill
			// what it reports, which is nothing for an error status.
			_ = g.ledger.Finish(ctx, id, resp.BytesIn, "failed")
			usage.CostUSD, _ = g.budget.Cost(g.cfg.Model, usage.InputTokens, usage.OutputTokens)
			g.commit(ctx, res, resp.Usage, usage.CostUSD, usage.BytesOut+resp.BytesIn)
		default:
			// Sent, and no answer (timeout, reset, an error we cannot
			// classify): the remote may have run and billed it.
			_ = g.ledger.Finish(ctx, id, resp.BytesIn, "failed")
			usage.CostUSD = res.USD
			g.settle(ctx, res, g.budget.Commit(ctx, res, res.USD, usage.BytesOut+resp.BytesIn))
		}
		g.log.Warn("remote plan failed", "run", req.RunID, "provider", usage.Provider, "model", g.cfg.Model, "err", err)
		return nil, usage, err
	}
	usage.CostUSD, _ = g.budget.Cost(g.cfg.Model, usage.InputTokens, usage.OutputTokens)
	g.commit(ctx, res, resp.Usage, usage.CostUSD, usage.BytesOut+resp.BytesIn)
	_ = g.ledger.Finish(ctx, id, resp.BytesIn, "ok")
	plan, err := p.session.RestoreJSON([]byte(resp.Content))
	if err != nil {
		return nil, usage, &RemoteError{Provider: usage.Provider, Kind: KindResponse, Message: "the remote plan is not valid JSON", Sent: true, Err: err}
	}
	g.keep(ctx, req, p, resp.Content, ReasonRemotePlan)
	g.log.Info("remote plan", "run", req.RunID, "provider", usage.Provider, "model", g.cfg.Model,
		"bytes_out", usage.BytesOut, "bytes_in", usage.BytesIn, "cost_usd", usage.CostUSD,
		"redactions", countsString(usage.Redactions), "duration", usage.Duration)
	return plan, usage, nil
}

func (g *Gate) settle(ctx context.Context, r *Reservation, err error) {
	if err != nil {
		g.log.Error("settle remote budget reservation", "run", r.RunID, "reservation", r.ID, "err", err)
	}
}

// commit settles a call at what the provider reported, and suspends the
// provider when that breaks the reservation.
func (g *Gate) commit(ctx context.Context, r *Reservation, u Usage, usd float64, bytes int64) {
	g.settle(ctx, r, g.budget.Commit(ctx, r, usd, bytes))
	why := overbilled(u, g.cfg.MaxTokens, r.USD, usd)
	if why == "" {
		return
	}
	st, first, err := g.susp.suspend(ctx, why, r.RunID, r.USD, usd)
	if err != nil {
		g.log.Error("suspend overbilling remote provider", "provider", st.Provider, "err", err)
	}
	if !first {
		return
	}
	g.log.Error("remote provider billed past its reservation: suspended until a person re-enables it (`agentd fallback enable`)",
		"provider", st.Provider, "destination", st.Destination, "run", r.RunID, "reason", why,
		"reserved_usd", r.USD, "actual_usd", usd)
	emit(g.pub, r.RunID, events.ProviderSuspendedData(st))
	g.budget.alertOverbill(ctx, r.RunID, st)
}

// ProviderState reports the provider's suspension and calls in flight;
// ErrDisabled when fallback has no provider.
func (g *Gate) ProviderState() (ProviderState, error) {
	if g.susp == nil {
		return ProviderState{}, ErrDisabled
	}
	st := g.susp.snapshot()
	st.Model, st.InFlight, st.MaxInFlight = g.cfg.Model, len(g.slots), cap(g.slots)
	return st, nil
}

// EnableProvider lifts a suspension; by names who did (api, dashboard,
// cli). Enabling a provider that is not suspended changes nothing.
func (g *Gate) EnableProvider(ctx context.Context, by string) (ProviderState, error) {
	if g.susp == nil {
		return ProviderState{}, ErrDisabled
	}
	st, changed, err := g.susp.enable(ctx, by)
	if err != nil {
		return st, err
	}
	if changed {
		g.log.Warn("remote provider re-enabled", "provider", st.Provider, "destination", st.Destination, "by", by,
			"was_suspended_for", st.Reason)
		emit(g.pub, "", events.ProviderEnabledData(st))
	}
	return g.ProviderState()
}

// observe feeds a real call to the link monitor; trial says the call was
// an offline link's half-open trial.
func (g *Gate) observe(ctx context.Context, resp Response, err error, trial bool) {
	if ctx.Err() != nil {
		if trial {
			g.link.Abandon()
		}
		return // the caller gave up; that says nothing about the link
	}
	var re *RemoteError
	if err != nil && errors.As(err, &re) && re.Status == 0 && re.Kind == KindTransient {
		g.link.Observe(Observation{Failed: true})
		return
	}
	g.link.Observe(Observation{RTT: resp.Timing.Connect, Bytes: resp.BytesIn, Transfer: resp.Timing.Download})
}

// keep stores the redacted request as a fine-tuning candidate.
func (g *Gate) keep(ctx context.Context, req PlanRequest, p *prepared, remotePlan, reason string) {
	local := p.session.Redact(req.LocalPlan)
	errs := make([]string, len(req.LocalErrors))
	for i, e := range req.LocalErrors {
		errs[i] = p.session.Redact(e)
	}
	c := db.FinetuneCandidate{RunID: req.RunID, SystemPrompt: p.system, Request: p.user, LocalPlan: local,
		LocalErrors: errs, RemotePlan: remotePlan, Provider: g.provider.Name(), Model: g.cfg.Model, Reason: reason}
	if err := g.finetune.Add(ctx, c); err != nil {
		g.log.Error("keep fine-tuning candidate", "run", req.RunID, "err", err)
	}
}
