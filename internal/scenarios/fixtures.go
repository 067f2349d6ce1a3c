package scenarios

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/tools"
)

// Fixture tools stand in for the APIs and databases of the users' sites:
// deterministic, small realistic datasets, and a simulated latency (the
// round trip to a weather service over a satellite link, a warehouse
// database) scaled by the same TimeScale as the simulated models, so that
// running independent tool steps in parallel matters as it does for real.

//go:embed testdata/docs/*.md
var docsFS embed.FS

// Options shape the fixture tools.
type Options struct {
	// TimeScale maps each tool's simulated latency to a real sleep, like
	// ollamasim.Config.TimeScale (0 = instant).
	TimeScale float64
}

// Latencies of the fixture tools, in simulated time.
const (
	remoteAPILatency = 1200 * time.Millisecond // a web API over a constrained link
	localDBLatency   = 150 * time.Millisecond  // a site database
	docsLatency      = 300 * time.Millisecond  // a local document search
)

// fixture is one deterministic tool.
type fixture struct {
	spec    tools.Spec
	latency time.Duration
	scale   float64
	call    func(args map[string]any) (any, error)
	// calls counts invocations (tests check a denied step never ran).
	mu    sync.Mutex
	calls int
}

var _ tools.Tool = (*fixture)(nil)

func (f *fixture) Spec() tools.Spec { return f.spec }

func (f *fixture) Call(ctx context.Context, raw json.RawMessage) (tools.Result, error) {
	var args map[string]any
	if err := json.Unmarshal(raw, &args); err != nil {
		return tools.Result{}, fmt.Errorf("%w: %v", tools.ErrInvalidArgs, err)
	}
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if d := time.Duration(float64(f.latency) * f.scale); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return tools.Result{}, ctx.Err()
		}
	}
	v, err := f.call(args)
	if err != nil {
		return tools.Result{}, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return tools.Result{}, err
	}
	return tools.Result{Output: b}, nil
}

// Calls reports how many times the tool ran.
func (f *fixture) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// CallCounter is implemented by every fixture tool.
type CallCounter interface{ Calls() int }

func schema(s string) json.RawMessage { return json.RawMessage(s) }

