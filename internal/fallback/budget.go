package fallback

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
)

// Publisher receives the package's events as typed payloads (the event's
// type is the payload's); *events.Bus implements it.
type Publisher interface {
	Emit(runID string, p events.Payload) events.Event
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(runID string, p events.Payload)

// Emit implements Publisher.
func (f PublisherFunc) Emit(runID string, p events.Payload) events.Event {
	f(runID, p)
	return events.Event{Type: p.EventType(), RunID: runID}
}

type nopPublisher struct{}

func (nopPublisher) Emit(runID string, p events.Payload) events.Event {
	return events.Event{Type: p.EventType(), RunID: runID}
}

// Event types this package publishes beyond the budget's, as package
// events names them.
const (
	EventCapReached      = events.BudgetCapReached
	EventDeferredExpired = events.DeferredExpired
	EventDeferredDrained = events.DeferredDrained
)

// Cap names, as config spells them.
const (
	CapRunUSD     = "run_usd"
	CapDayUSD     = "day_usd"
	CapMonthUSD   = "month_usd"
	CapDayBytes   = "day_bytes"
	CapMonthBytes = "month_bytes"
)

// ErrCapReached is matched by every *CapError.
var ErrCapReached = errors.New("remote budget cap reached")

// CapError says which cap a reservation did not fit, and by how much.
type CapError struct {
	Cap      string // run_usd | day_usd | month_usd | day_bytes | month_bytes
	Period   string // the run id, day or month
	Spent    float64
	Reserved float64 // other reservations still open
	Request  float64 // this call's worst case
	Limit    float64
}

func (e *CapError) Error() string {
	f := func(v float64) string { return "$" + strconv.FormatFloat(v, 'f', 4, 64) }
	if e.Cap == CapDayBytes || e.Cap == CapMonthBytes {
		f = func(v float64) string { return strconv.FormatInt(int64(v), 10) + " bytes" }
	}
	return fmt.Sprintf("remote budget: fallback.caps.%s reached for %s (spent %s, reserved %s, this call up to %s, limit %s) — planning stays local",
		e.Cap, e.Period, f(e.Spent), f(e.Reserved), f(e.Request), f(e.Limit))
}

// Is makes errors.Is(err, ErrCapReached) true.
func (e *CapError) Is(target error) bool { return target == ErrCapReached }

// Budget enforces the hard caps by reservation: a call reserves its worst
// case before it is sent, inside one write transaction that sums what every
// window already holds, so no interleaving of concurrent calls can push
// spend past a cap.
//
// Crash safety: reservations still open when a process dies are marked
// orphaned at the next start (Recover) and keep counting at their worst case
// for good. Whether their request was answered and billed is unknowable, and
// counting them as spent is the only choice that keeps "spend never exceeds a
// cap" true; the price is some headroom lost until the window rolls over.
type Budget struct {
	store  *db.Store
	caps   config.CapsConfig
	alerts config.AlertsConfig
	prices map[string]config.PriceConfig
	loc    *time.Location
	pub    Publisher
	log    *slog.Logger
	client *http.Client
	// deliveries tracks webhook and command alerts in flight.
	deliveries sync.WaitGroup
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// BudgetOptions builds a Budget.
type BudgetOptions struct {
	Store     *db.Store
	Config    config.FallbackConfig // caps, alerts, prices, time zone
	Publisher Publisher
	Logger    *slog.Logger
	// HTTPClient posts alert webhooks; nil uses one with a 5 s timeout.
	HTTPClient *http.Client
	Now        func() time.Time
}

// NewBudget builds a Budget.
func NewBudget(o BudgetOptions) (*Budget, error) {
	tz := o.Config.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("fallback.time_zone %q: %w", tz, err)
	}
	b := &Budget{store: o.Store, caps: o.Config.Caps, alerts: o.Config.Alerts, prices: o.Config.Prices, loc: loc,
		pub: o.Publisher, log: o.Logger, client: o.HTTPClient, Now: o.Now}
	if b.pub == nil {
		b.pub = nopPublisher{}
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.log = b.log.With("component", "fallback.budget")
	if b.client == nil {
		b.client = &http.Client{Timeout: 5 * time.Second}
	}
	if b.Now == nil {
		b.Now = time.Now
	}
	return b, nil
}

// Recover marks reservations left open by a previous process as orphaned
// (counted at their worst case, see Budget). Call it once at start, before
// the first Reserve.
func (b *Budget) Recover(ctx context.Context) (int64, error) {
	n, err := b.store.OrphanReservations(ctx)
	if n > 0 {
		b.log.Warn("open reservations from a previous run kept at their worst case", "count", n)
	}
	return n, err
}

// nano rounds USD to billionths, the unit caps are compared in, so float
// sums cannot creep past a limit.
func nano(usd float64) int64 { return int64(math.Round(usd * 1e9)) }

func roundUSD(usd float64) float64 { return float64(nano(usd)) / 1e9 }

// Cost prices a call on model; ok is false when the model has no price.
func (b *Budget) Cost(model string, inputTokens, outputTokens int) (usd float64, ok bool) {
	p, ok := b.prices[model]
	if !ok {
		return 0, false
	}
	return roundUSD(float64(inputTokens)*p.InputPerMTok/1e6 + float64(outputTokens)*p.OutputPerMTok/1e6), true
}

// Reservation is an open hold on the budget; settle it with Commit or
// Release.
type Reservation struct {
	ID       string
	RunID    string
	Provider string
	Model    string
	Purpose  string
	Day      string
	Month    string
	USD      float64 // worst case
	Bytes    int64
}

// Windows names the day and month t falls in, in the configured zone.
func (b *Budget) Windows(t time.Time) (day, month string) {
	lt := t.In(b.loc)
	return lt.Format("2006-01-02"), lt.Format("2006-01")
}

// Reserve holds the worst case of a call — promptTokens at the input price
// plus maxTokens at the output price, and bytes — against the run, day and
// month caps, or returns a *CapError naming the cap it does not fit.
func (b *Budget) Reserve(ctx context.Context, runID, provider, model, purpose string, promptTokens, maxTokens int, bytes int64) (*Reservation, error) {
	usd, ok := b.Cost(model, promptTokens, maxTokens)
	if !ok {
		return nil, fmt.Errorf("remote budget: model %q has no price — add [fallback.prices.%q] so spend can be capped", model, model)
	}
	day, month := b.Windows(b.Now())
	r := &Reservation{ID: newID(), RunID: runID, Provider: provider, Model: model, Purpose: purpose,
		Day: day, Month: month, USD: usd, Bytes: bytes}
	err := b.store.Tx(ctx, func(tx *sql.Tx) error {
		run, d, m, err := db.BudgetWindowsTx(ctx, tx, runID, day, month)
		if err != nil {
			return err
		}
		if err := b.fits(r, run, d, m); err != nil {
			return err
		}
		return db.InsertReservationTx(ctx, tx, db.BudgetReservation{ID: r.ID, CreatedAt: b.Now(), RunID: runID,
			Provider: provider, Model: model, Purpose: purpose, Day: day, Month: month, ReservedUSD: usd, ReservedBytes: bytes})
	})
	if err != nil {
		var ce *CapError
		if errors.As(err, &ce) {
			b.log.Warn("remote call refused by cap", "run", runID, "cap", ce.Cap, "period", ce.Period,
				"spent", ce.Spent, "reserved", ce.Reserved, "request", ce.Request, "limit", ce.Limit)
			emit(b.pub, runID, events.BudgetCapReachedData(*ce))
			return nil, err
		}
		return nil, fmt.Errorf("reserve remote budget: %w", err)
	}
	return r, nil
}

// Check reports, without reserving, whether a call of this worst case would
// fit now: the router's question before it commits to a remote plan.
func (b *Budget) Check(ctx context.Context, runID string, usd float64, bytes int64) error {
	day, month := b.Windows(b.Now())
	run, d, m, err := b.store.BudgetWindows(ctx, runID, day, month)
	if err != nil {
		return err
	}
	return b.fits(&Reservation{RunID: runID, Day: day, Month: month, USD: usd, Bytes: bytes}, run, d, m)
}

func (b *Budget) fits(r *Reservation, run, d, m db.BudgetSpend) error {
	usdCaps := []struct {
		name, period string
		limit        float64
		s            db.BudgetSpend
	}{{CapRunUSD, r.RunID, b.caps.RunUSD, run}, {CapDayUSD, r.Day, b.caps.DayUSD, d}, {CapMonthUSD, r.Month, b.caps.MonthUSD, m}}
	for _, c := range usdCaps {
		if c.limit <= 0 || (c.name == CapRunUSD && r.RunID == "") {
			continue
		}
		if nano(c.s.SpentUSD)+nano(c.s.ReservedUSD)+nano(r.USD) > nano(c.limit) {
			return &CapError{Cap: c.name, Period: c.period, Spent: c.s.SpentUSD, Reserved: c.s.ReservedUSD, Request: r.USD, Limit: c.limit}
		}
	}
	byteCaps := []struct {
		name, period string
		limit        int64
		s            db.BudgetSpend
	}{{CapDayBytes, r.Day, int64(b.caps.DayBytes), d}, {CapMonthBytes, r.Month, int64(b.caps.MonthBytes), m}}
	for _, c := range byteCaps {
		if c.limit <= 0 {
			continue
		}
		if c.s.SpentBytes+c.s.ReservedBytes+r.Bytes > c.limit {
			return &CapError{Cap: c.name, Period: c.period, Spent: float64(c.s.SpentBytes), Reserved: float64(c.s.ReservedBytes),
				Request: float64(r.Bytes), Limit: float64(c.limit)}
		}
	}
	return nil
}

// Commit settles a reservation at what the call actually cost and moved,
// then raises any alert threshold the spend has crossed.
func (b *Budget) Commit(ctx context.Context, r *Reservation, usd float64, bytes int64) error {
	usd = roundUSD(usd)
	if usd > r.USD || bytes > r.Bytes {
		// A provider billing past max_tokens or more prompt tokens than the
		// body has bytes: the truth is recorded, the next reservation sees
		// it, and the gate suspends the provider (see Gate.PlanRemote).
		b.log.Warn("remote call cost more than its reserved worst case", "run", r.RunID,
			"reserved_usd", r.USD, "actual_usd", usd, "reserved_bytes", r.Bytes, "actual_bytes", bytes)
	}
	ok, err := b.store.SettleReservation(context.WithoutCancel(ctx), r.ID, db.ReservationCommitted, usd, bytes)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("commit reservation %s: it is not open", r.ID)
	}
	emit(b.pub, r.RunID, events.BudgetChangedData{USD: usd, Bytes: bytes, Model: r.Model,
		Caps: b.capsNow(context.WithoutCancel(ctx), r.RunID)})
	b.checkAlerts(context.WithoutCancel(ctx), r.RunID)
	return nil
}

// Release frees a reservation whose call cost nothing.
func (b *Budget) Release(ctx context.Context, r *Reservation) error {
	ok, err := b.store.SettleReservation(context.WithoutCancel(ctx), r.ID, db.ReservationReleased, 0, 0)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("release reservation %s: it is not open", r.ID)
	}
	return nil
}

