package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/tools"
)

// The plan cache workload's fixture tools: a warehouse, an FX desk, an
// order system, a weather service, a freight broker, a staff directory and
// a ticket desk. Every output is computed from the arguments (a hash where
// a real system would look something up), so the same request always gets
// the same answer and a request served with another request's arguments
// gets a different one, which is how the benchmark catches a wrong
// template. Argument schemas are as strict as a real API's (enums for
// warehouses, currencies and units, patterns for ids), since a cache may
// lean on them to refuse a value of the wrong kind.

// Latencies of the workload tools, in simulated time.
const (
	siteDBLatency   = 150 * time.Millisecond // the site's own database
	serviceLatency  = 600 * time.Millisecond // an external service over the site's link
	currencyLatency = 300 * time.Millisecond // a cached FX rate feed
)

// Entity pools. The tools know exactly these; anything else is "not found",
// as a real system would say.
var (
	warehouses = []string{"east", "west", "north", "south", "central"}
	fxPerUSD   = map[string]float64{"USD": 1, "EUR": 0.92, "GBP": 0.79, "JPY": 151.3, "CHF": 0.88,
		"NOK": 10.6, "SEK": 10.4, "CAD": 1.36, "AUD": 1.52, "INR": 83.2}
	unitFactors = map[[2]string]float64{
		{"kilometers", "miles"}: 0.621371, {"miles", "kilometers"}: 1.609344,
		{"kilograms", "pounds"}: 2.204623, {"pounds", "kilograms"}: 0.453592,
		{"liters", "gallons"}: 0.264172, {"gallons", "liters"}: 3.785412,
	}
	weatherCities = []string{"Oslo", "Paris", "Lagos", "Nairobi", "Lima", "Hanoi", "Perth", "Quito", "Reykjavik",
		"Cape Town", "Buenos Aires", "Kuala Lumpur", "Mexico City", "Rotterdam", "Mombasa", "Santos", "Busan", "Durban", "Hamburg"}
	ports       = []string{"Rotterdam", "Lagos", "Mombasa", "Santos", "Busan", "Durban", "Hamburg", "Cape Town", "Buenos Aires"}
	conditions  = []string{"clear", "partly cloudy", "overcast", "light rain", "heavy rain", "fog", "windy"}
	carriers    = []string{"Maersk", "MSC", "CMA CGM", "Hapag-Lloyd", "ONE"}
	parcelCos   = []string{"DHL", "UPS", "FedEx", "PostNord"}
	orderStates = []string{"processing", "shipped", "in transit", "delivered"}
	customers   = []string{"Harbor Clinic", "Nordlys Fisheries", "Kivu Mining", "Andes Solar", "Baltic Freight"}
	components  = []string{"billing", "login", "reports", "inventory", "shipping"}
	priorities  = []string{"low", "normal", "high", "urgent"}
)

// employee is one entry of the staff directory.
type employee struct {
	Name, Title, Department, Extension, Manager, Office string
}

var staff = []employee{
	{"Ana Silva", "operations director", "Operations", "4100", "", "Rotterdam"},
	{"Kofi Mensah", "logistics manager", "Logistics", "4210", "Ana Silva", "Lagos"},
	{"Priya Nair", "finance manager", "Finance", "4320", "Ana Silva", "Rotterdam"},
	{"Lars Berg", "warehouse lead", "Logistics", "4211", "Kofi Mensah", "Hamburg"},
	{"Mei Chen", "buyer", "Procurement", "4410", "Priya Nair", "Busan"},
	{"Omar Haddad", "dispatcher", "Logistics", "4212", "Kofi Mensah", "Mombasa"},
	{"Sofia Rossi", "accountant", "Finance", "4321", "Priya Nair", "Rotterdam"},
	{"Tomas Novak", "fleet engineer", "Maintenance", "4510", "Ana Silva", "Hamburg"},
	{"Aiko Sato", "support engineer", "Support", "4610", "Tomas Novak", "Busan"},
	{"Jonas Weber", "support lead", "Support", "4600", "Tomas Novak", "Hamburg"},
	{"Nia Okafor", "customs officer", "Logistics", "4213", "Kofi Mensah", "Lagos"},
	{"Diego Ramos", "site manager", "Operations", "4110", "Ana Silva", "Santos"},
}