// Tools returns a fresh set of the fixture tools (their call counters start
// at zero).
func Tools(o Options) []tools.Tool {
	mk := func(spec tools.Spec, latency time.Duration, call func(map[string]any) (any, error)) *fixture {
		if spec.Concurrency == 0 {
			spec.Concurrency = 16
		}
		spec.Timeout = 30 * time.Second
		return &fixture{spec: spec, latency: latency, scale: o.TimeScale, call: call}
	}
	cityArgs := schema(`{"type":"object","properties":{"city":{"type":"string","minLength":2,"description":"City and state, like \"Austin, TX\""}},"required":["city"],"additionalProperties":false}`)
	return []tools.Tool{
		mk(tools.Spec{Name: "get_climate", Idempotent: true, ArgsSchema: cityArgs,
			Description: "Climate normals (1991-2020) of a US city: July and January mean temperature in C, annual rainfall in mm, Koppen class."},
			remoteAPILatency, climate),
		mk(tools.Spec{Name: "get_population", Idempotent: true, ArgsSchema: cityArgs,
			Description: "Population of a US city (2023 census estimate) and of its metro area."},
			remoteAPILatency, population),
		mk(tools.Spec{Name: "validate_order", Idempotent: true,
			ArgsSchema:  schema(`{"type":"object","properties":{"order_id":{"type":"string","minLength":1}},"required":["order_id"],"additionalProperties":false}`),
			Description: "Validate an order by id: customer, destination and line items (sku, qty)."},
			localDBLatency, validateOrder),
		mk(tools.Spec{Name: "check_inventory", Idempotent: true,
			ArgsSchema:  schema(`{"type":"object","properties":{"items":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string"},"qty":{"type":"integer","minimum":1}},"required":["sku","qty"]}}},"required":["items"],"additionalProperties":false}`),
			Description: "Check stock for order lines; returns per-line availability, unit price and the total shipping weight in kg."},
			localDBLatency, checkInventory),
		mk(tools.Spec{Name: "calculate_shipping", Idempotent: true,
			ArgsSchema:  schema(`{"type":"object","properties":{"weight_kg":{"type":"number","exclusiveMinimum":0},"destination":{"type":"string","minLength":2}},"required":["weight_kg","destination"],"additionalProperties":false}`),
			Description: "Quote freight for a shipment: carrier, cost in USD and transit days."},
			remoteAPILatency, calculateShipping),
		mk(tools.Spec{Name: "confirm_order", Idempotent: false, Approval: tools.ApprovalRequired, Concurrency: 1,
			ArgsSchema:  schema(`{"type":"object","properties":{"order_id":{"type":"string","minLength":1},"shipping_usd":{"type":"number","minimum":0},"goods_usd":{"type":"number","minimum":0}},"required":["order_id","shipping_usd","goods_usd"],"additionalProperties":false}`),
			Description: "Confirm an order with the supplier and charge the customer. Irreversible."},
			localDBLatency, confirmOrder),
		mk(tools.Spec{Name: "search_notes", Idempotent: true,
			ArgsSchema:  schema(`{"type":"object","properties":{"query":{"type":"string","minLength":2},"top_k":{"type":"integer","minimum":1,"maximum":5}},"required":["query"],"additionalProperties":false}`),
			Description: "Search the clinic's reference notes (markdown documents); returns the best passages with their document names."},
			docsLatency, searchNotes),
		mk(tools.Spec{Name: "station_forecast", Idempotent: true,
			ArgsSchema:  schema(`{"type":"object","properties":{"station":{"type":"string","minLength":2}},"required":["station"],"additionalProperties":false}`),
			Description: "Wind forecast from a named automatic weather station (AWS) for the next three days."},
			remoteAPILatency, stationForecast),
		mk(tools.Spec{Name: "regional_forecast", Idempotent: true,
			ArgsSchema:  schema(`{"type":"object","properties":{"region":{"type":"string","minLength":2},"day":{"type":"string","minLength":3}},"required":["region","day"],"additionalProperties":false}`),
			Description: "Marine forecast for a sea region and day: wind, gusts and wave height."},
			remoteAPILatency, regionalForecast),
		mk(tools.Spec{Name: "tide_table", Idempotent: true,
			ArgsSchema:  schema(`{"type":"object","properties":{"harbour":{"type":"string","minLength":2},"day":{"type":"string","minLength":3}},"required":["harbour","day"],"additionalProperties":false}`),
			Description: "High and low tide times and heights for a harbour on a day."},
			localDBLatency, tideTable),
		mk(tools.Spec{Name: "list_low_stock", Idempotent: true,
			ArgsSchema:  schema(`{"type":"object","properties":{"warehouse":{"type":"string","minLength":1}},"required":["warehouse"],"additionalProperties":false}`),
			Description: "Items of a warehouse at or below their reorder point, with reorder quantity and unit cost."},
			localDBLatency, lowStock),
		mk(tools.Spec{Name: "supplier_lead_times", Idempotent: true,
			ArgsSchema:  schema(`{"type":"object","properties":{"warehouse":{"type":"string","minLength":1}},"required":["warehouse"],"additionalProperties":false}`),
			Description: "Supplier lead times in days for the items a warehouse stocks."},
			remoteAPILatency, leadTimes),
	}
}

// Registry returns a factory for daemon.Options.Tools: the built-in tools
// from config (calc, now, ...) plus the fixture tools.
func Registry(o Options) func(config.ToolsConfig, tools.Deps) (*tools.Registry, error) {
	return func(cfg config.ToolsConfig, deps tools.Deps) (*tools.Registry, error) {
		return NewRegistry(cfg, deps, Tools(o))
	}
}

// NewRegistry builds the registry from config and adds the given fixtures.
func NewRegistry(cfg config.ToolsConfig, deps tools.Deps, fixtures []tools.Tool) (*tools.Registry, error) {
	r, err := tools.NewFromConfig(cfg, deps)
	if err != nil {
		return nil, err
	}
	for _, t := range fixtures {
		if err := r.Register(t); err != nil {
			_ = r.Close()
			return nil, fmt.Errorf("scenario fixture: %w", err)
		}
	}
	return r, nil
}

// --- datasets -------------------------------------------------------------

type cityRecord struct {
	Name                string
	JulyMeanC, JanMeanC float64
	RainMM              int
	Koppen              string
	Population, Metro   int
}