// Alert kinds.
const (
	AlertThreshold = "threshold" // spend crossed a fraction of a cap
	AlertOverbill  = "overbill"  // a provider billed past a reservation and was suspended
)

// Alert is one crossed threshold, or a provider suspended for overbilling.
type Alert struct {
	Kind      string    `json:"kind"`
	Provider  string    `json:"provider,omitempty"` // overbill
	Reason    string    `json:"reason,omitempty"`   // overbill
	Cap       string    `json:"cap,omitempty"`
	Period    string    `json:"period"`
	Threshold float64   `json:"threshold"`
	Spent     float64   `json:"spent"`
	Limit     float64   `json:"limit"`
	Time      time.Time `json:"time"`
}

// capsNow is where spend stands against every configured cap, with the
// highest alert threshold (in percent) it has crossed, for budget.changed.
func (b *Budget) capsNow(ctx context.Context, runID string) []events.BudgetCapData {
	day, month := b.Windows(b.Now())
	run, d, m, err := b.store.BudgetWindows(ctx, runID, day, month)
	if err != nil {
		b.log.Error("budget: read spend", "err", err)
		return nil
	}
	var out []events.BudgetCapData
	for _, c := range []struct {
		name, period, unit     string
		limit, spent, reserved float64
	}{
		{CapRunUSD, "run", "usd", b.caps.RunUSD, run.SpentUSD, run.ReservedUSD},
		{CapDayUSD, "day", "usd", b.caps.DayUSD, d.SpentUSD, d.ReservedUSD},
		{CapMonthUSD, "month", "usd", b.caps.MonthUSD, m.SpentUSD, m.ReservedUSD},
		{CapDayBytes, "day", "bytes", float64(b.caps.DayBytes), float64(d.SpentBytes), float64(d.ReservedBytes)},
		{CapMonthBytes, "month", "bytes", float64(b.caps.MonthBytes), float64(m.SpentBytes), float64(m.ReservedBytes)},
	} {
		if c.limit <= 0 || (c.period == "run" && runID == "") {
			continue
		}
		alert := 0
		for _, t := range b.alerts.Thresholds {
			if c.spent >= t*c.limit-1e-12 {
				alert = max(alert, int(math.Round(t*100)))
			}
		}
		out = append(out, events.BudgetCapData{Name: c.name, Period: c.period, Unit: c.unit, Cap: c.limit,
			Spent: c.spent, Reserved: c.reserved, Alert: alert})
	}
	return out
}