// hashOf is the fixtures' stand-in for a lookup: a stable number for the
// arguments.
func hashOf(parts ...string) uint32 {
	h := fnv.New32a()
	for _, p := range parts {
		_, _ = h.Write([]byte(strings.ToLower(strings.TrimSpace(p))))
		_, _ = h.Write([]byte{0})
	}
	return h.Sum32()
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func strArg(args map[string]any, key string) string {
	s, _ := args[key].(string)
	return strings.TrimSpace(s)
}

func numArg(args map[string]any, key string) float64 {
	v, _ := args[key].(float64)
	return v
}

func enumSchema(values []string) string {
	b, _ := json.Marshal(values)
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func unitNames() []string {
	seen := map[string]bool{}
	for pair := range unitFactors {
		seen[pair[0]], seen[pair[1]] = true, true
	}
	return sortedKeys(seen)
}

// workloadTool is one workload fixture: its spec, latency and function.
type workloadTool struct {
	spec    tools.Spec
	latency time.Duration
	call    func(args map[string]any) (any, error)
}

// workloadTools lists the workload fixtures. Expectations call the same
// functions, so what a correct run must reach is computed, not copied.
func workloadTools() []workloadTool {
	whEnum := enumSchema(warehouses)
	curEnum := enumSchema(sortedKeys(fxPerUSD))
	unitEnum := enumSchema(unitNames())
	sku := `{"type":"string","pattern":"^W-[0-9]{3}$","description":"stock keeping unit, like W-100"}`
	wh := `{"type":"string","enum":` + whEnum + `}`
	order := `{"type":"string","pattern":"^ORD-[0-9]{5}$","description":"order id, like ORD-12345"}`
	ticket := `{"type":"string","pattern":"^T-[0-9]{4}$","description":"ticket id, like T-1234"}`
	city := `{"type":"string","minLength":2,"description":"city name, like Oslo"}`
	obj := func(props string, required ...string) json.RawMessage {
		req, _ := json.Marshal(required)
		return json.RawMessage(`{"type":"object","properties":{` + props + `},"required":` + string(req) + `,"additionalProperties":false}`)
	}
	return []workloadTool{
		{tools.Spec{Name: "stock_level", Idempotent: true, ArgsSchema: obj(`"sku":`+sku+`,"warehouse":`+wh, "sku", "warehouse"),
			Description: "Stock of one item in one warehouse: on hand, reserved and available units."}, siteDBLatency, stockLevel},
		{tools.Spec{Name: "reorder_item", ArgsSchema: obj(`"sku":`+sku+`,"warehouse":`+wh+`,"qty":{"type":"integer","minimum":1}`, "sku", "warehouse"),
			Description: "Place a purchase order to restock an item for a warehouse (the item's standard reorder quantity unless qty is given). Returns the PO number and ETA."},
			siteDBLatency, reorderItem},
		{tools.Spec{Name: "convert_currency", Idempotent: true,
			ArgsSchema:  obj(`"amount":{"type":"number","minimum":0},"from":{"type":"string","enum":`+curEnum+`},"to":{"type":"string","enum":`+curEnum+`}`, "amount", "from", "to"),
			Description: "Convert an amount of money between currencies (ISO codes) at today's rate."}, currencyLatency, convertCurrency},
		{tools.Spec{Name: "convert_units", Idempotent: true,
			ArgsSchema:  obj(`"value":{"type":"number"},"from":{"type":"string","enum":`+unitEnum+`},"to":{"type":"string","enum":`+unitEnum+`}`, "value", "from", "to"),
			Description: "Convert a length, mass or volume between units (kilometers, miles, kilograms, pounds, liters, gallons)."},
			0, convertUnits},
		{tools.Spec{Name: "order_status", Idempotent: true, ArgsSchema: obj(`"order_id":`+order, "order_id"),
			Description: "Status of a customer order: processing, shipped, in transit or delivered, with carrier and expected delivery date."},
			siteDBLatency, orderStatus},
		{tools.Spec{Name: "cancel_order", ArgsSchema: obj(`"order_id":`+order, "order_id"),
			Description: "Cancel a customer order and refund it. Returns the refund in USD."}, siteDBLatency, cancelOrder},
		{tools.Spec{Name: "current_weather", Idempotent: true, ArgsSchema: obj(`"city":`+city, "city"),
			Description: "Current weather in a city: temperature in C, conditions and wind in km/h."}, serviceLatency, currentWeather},
		{tools.Spec{Name: "weather_forecast", Idempotent: true,
			ArgsSchema:  obj(`"city":`+city+`,"days_ahead":{"type":"integer","minimum":1,"maximum":5}`, "city", "days_ahead"),
			Description: "Forecast for a city 1 to 5 days ahead: high and low in C, conditions, rain in mm and wind in km/h."},
			serviceLatency, weatherForecast},
		{tools.Spec{Name: "shipping_quote", Idempotent: true,
			ArgsSchema:  obj(`"origin":`+city+`,"destination":`+city+`,"weight_kg":{"type":"number","exclusiveMinimum":0}`, "origin", "destination", "weight_kg"),
			Description: "Sea freight quote between two ports: carrier, cost in USD and transit days."}, serviceLatency, shippingQuote},
		{tools.Spec{Name: "employee_lookup", Idempotent: true,
			ArgsSchema:  obj(`"name":{"type":"string","minLength":3,"description":"full name"}`, "name"),
			Description: "Staff directory entry of a person: title, department, phone extension, office and manager."},
			siteDBLatency, employeeLookup},
		{tools.Spec{Name: "get_ticket", Idempotent: true, ArgsSchema: obj(`"ticket_id":`+ticket, "ticket_id"),
			Description: "A support ticket: customer, priority, subject and the customer's report."}, siteDBLatency, getTicket},
		{tools.Spec{Name: "close_ticket", ArgsSchema: obj(`"ticket_id":`+ticket, "ticket_id"),
			Description: "Close a support ticket as resolved. Returns its resolution code."}, siteDBLatency, closeTicket},
	}
}

// WorkloadTools returns a fresh set of the plan cache workload's fixture
// tools.
func WorkloadTools(o Options) []tools.Tool {
	var out []tools.Tool
	for _, w := range workloadTools() {
		spec := w.spec
		spec.Concurrency, spec.Timeout = 16, 30*time.Second
		out = append(out, &fixture{spec: spec, latency: w.latency, scale: o.TimeScale, call: w.call})
	}
	return out
}

// WorkloadRegistry returns a factory for daemon.Options.Tools: the
// built-in tools from config (calc, now, ...) plus the workload's fixtures.
// The scenario fixtures are left out: a planner prompt listing tools no
// request uses would only be longer.
func WorkloadRegistry(o Options) func(config.ToolsConfig, tools.Deps) (*tools.Registry, error) {
	return func(cfg config.ToolsConfig, deps tools.Deps) (*tools.Registry, error) {
		return NewRegistry(cfg, deps, WorkloadTools(o))
	}
}

// callWorkloadTool runs a tool's function as the registry would, without
// the latency: the output text a correct step stores.
func callWorkloadTool(name string, args map[string]any) (string, error) {
	if name == "calc" {
		raw, err := json.Marshal(args)
		if err != nil {
			return "", err
		}
		res, err := tools.Calc{}.Call(context.Background(), raw)
		if err != nil {
			return "", err
		}
		return string(res.Output), nil
	}
	for _, w := range workloadTools() {
		if w.spec.Name != name {
			continue
		}
		// Round-trip the arguments as the registry does (numbers become
		// float64).
		raw, err := json.Marshal(args)
		if err != nil {
			return "", err
		}
		var in map[string]any
		if err := json.Unmarshal(raw, &in); err != nil {
			return "", err
		}
		v, err := w.call(in)
		if err != nil {
			return "", err
		}
		b, err := json.Marshal(v)
		return string(b), err
	}
	return "", fmt.Errorf("no workload tool %q", name)
}

func notFound(what, v string) error {
	return fmt.Errorf("%w: no %s %q", tools.ErrFailed, what, v)
}

func stockLevel(args map[string]any) (any, error) {
	sku, wh := strArg(args, "sku"), strArg(args, "warehouse")
	if !slices.Contains(warehouses, wh) {
		return nil, notFound("warehouse", wh)
	}
	h := hashOf("stock", sku, wh)
	onHand := int(h % 400)
	reserved := int(h/400) % (min(onHand, 60) + 1)
	return map[string]any{"sku": sku, "warehouse": wh, "on_hand": onHand, "reserved": reserved, "available": onHand - reserved}, nil
}

func reorderItem(args map[string]any) (any, error) {
	sku, wh := strArg(args, "sku"), strArg(args, "warehouse")
	if !slices.Contains(warehouses, wh) {
		return nil, notFound("warehouse", wh)
	}
	h := hashOf("reorder", sku, wh)
	qty := 50 + 10*int(h%10)
	if q := numArg(args, "qty"); q >= 1 {
		qty = int(q)
	}
	return map[string]any{"sku": sku, "warehouse": wh, "qty": qty, "po_number": fmt.Sprintf("PO-%05d", h%100000),
		"eta_days": 2 + int(h/7%8), "status": "placed"}, nil
}

func convertCurrency(args map[string]any) (any, error) {
	amount, from, to := numArg(args, "amount"), strArg(args, "from"), strArg(args, "to")
	fr, ok1 := fxPerUSD[from]
	tr, ok2 := fxPerUSD[to]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: no rate for %s to %s", tools.ErrFailed, from, to)
	}
	rate := math.Round(tr/fr*1e6) / 1e6
	return map[string]any{"amount": amount, "from": from, "to": to, "rate": rate, "result": round2(amount * rate)}, nil
}

func convertUnits(args map[string]any) (any, error) {
	v, from, to := numArg(args, "value"), strArg(args, "from"), strArg(args, "to")
	f, ok := unitFactors[[2]string{from, to}]
	if !ok {
		return nil, fmt.Errorf("%w: cannot convert %s to %s", tools.ErrFailed, from, to)
	}
	return map[string]any{"value": v, "from": from, "to": to, "result": round2(v * f)}, nil
}

func orderStatus(args map[string]any) (any, error) {
	id := strArg(args, "order_id")
	h := hashOf("order", id)
	return map[string]any{"order_id": id, "status": orderStates[h%uint32(len(orderStates))],
		"carrier": parcelCos[h/5%uint32(len(parcelCos))], "eta": fmt.Sprintf("2026-06-%02d", 1+h/11%28)}, nil
}

func cancelOrder(args map[string]any) (any, error) {
	id := strArg(args, "order_id")
	h := hashOf("cancel", id)
	return map[string]any{"order_id": id, "cancelled": true, "refund_usd": round2(float64(2000+h%48000) / 100)}, nil
}

// knownCity returns the city's name as the weather service spells it.
func knownCity(list []string, q string) (string, bool) {
	for _, c := range list {
		if strings.EqualFold(c, q) {
			return c, true
		}
	}
	return "", false
}

func currentWeather(args map[string]any) (any, error) {
	c, ok := knownCity(weatherCities, strArg(args, "city"))
	if !ok {
		return nil, notFound("weather station for city", strArg(args, "city"))
	}
	h := hashOf("weather", c)
	return map[string]any{"city": c, "temp_c": round1(float64(h%450)/10 - 10), "conditions": conditions[h/450%uint32(len(conditions))],
		"wind_kph": int(h / 7 % 50)}, nil
}

func weatherForecast(args map[string]any) (any, error) {
	c, ok := knownCity(weatherCities, strArg(args, "city"))
	if !ok {
		return nil, notFound("weather station for city", strArg(args, "city"))
	}
	days := int(numArg(args, "days_ahead"))
	if days < 1 || days > 5 {
		return nil, fmt.Errorf("%w: days_ahead %d: forecasts go 1 to 5 days ahead", tools.ErrInvalidArgs, days)
	}
	h := hashOf("forecast", c, fmt.Sprint(days))
	low := round1(float64(h%350)/10 - 12)
	return map[string]any{"city": c, "days_ahead": days, "low_c": low, "high_c": round1(low + 2 + float64(h/350%90)/10),
		"conditions": conditions[h/31%uint32(len(conditions))], "rain_mm": int(h / 17 % 25), "wind_kph": int(h / 13 % 50)}, nil
}

func shippingQuote(args map[string]any) (any, error) {
	o, ok1 := knownCity(ports, strArg(args, "origin"))
	d, ok2 := knownCity(ports, strArg(args, "destination"))
	if !ok1 || !ok2 || o == d {
		return nil, fmt.Errorf("%w: no sea route from %q to %q", tools.ErrFailed, strArg(args, "origin"), strArg(args, "destination"))
	}
	w := numArg(args, "weight_kg")
	h := hashOf("route", o, d) // one way: the return leg is another route
	perKG := 1.5 + float64(h%400)/100
	return map[string]any{"origin": o, "destination": d, "weight_kg": w, "carrier": carriers[h/400%uint32(len(carriers))],
		"cost_usd": round2(80 + w*perKG), "transit_days": 5 + int(h/3%30)}, nil
}

func employeeLookup(args map[string]any) (any, error) {
	name := strArg(args, "name")
	for _, e := range staff {
		if strings.EqualFold(e.Name, name) {
			out := map[string]any{"name": e.Name, "title": e.Title, "department": e.Department, "extension": e.Extension, "office": e.Office}
			if e.Manager != "" {
				out["manager"] = e.Manager
			}
			return out, nil
		}
	}
	return nil, notFound("employee", name)
}

// ticketReport is the customer's report in a ticket; the executor's script
// reads it back (ticketReportRe), as a model would.
const ticketReport = "Customer %s reports error %s on the %s page since %02d:00; %d users affected."

func getTicket(args map[string]any) (any, error) {
	id := strArg(args, "ticket_id")
	h := hashOf("ticket", id)
	cust, comp := customers[h%uint32(len(customers))], components[h/5%uint32(len(components))]
	code := fmt.Sprintf("E-%d", 100+h/25%900)
	return map[string]any{"id": id, "customer": cust, "priority": priorities[h/7%uint32(len(priorities))],
		"subject": fmt.Sprintf("%s page errors", comp),
		"body":    fmt.Sprintf(ticketReport, cust, code, comp, h/11%24, 1+h/13%200)}, nil
}

func closeTicket(args map[string]any) (any, error) {
	id := strArg(args, "ticket_id")
	return map[string]any{"id": id, "status": "closed", "resolution_code": fmt.Sprintf("RC-%03d", hashOf("close", id)%1000)}, nil
}