var cities = []cityRecord{
	{"Austin, TX", 29.6, 11.0, 870, "Cfa (humid subtropical)", 979882, 2473275},
	{"San Antonio, TX", 29.9, 11.4, 810, "Cfa (humid subtropical)", 1495295, 2655342},
	{"Dallas, TX", 30.1, 8.6, 955, "Cfa (humid subtropical)", 1302868, 7943685},
	{"Phoenix, AZ", 34.9, 12.8, 183, "BWh (hot desert)", 1650070, 5070110},
	{"Denver, CO", 23.9, -0.5, 370, "BSk (cold semi-arid)", 716577, 2985871},
	{"Houston, TX", 29.6, 12.1, 1264, "Cfa (humid subtropical)", 2314157, 7340118},
}

func findCity(args map[string]any) (cityRecord, error) {
	q, _ := args["city"].(string)
	key := strings.ToLower(strings.TrimSpace(strings.SplitN(q, ",", 2)[0]))
	for _, c := range cities {
		if strings.ToLower(strings.SplitN(c.Name, ",", 2)[0]) == key {
			return c, nil
		}
	}
	names := make([]string, len(cities))
	for i, c := range cities {
		names[i] = c.Name
	}
	return cityRecord{}, fmt.Errorf("%w: no record for city %q (known: %s)", tools.ErrFailed, q, strings.Join(names, "; "))
}

func climate(args map[string]any) (any, error) {
	c, err := findCity(args)
	if err != nil {
		return nil, err
	}
	return map[string]any{"city": c.Name, "july_mean_c": c.JulyMeanC, "jan_mean_c": c.JanMeanC,
		"annual_rain_mm": c.RainMM, "koppen": c.Koppen}, nil
}

func population(args map[string]any) (any, error) {
	c, err := findCity(args)
	if err != nil {
		return nil, err
	}
	return map[string]any{"city": c.Name, "population": c.Population, "metro_population": c.Metro, "year": 2023}, nil
}

type product struct {
	SKU        string
	Name       string
	UnitKG     float64
	UnitUSD    float64
	InStock    int
	LeadDays   int
	OnHand     int
	ReorderPt  int
	ReorderQty int
}

var catalog = map[string]product{
	"VAX-FRIDGE-SDD": {SKU: "VAX-FRIDGE-SDD", Name: "Solar direct-drive vaccine refrigerator", UnitKG: 52.0, UnitUSD: 4890.00, InStock: 3},
	"TEMP-LOGGER":    {SKU: "TEMP-LOGGER", Name: "30-day temperature recorder", UnitKG: 0.35, UnitUSD: 65.00, InStock: 40},
}

func validateOrder(args map[string]any) (any, error) {
	id, _ := args["order_id"].(string)
	if !strings.EqualFold(strings.TrimSpace(id), "A-1042") {
		return nil, fmt.Errorf("%w: order %q not found", tools.ErrFailed, id)
	}
	return map[string]any{"order_id": "A-1042", "valid": true, "customer": "Harbor Clinic",
		"destination": "Tromsø, NO", "items": []map[string]any{{"sku": "VAX-FRIDGE-SDD", "qty": 1}, {"sku": "TEMP-LOGGER", "qty": 4}}}, nil
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func checkInventory(args map[string]any) (any, error) {
	items, _ := args["items"].([]any)
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: no order lines to check", tools.ErrInvalidArgs)
	}
	var lines []map[string]any
	weight, goods, all := 0.0, 0.0, true
	for _, it := range items {
		m, _ := it.(map[string]any)
		sku, _ := m["sku"].(string)
		qty, _ := m["qty"].(float64)
		p, ok := catalog[sku]
		if !ok {
			return nil, fmt.Errorf("%w: unknown sku %q", tools.ErrFailed, sku)
		}
		in := p.InStock >= int(qty)
		all = all && in
		weight += p.UnitKG * qty
		goods += p.UnitUSD * qty
		lines = append(lines, map[string]any{"sku": sku, "qty": int(qty), "in_stock": in, "unit_usd": p.UnitUSD, "unit_weight_kg": p.UnitKG})
	}
	return map[string]any{"all_in_stock": all, "lines": lines, "total_weight_kg": round2(weight), "goods_usd": round2(goods)}, nil
}

func calculateShipping(args map[string]any) (any, error) {
	w, _ := args["weight_kg"].(float64)
	dest, _ := args["destination"].(string)
	days := 5
	if strings.HasSuffix(strings.TrimSpace(dest), "US") {
		days = 3
	}
	return map[string]any{"carrier": "Nordic Freight", "weight_kg": w, "destination": dest,
		"cost_usd": round2(35 + 3.1*w), "transit_days": days}, nil
}