func (b *Budget) checkAlerts(ctx context.Context, runID string) {
	if len(b.alerts.Thresholds) == 0 {
		return
	}
	day, month := b.Windows(b.Now())
	_, d, m, err := b.store.BudgetWindows(ctx, runID, day, month)
	if err != nil {
		b.log.Error("budget alerts: read spend", "err", err)
		return
	}
	thresholds := append([]float64(nil), b.alerts.Thresholds...)
	sort.Float64s(thresholds)
	for _, c := range []struct {
		name, period string
		spent, limit float64
	}{
		{CapDayUSD, day, d.SpentUSD, b.caps.DayUSD},
		{CapMonthUSD, month, m.SpentUSD, b.caps.MonthUSD},
		{CapDayBytes, day, float64(d.SpentBytes), float64(b.caps.DayBytes)},
		{CapMonthBytes, month, float64(m.SpentBytes), float64(b.caps.MonthBytes)},
	} {
		if c.limit <= 0 {
			continue
		}
		for _, t := range thresholds {
			if c.spent < t*c.limit-1e-12 {
				break
			}
			fired, err := b.store.InsertBudgetAlert(ctx, c.name, c.period, t)
			if err != nil {
				b.log.Error("budget alerts: record", "err", err)
				return
			}
			if fired {
				b.deliver(ctx, runID, Alert{Kind: AlertThreshold, Cap: c.name, Period: c.period, Threshold: t, Spent: c.spent, Limit: c.limit, Time: b.Now().UTC()})
			}
		}
	}
}

// deliver logs and publishes an alert at once, and posts it to the webhook
// and the command in the background, bounded by short timeouts, so that a
// slow receiver never holds up a plan.
func (b *Budget) deliver(ctx context.Context, runID string, a Alert) {
	b.log.Warn("remote budget alert", "kind", a.Kind, "provider", a.Provider, "reason", a.Reason, "cap", a.Cap, "period", a.Period, "threshold", a.Threshold, "spent", a.Spent, "limit", a.Limit)
	emit(b.pub, runID, events.BudgetAlertData(a))
	if b.alerts.Webhook == "" && len(b.alerts.Command) == 0 {
		return
	}
	body, _ := json.Marshal(a)
	b.deliveries.Add(1)
	go func() {
		defer b.deliveries.Done()
		b.notify(ctx, a, body)
	}()
}

// alertOverbill raises the alert for a provider suspended for billing past
// a reservation, through the same channels as the cap alerts.
func (b *Budget) alertOverbill(ctx context.Context, runID string, st ProviderState) {
	day, _ := b.Windows(b.Now())
	b.deliver(context.WithoutCancel(ctx), runID, Alert{Kind: AlertOverbill, Provider: st.Provider + "@" + st.Destination,
		Reason: st.Reason, Period: day, Spent: st.ActualUSD, Limit: st.ReservedUSD, Time: b.Now().UTC()})
}

// Wait returns when every alert delivery in flight has finished; call it at
// shutdown.
func (b *Budget) Wait() { b.deliveries.Wait() }

func (b *Budget) notify(ctx context.Context, a Alert, body []byte) {
	if b.alerts.Webhook != "" {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		req, err := http.NewRequestWithContext(wctx, http.MethodPost, b.alerts.Webhook, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			var resp *http.Response
			if resp, err = b.client.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					err = fmt.Errorf("HTTP %d", resp.StatusCode)
				}
			}
		}
		cancel()
		if err != nil {
			b.log.Error("budget alert webhook failed", "url", b.alerts.Webhook, "err", err)
		}
	}
	if len(b.alerts.Command) > 0 {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cmd := exec.CommandContext(cctx, b.alerts.Command[0], b.alerts.Command[1:]...)
		cmd.Stdin = bytes.NewReader(append(body, '\n'))
		cmd.Env = append(cmd.Environ(), "AGENTD_ALERT_KIND="+a.Kind, "AGENTD_ALERT_CAP="+a.Cap, "AGENTD_ALERT_PERIOD="+a.Period,
			"AGENTD_ALERT_THRESHOLD="+strconv.FormatFloat(a.Threshold, 'f', -1, 64))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.log.Error("budget alert command failed", "argv0", b.alerts.Command[0], "err", err, "output", string(out))
		}
		cancel()
	}
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