func confirmOrder(args map[string]any) (any, error) {
	id, _ := args["order_id"].(string)
	ship, _ := args["shipping_usd"].(float64)
	goods, _ := args["goods_usd"].(float64)
	return map[string]any{"order_id": id, "status": "confirmed", "confirmation": "CNF-" + strings.ReplaceAll(id, "-", "") + "-7731",
		"total_usd": round2(goods + ship)}, nil
}

type passage struct {
	Doc   string `json:"doc"`
	Score int    `json:"score"`
	Text  string `json:"text"`
}

func searchNotes(args map[string]any) (any, error) {
	q, _ := args["query"].(string)
	k := 3
	if v, ok := args["top_k"].(float64); ok && v >= 1 {
		k = int(v)
	}
	terms := strings.Fields(strings.ToLower(q))
	entries, err := fs.Glob(docsFS, "testdata/docs/*.md")
	if err != nil {
		return nil, err
	}
	var hits []passage
	for _, name := range entries {
		b, err := docsFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		text := strings.ToLower(string(b))
		score := 0
		for _, t := range terms {
			if len(t) > 2 {
				score += strings.Count(text, t)
			}
		}
		if score > 0 {
			body := string(b)
			if i := strings.Index(body, "\n\n"); i >= 0 {
				body = body[i+2:]
			}
			hits = append(hits, passage{Doc: strings.TrimPrefix(name, "testdata/docs/"), Score: score,
				Text: strings.Join(strings.Fields(body), " ")})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].Score != hits[j].Score {
			return hits[i].Score > hits[j].Score
		}
		return hits[i].Doc < hits[j].Doc
	})
	if len(hits) > k {
		hits = hits[:k]
	}
	return map[string]any{"query": q, "passages": hits}, nil
}

func stationForecast(args map[string]any) (any, error) {
	st, _ := args["station"].(string)
	return nil, fmt.Errorf("%w: station %s has not reported since Monday 06:00 UTC (sensor offline); use the regional marine forecast", tools.ErrFailed, st)
}

func regionalForecast(args map[string]any) (any, error) {
	region, _ := args["region"].(string)
	day, _ := args["day"].(string)
	return map[string]any{"region": region, "day": day, "wind_kt": 12, "max_gust_kt": 18, "wave_m": 1.2, "visibility": "good"}, nil
}

func tideTable(args map[string]any) (any, error) {
	h, _ := args["harbour"].(string)
	day, _ := args["day"].(string)
	return map[string]any{"harbour": h, "day": day, "high_tide": "10:40", "high_m": 2.9, "low_tide": "16:55", "low_m": 0.6}, nil
}

var w2 = []product{
	{SKU: "GLV-NIT-M", Name: "Nitrile gloves M (box of 100)", UnitUSD: 7.50, OnHand: 12, ReorderPt: 40, ReorderQty: 60, LeadDays: 4},
	{SKU: "SYR-5ML", Name: "Syringe 5 ml", UnitUSD: 0.12, OnHand: 150, ReorderPt: 500, ReorderQty: 1000, LeadDays: 6},
	{SKU: "ORS-SACHET", Name: "Oral rehydration salts sachet", UnitUSD: 0.35, OnHand: 80, ReorderPt: 200, ReorderQty: 200, LeadDays: 9},
}

func lowStock(args map[string]any) (any, error) {
	wh, _ := args["warehouse"].(string)
	if !strings.EqualFold(strings.TrimSpace(wh), "W2") {
		return map[string]any{"warehouse": wh, "items": []any{}}, nil
	}
	var items []map[string]any
	var skus []string
	for _, p := range w2 {
		items = append(items, map[string]any{"sku": p.SKU, "name": p.Name, "on_hand": p.OnHand, "reorder_point": p.ReorderPt,
			"reorder_qty": p.ReorderQty, "unit_cost_usd": p.UnitUSD})
		skus = append(skus, p.SKU)
	}
	return map[string]any{"warehouse": "W2", "items": items, "skus": skus}, nil
}

func leadTimes(args map[string]any) (any, error) {
	wh, _ := args["warehouse"].(string)
	lt := map[string]int{}
	for _, p := range w2 {
		lt[p.SKU] = p.LeadDays
	}
	return map[string]any{"warehouse": wh, "lead_times": lt}, nil
}
