package scenarios

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/agentd/agentd/internal/plan"
)

// The request types of the plan cache workload: wordings, entity pools,
// the plan a capable planner writes, and the answer a summarizer writes
// from the step results. Answers cite their steps as agentd's summarizer
// prompt asks, and state numbers exactly as the tools wrote them.

func pick(r *rand.Rand, list []string) string { return list[r.IntN(len(list))] }

// pickDistinct draws n different values.
func pickDistinct(r *rand.Rand, list []string, n int) []string {
	idx := r.Perm(len(list))[:n]
	out := make([]string, n)
	for i, j := range idx {
		out[i] = list[j]
	}
	return out
}

func num(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

func skuOf(r *rand.Rand) string { return fmt.Sprintf("W-%03d", 100+r.IntN(900)) }

func currencies(withUSD bool) []string {
	var out []string
	for _, c := range sortedKeys(fxPerUSD) {
		if withUSD || c != "USD" {
			out = append(out, c)
		}
	}
	return out
}

func staffNames(withManager bool) []string {
	var out []string
	for _, e := range staff {
		if !withManager || e.Manager != "" {
			out = append(out, e.Name)
		}
	}
	return out
}

func tool(id, name string, args map[string]any, deps ...string) plan.Step {
	return plan.Step{ID: id, Tool: name, Args: args, DependsOn: deps}
}

func onePlan(goal, answer string, steps ...plan.Step) *plan.Plan {
	return &plan.Plan{Goal: goal, Steps: steps, Answer: answer}
}

// warmer names the warmer of two places by a numeric field, or "" when a
// figure is missing.
func warmer(res stepResults, a, b, field string) (name, other string) {
	ta, tb := res.num(a, field), res.num(b, field)
	switch {
	case ta != ta || tb != tb: // NaN: a figure is missing
		return "", ""
	case ta >= tb:
		return res.get(a, "city"), res.get(b, "city")
	}
	return res.get(b, "city"), res.get(a, "city")
}

func ordinaryKinds() []*requestKind {
	return []*requestKind{
		{
			name: "stock_check",
			phrasings: []string{
				"Stock check for SKU {sku} in the {warehouse} warehouse",
				"How many {sku} do we have in {warehouse}?",
				"Is {sku} in stock at the {warehouse} warehouse?",
			},
			slots: map[string]string{"sku": reSKU, "warehouse": reWarehouse},
			draw: func(r *rand.Rand) map[string]string {
				return map[string]string{"sku": skuOf(r), "warehouse": pick(r, warehouses)}
			},
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Report the stock of "+e["sku"]+" in the "+e["warehouse"]+" warehouse",
					"State the available, on-hand and reserved units, citing the step.",
					tool("stock", "stock_level", map[string]any{"sku": e["sku"], "warehouse": e["warehouse"]}))
			},
			answer: func(_ map[string]string, res stepResults) string {
				return fmt.Sprintf("%s in the %s warehouse: %s available (%s on hand, %s reserved) [stock].",
					res.get("stock", "sku"), res.get("stock", "warehouse"), res.get("stock", "available"), res.get("stock", "on_hand"), res.get("stock", "reserved"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				return []string{e["sku"], e["warehouse"] + " warehouse", res.get("stock", "available") + " available"}
			},
		},
		{
			// Look-alike of stock_check: the same item and warehouse, but an
			// order is placed.
			name: "reorder",
			phrasings: []string{
				"Reorder SKU {sku} for the {warehouse} warehouse",
				"Place a reorder of {sku} for {warehouse}",
				"Restock {sku} in the {warehouse} warehouse",
			},
			slots: map[string]string{"sku": reSKU, "warehouse": reWarehouse},
			draw: func(r *rand.Rand) map[string]string {
				return map[string]string{"sku": skuOf(r), "warehouse": pick(r, warehouses)}
			},
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Reorder "+e["sku"]+" for the "+e["warehouse"]+" warehouse",
					"Confirm the purchase order: number, quantity and arrival, citing the step.",
					tool("reorder", "reorder_item", map[string]any{"sku": e["sku"], "warehouse": e["warehouse"]}))
			},
			answer: func(_ map[string]string, res stepResults) string {
				return fmt.Sprintf("Reorder placed for %s at the %s warehouse: %s units on %s, arriving in %s days [reorder].",
					res.get("reorder", "sku"), res.get("reorder", "warehouse"), res.get("reorder", "qty"), res.get("reorder", "po_number"), res.get("reorder", "eta_days"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				return []string{e["sku"], res.get("reorder", "po_number"), res.get("reorder", "qty") + " units"}
			},
		},
		{
			name: "currency",
			phrasings: []string{
				"Convert {amount} {from} to {to}",
				"How much is {amount} {from} in {to}?",
				"{amount} {from} in {to}, please",
			},
			slots: map[string]string{"amount": reInt, "from": reCurrency, "to": reCurrency},
			draw: func(r *rand.Rand) map[string]string {
				c := pickDistinct(r, currencies(true), 2)
				return map[string]string{"amount": strconv.Itoa(10 * (1 + r.IntN(500))), "from": c[0], "to": c[1]}
			},
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Convert "+e["amount"]+" "+e["from"]+" to "+e["to"], "Give the converted amount and the rate, citing the step.",
					tool("convert", "convert_currency", map[string]any{"amount": num(e["amount"]), "from": e["from"], "to": e["to"]}))
			},
			answer: func(_ map[string]string, res stepResults) string {
				return fmt.Sprintf("%s %s is %s %s at a rate of %s [convert].", res.get("convert", "amount"), res.get("convert", "from"),
					res.get("convert", "result"), res.get("convert", "to"), res.get("convert", "rate"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				return []string{res.get("convert", "result") + " " + e["to"]}
			},
		},
		{
			// Look-alike of currency: "Convert 12 kilometers to miles" is
			// worded like "Convert 100 USD to EUR".
			name: "units",
			phrasings: []string{
				"Convert {value} {from} to {to}",
				"How many {to} is {value} {from}?",
			},
			slots: map[string]string{"value": reInt, "from": reUnit, "to": reUnit},
			draw: func(r *rand.Rand) map[string]string {
				var pairs [][2]string
				for p := range unitFactors {
					pairs = append(pairs, p)
				}
				slices.SortFunc(pairs, func(a, b [2]string) int { return strings.Compare(a[0]+a[1], b[0]+b[1]) })
				p := pairs[r.IntN(len(pairs))]
				return map[string]string{"value": strconv.Itoa(1 + r.IntN(500)), "from": p[0], "to": p[1]}
			},
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Convert "+e["value"]+" "+e["from"]+" to "+e["to"], "Give the converted value with its unit, citing the step.",
					tool("convert", "convert_units", map[string]any{"value": num(e["value"]), "from": e["from"], "to": e["to"]}))
			},
			answer: func(_ map[string]string, res stepResults) string {
				return fmt.Sprintf("%s %s is %s %s [convert].", res.get("convert", "value"), res.get("convert", "from"), res.get("convert", "result"), res.get("convert", "to"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				return []string{res.get("convert", "result") + " " + e["to"]}
			},
		},
		{
			name: "order_status",
			phrasings: []string{
				"What's the status of order {order}?",
				"Where is order {order}?",
				"Track order {order}",
			},
			slots: map[string]string{"order": reOrder},
			draw: func(r *rand.Rand) map[string]string {
				return map[string]string{"order": fmt.Sprintf("ORD-%05d", 10000+r.IntN(90000))}
			},
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Report the status of order "+e["order"], "Give the status, carrier and expected delivery date, citing the step.",
					tool("status", "order_status", map[string]any{"order_id": e["order"]}))
			},
			answer: func(_ map[string]string, res stepResults) string {
				return fmt.Sprintf("Order %s is %s with %s, expected on %s [status].", res.get("status", "order_id"), res.get("status", "status"),
					res.get("status", "carrier"), res.get("status", "eta"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				return []string{e["order"], "is " + res.get("status", "status"), res.get("status", "eta")}
			},
		},
		{
			// Look-alike of order_status: "Cancel order" against "Track order".
			name: "cancel_order",
			phrasings: []string{
				"Cancel order {order}",
				"Please cancel order {order}",
			},
			slots: map[string]string{"order": reOrder},
			draw: func(r *rand.Rand) map[string]string {
				return map[string]string{"order": fmt.Sprintf("ORD-%05d", 10000+r.IntN(90000))}
			},
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Cancel order "+e["order"], "Confirm the cancellation and the refund, citing the step.",
					tool("cancel", "cancel_order", map[string]any{"order_id": e["order"]}))
			},
			answer: func(_ map[string]string, res stepResults) string {
				return fmt.Sprintf("Order %s is cancelled (%s); %s USD will be refunded [cancel].", res.get("cancel", "order_id"),
					res.get("cancel", "cancelled"), res.get("cancel", "refund_usd"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				return []string{e["order"], "cancelled", res.get("cancel", "refund_usd") + " USD"}
			},
		},
		{
			name: "weather_now",
			phrasings: []string{
				"What's the weather in {city}?",
				"Weather in {city} right now",
				"Current weather for {city}",
			},
			slots: map[string]string{"city": rePlace},
			draw:  func(r *rand.Rand) map[string]string { return map[string]string{"city": pick(r, weatherCities)} },
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Report the current weather in "+e["city"], "Give the temperature, conditions and wind, citing the step.",
					tool("weather", "current_weather", map[string]any{"city": e["city"]}))
			},
			answer: func(_ map[string]string, res stepResults) string {
				return fmt.Sprintf("%s now: %s °C, %s, wind %s km/h [weather].", res.get("weather", "city"), res.get("weather", "temp_c"),
					res.get("weather", "conditions"), res.get("weather", "wind_kph"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				return []string{e["city"], res.get("weather", "temp_c") + " °C", res.get("weather", "conditions")}
			},
		},
		{
			// Look-alike of weather_now: one more word ("tomorrow") asks for
			// a forecast.
			name: "forecast",
			phrasings: []string{
				"What's the weather in {city} tomorrow?",
				"Weather forecast for {city} in {days} days",
			},
			slots: map[string]string{"city": rePlace, "days": reDays},
			draw: func(r *rand.Rand) map[string]string {
				return map[string]string{"city": pick(r, weatherCities), "days": strconv.Itoa(2 + r.IntN(4))}
			},
			plan: func(e map[string]string) *plan.Plan {
				days := 1.0
				if d, ok := e["days"]; ok {
					days = num(d)
				}
				return onePlan(fmt.Sprintf("Forecast the weather in %s %g days ahead", e["city"], days),
					"Give the high, low, conditions and rain, citing the step.",
					tool("forecast", "weather_forecast", map[string]any{"city": e["city"], "days_ahead": days}))
			},
			answer: func(_ map[string]string, res stepResults) string {
				return fmt.Sprintf("%s in %s day(s): high %s °C, low %s °C, %s, %s mm of rain [forecast].", res.get("forecast", "city"),
					res.get("forecast", "days_ahead"), res.get("forecast", "high_c"), res.get("forecast", "low_c"),
					res.get("forecast", "conditions"), res.get("forecast", "rain_mm"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				return []string{e["city"], "high " + res.get("forecast", "high_c") + " °C", "low " + res.get("forecast", "low_c") + " °C"}
			},
		},
		{
			name: "shipping",
			phrasings: []string{
				"Shipping quote for {weight} kg from {origin} to {dest}",
				"How much to ship {weight} kg from {origin} to {dest}?",
				"Quote freight {origin} to {dest}, {weight} kg",
			},
			slots: map[string]string{"weight": reInt, "origin": rePlace, "dest": rePlace},
			draw: func(r *rand.Rand) map[string]string {
				p := pickDistinct(r, ports, 2)
				return map[string]string{"weight": strconv.Itoa(5 + r.IntN(800)), "origin": p[0], "dest": p[1]}
			},
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Quote sea freight for "+e["weight"]+" kg from "+e["origin"]+" to "+e["dest"],
					"Give the cost, carrier and transit time, citing the step.",
					tool("quote", "shipping_quote", map[string]any{"origin": e["origin"], "destination": e["dest"], "weight_kg": num(e["weight"])}))
			},
			answer: func(_ map[string]string, res stepResults) string {
				return fmt.Sprintf("%s kg from %s to %s: %s USD with %s, %s days in transit [quote].", res.get("quote", "weight_kg"),
					res.get("quote", "origin"), res.get("quote", "destination"), res.get("quote", "cost_usd"), res.get("quote", "carrier"),
					res.get("quote", "transit_days"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				return []string{e["origin"], e["dest"], res.get("quote", "cost_usd") + " USD", res.get("quote", "transit_days") + " days"}
			},
		},
		{
			name: "employee",
			phrasings: []string{
				"Who is {name}?",
				"Look up employee {name}",
				"What department is {name} in?",
			},
			slots: map[string]string{"name": reName},
			draw:  func(r *rand.Rand) map[string]string { return map[string]string{"name": pick(r, staffNames(false))} },
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Look up "+e["name"]+" in the staff directory", "Give their title, department, extension and office, citing the step.",
					tool("employee", "employee_lookup", map[string]any{"name": e["name"]}))
			},
			answer: func(_ map[string]string, res stepResults) string {
				return fmt.Sprintf("%s is the %s in %s, extension %s, based in %s [employee].", res.get("employee", "name"),
					res.get("employee", "title"), res.get("employee", "department"), res.get("employee", "extension"), res.get("employee", "office"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				return []string{e["name"], res.get("employee", "title"), "extension " + res.get("employee", "extension")}
			},
		},
		{
			// Look-alike of employee: two lookups, the second bound to the
			// first's result.
			name: "manager",
			phrasings: []string{
				"Who is {name}'s manager?",
				"Who does {name} report to?",
			},
			slots: map[string]string{"name": reName},
			draw:  func(r *rand.Rand) map[string]string { return map[string]string{"name": pick(r, staffNames(true))} },
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Find who "+e["name"]+" reports to", "Name the manager with their title and department, citing both steps.",
					tool("employee", "employee_lookup", map[string]any{"name": e["name"]}),
					tool("manager", "employee_lookup", map[string]any{"name": "${employee.manager}"}, "employee"))
			},
			answer: func(_ map[string]string, res stepResults) string {
				return fmt.Sprintf("%s reports to %s, the %s in %s [employee] [manager].", res.get("employee", "name"),
					res.get("manager", "name"), res.get("manager", "title"), res.get("manager", "department"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				return []string{e["name"] + " reports to " + res.get("manager", "name"), res.get("manager", "title")}
			},
		},
		{
			name: "percent_of",
			phrasings: []string{
				"What is {pct}% of {n}?",
				"Calculate {pct} percent of {n}",
			},
			slots: map[string]string{"pct": reInt, "n": reInt},
			draw:  drawPercent,
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Compute "+e["pct"]+"% of "+e["n"], "State the result, citing the step.",
					tool("percent", "calc", map[string]any{"expression": e["n"] + " * " + e["pct"] + " / 100"}))
			},
			answer: func(e map[string]string, res stepResults) string {
				return fmt.Sprintf("%s%% of %s is %s in all [percent].", e["pct"], e["n"], res.get("percent", "result"))
			},
			facts: func(_ map[string]string, res stepResults) []string {
				return []string{"is " + res.get("percent", "result") + " in all"}
			},
		},
		{
			// Look-alike of percent_of: "off" for "of".
			name: "percent_off",
			phrasings: []string{
				"What is {pct}% off {n}?",
				"Take {pct}% off {n}",
			},
			slots: map[string]string{"pct": reInt, "n": reInt},
			draw:  drawPercent,
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Take "+e["pct"]+"% off "+e["n"], "State the discounted amount, citing the step.",
					tool("discounted", "calc", map[string]any{"expression": e["n"] + " * (100 - " + e["pct"] + ") / 100"}))
			},
			answer: func(e map[string]string, res stepResults) string {
				return fmt.Sprintf("%s with %s%% off is %s after the discount [discounted].", e["n"], e["pct"], res.get("discounted", "result"))
			},
			facts: func(_ map[string]string, res stepResults) []string {
				return []string{"is " + res.get("discounted", "result") + " after the discount"}
			},
		},
		{
			name: "ticket_summary",
			phrasings: []string{
				"Summarize ticket {ticket}",
				"Give me a summary of support ticket {ticket}",
			},
			slots: map[string]string{"ticket": reTicket},
			draw:  drawTicket,
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Summarize support ticket "+e["ticket"]+" for the on-call engineer",
					"Give the ticket's customer and priority and the one-sentence summary, citing the steps.",
					tool("ticket", "get_ticket", map[string]any{"ticket_id": e["ticket"]}),
					plan.Step{ID: "summary", Task: ticketTaskOpening + "${ticket.body}", Tier: plan.TierFast, DependsOn: []string{"ticket"}})
			},
			answer: func(_ map[string]string, res stepResults) string {
				return fmt.Sprintf("Ticket %s (%s priority, %s): %s [ticket] [summary]", res.get("ticket", "id"), res.get("ticket", "priority"),
					res.get("ticket", "customer"), textResult(res, "summary"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				return append([]string{e["ticket"], res.get("ticket", "priority") + " priority"}, taskFacts(res["summary"])...)
			},
		},
		{
			// Look-alike of ticket_summary: the same ticket, closed.
			name: "close_ticket",
			phrasings: []string{
				"Close ticket {ticket}",
				"Mark ticket {ticket} as resolved",
			},
			slots: map[string]string{"ticket": reTicket},
			draw:  drawTicket,
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Close support ticket "+e["ticket"], "Confirm the closure with its resolution code, citing the step.",
					tool("close", "close_ticket", map[string]any{"ticket_id": e["ticket"]}))
			},
			answer: func(_ map[string]string, res stepResults) string {
				return fmt.Sprintf("Ticket %s is %s, resolution code %s [close].", res.get("close", "id"), res.get("close", "status"), res.get("close", "resolution_code"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				return []string{e["ticket"], "closed", res.get("close", "resolution_code")}
			},
		},
		{
			// Look-alike of weather_now, twice over; and its answer turns on
			// which city is warmer, so one run's wording is not the next's.
			name: "compare_weather",
			phrasings: []string{
				"Compare the weather in {city_a} and {city_b}",
				"Which is warmer right now, {city_a} or {city_b}?",
			},
			slots: map[string]string{"city_a": rePlace, "city_b": rePlace},
			draw: func(r *rand.Rand) map[string]string {
				c := pickDistinct(r, weatherCities, 2)
				return map[string]string{"city_a": c[0], "city_b": c[1]}
			},
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Compare the current weather in "+e["city_a"]+" and "+e["city_b"],
					"Say which city is warmer, with both temperatures and conditions, citing both steps.",
					tool("weather_a", "current_weather", map[string]any{"city": e["city_a"]}),
					tool("weather_b", "current_weather", map[string]any{"city": e["city_b"]}))
			},
			answer: func(_ map[string]string, res stepResults) string {
				w, o := warmer(res, "weather_a", "weather_b", "temp_c")
				if w == "" {
					return "One of the two readings is missing, so I cannot say which city is warmer [weather_a] [weather_b]."
				}
				return fmt.Sprintf("%s is warmer than %s: %s at %s °C (%s) against %s °C (%s) [weather_a] [weather_b].", w, o,
					res.get("weather_a", "city"), res.get("weather_a", "temp_c"), res.get("weather_a", "conditions"),
					res.get("weather_b", "temp_c"), res.get("weather_b", "conditions"))
			},
			facts: func(_ map[string]string, res stepResults) []string {
				w, o := warmer(res, "weather_a", "weather_b", "temp_c")
				return []string{w + " is warmer than " + o, res.get("weather_a", "temp_c") + " °C", res.get("weather_b", "temp_c") + " °C"}
			},
		},
	}
}

func drawPercent(r *rand.Rand) map[string]string {
	pcts := []string{"5", "10", "15", "20", "25", "30", "40", "50"}
	return map[string]string{"pct": pick(r, pcts), "n": strconv.Itoa(20 + r.IntN(4980))}
}

func drawTicket(r *rand.Rand) map[string]string {
	return map[string]string{"ticket": fmt.Sprintf("T-%04d", 1000+r.IntN(9000))}
}

// ticketTaskOpening opens the ticket summary's task; the simulated executor
// recognises it.
const ticketTaskOpening = "Summarize this support ticket for the on-call engineer in one sentence: "

var ticketReportRe = regexp.MustCompile(`Customer (.+?) reports error (E-[0-9]+) on the ([a-z]+) page since ([0-9]{2}:00); ([0-9]+) users affected\.`)

// executorAnswer is the simulated executor's answer to a workload task:
// the ticket's report read back in one sentence, or "" for a task it does
// not know.
func executorAnswer(task string) string {
	m := ticketReportRe.FindStringSubmatch(task)
	if m == nil || !strings.Contains(task, ticketTaskOpening) {
		return ""
	}
	return fmt.Sprintf("%s: error %s on the %s page, %s users affected since %s.", m[1], m[2], m[3], m[5], m[4])
}

var taskAnswerRe = regexp.MustCompile(`^(.+?): error (E-[0-9]+) on the ([a-z]+) page`)

// taskFacts are what a correct ticket summary states: the customer, the
// error and the page.
func taskFacts(answer string) []string {
	m := taskAnswerRe.FindStringSubmatch(textOrJSONString(answer))
	if m == nil {
		return []string{"(no summary)"}
	}
	return []string{m[1], m[2], m[3] + " page"}
}

// textResult is a task step's output as text (stored as plain text, or as
// a JSON string).
func textResult(res stepResults, step string) string {
	out, ok := res[step]
	if !ok {
		return "(no summary)"
	}
	return textOrJSONString(out)
}

func textOrJSONString(s string) string {
	var str string
	if json.Unmarshal([]byte(s), &str) == nil {
		return str
	}
	return strings.TrimSpace(s)
}

// hardKinds read as hard to the router: several asks, conditions and
// names, so they escalate to the remote planner when it is allowed. Their
// plans fetch everything the conditions need; the answer applies them.
func hardKinds() []*requestKind {
	return []*requestKind{
		{
			name: "ship_compare",
			hard: true,
			phrasings: []string{
				"Compare shipping {weight} kg from {origin} to {dest_a} and to {dest_b}: which is cheaper? Also check the weather in both ports, " +
					"and then convert the cheaper quote to {cur}? If either transit takes more than 20 days, say so; otherwise, if a port has rain, flag it, unless both are dry?",
			},
			slots: map[string]string{"weight": reInt, "origin": rePlace, "dest_a": rePlace, "dest_b": rePlace, "cur": reCurrency},
			draw: func(r *rand.Rand) map[string]string {
				p := pickDistinct(r, ports, 3)
				return map[string]string{"weight": strconv.Itoa(20 + r.IntN(900)), "origin": p[0], "dest_a": p[1], "dest_b": p[2], "cur": pick(r, currencies(false))}
			},
			plan: func(e map[string]string) *plan.Plan {
				w := num(e["weight"])
				return onePlan("Compare sea freight from "+e["origin"]+" to "+e["dest_a"]+" and "+e["dest_b"]+", with port weather and the cheaper quote in "+e["cur"],
					"Name the cheaper destination with both costs and transit days and the cheaper cost in "+e["cur"]+
						"; say if a transit exceeds 20 days, otherwise flag rain at either port.",
					tool("quote_a", "shipping_quote", map[string]any{"origin": e["origin"], "destination": e["dest_a"], "weight_kg": w}),
					tool("quote_b", "shipping_quote", map[string]any{"origin": e["origin"], "destination": e["dest_b"], "weight_kg": w}),
					tool("weather_a", "current_weather", map[string]any{"city": e["dest_a"]}),
					tool("weather_b", "current_weather", map[string]any{"city": e["dest_b"]}),
					tool("convert_a", "convert_currency", map[string]any{"amount": "${quote_a.cost_usd}", "from": "USD", "to": e["cur"]}, "quote_a"),
					tool("convert_b", "convert_currency", map[string]any{"amount": "${quote_b.cost_usd}", "from": "USD", "to": e["cur"]}, "quote_b"))
			},
			answer: func(_ map[string]string, res stepResults) string {
				ca, cb := res.num("quote_a", "cost_usd"), res.num("quote_b", "cost_usd")
				if ca != ca || cb != cb {
					return "A quote is missing, so I cannot compare the routes [quote_a] [quote_b]."
				}
				c, o, conv := "quote_a", "quote_b", "convert_a"
				if cb < ca {
					c, o, conv = "quote_b", "quote_a", "convert_b"
				}
				return fmt.Sprintf("%s is cheaper: %s USD (%s %s) and %s days, against %s USD and %s days to %s [%s] [%s] [%s]. "+
					"Weather: %s %s, %s %s [weather_a] [weather_b].",
					res.get(c, "destination"), res.get(c, "cost_usd"), res.get(conv, "result"), res.get(conv, "to"), res.get(c, "transit_days"),
					res.get(o, "cost_usd"), res.get(o, "transit_days"), res.get(o, "destination"), c, o, conv,
					res.get("weather_a", "city"), res.get("weather_a", "conditions"), res.get("weather_b", "city"), res.get("weather_b", "conditions"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				c, conv := "quote_a", "convert_a"
				if res.num("quote_b", "cost_usd") < res.num("quote_a", "cost_usd") {
					c, conv = "quote_b", "convert_b"
				}
				return []string{res.get(c, "destination") + " is cheaper", res.get(c, "cost_usd") + " USD", res.get(conv, "result") + " " + e["cur"]}
			},
		},
		{
			name: "site_visit",
			hard: true,
			phrasings: []string{
				"Plan a site visit to {city_a} and {city_b}: what's the forecast there in {days} days, and then which city is warmer? " +
					"Also convert {amount} USD to {cur} for the per diem? If it rains in either city, say which; otherwise, if the wind is strong, warn me, unless both are calm?",
			},
			slots: map[string]string{"city_a": rePlace, "city_b": rePlace, "days": reDays, "amount": reInt, "cur": reCurrency},
			draw: func(r *rand.Rand) map[string]string {
				c := pickDistinct(r, weatherCities, 2)
				return map[string]string{"city_a": c[0], "city_b": c[1], "days": strconv.Itoa(2 + r.IntN(4)),
					"amount": strconv.Itoa(50 * (1 + r.IntN(20))), "cur": pick(r, currencies(false))}
			},
			plan: func(e map[string]string) *plan.Plan {
				d := num(e["days"])
				return onePlan("Forecasts for a site visit to "+e["city_a"]+" and "+e["city_b"]+" and the per diem in "+e["cur"],
					"Say which city will be warmer with both highs, the per diem in "+e["cur"]+", and any rain, else strong wind.",
					tool("forecast_a", "weather_forecast", map[string]any{"city": e["city_a"], "days_ahead": d}),
					tool("forecast_b", "weather_forecast", map[string]any{"city": e["city_b"], "days_ahead": d}),
					tool("per_diem", "convert_currency", map[string]any{"amount": num(e["amount"]), "from": "USD", "to": e["cur"]}))
			},
			answer: func(_ map[string]string, res stepResults) string {
				w, o := warmer(res, "forecast_a", "forecast_b", "high_c")
				if w == "" {
					w, o = "?", "?"
				}
				return fmt.Sprintf("%s will be warmer than %s: highs %s °C and %s °C, %s and %s, rain %s mm and %s mm [forecast_a] [forecast_b]. "+
					"The per diem of %s USD is %s %s [per_diem].", w, o, res.get("forecast_a", "high_c"), res.get("forecast_b", "high_c"),
					res.get("forecast_a", "conditions"), res.get("forecast_b", "conditions"), res.get("forecast_a", "rain_mm"), res.get("forecast_b", "rain_mm"),
					res.get("per_diem", "amount"), res.get("per_diem", "result"), res.get("per_diem", "to"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				w, o := warmer(res, "forecast_a", "forecast_b", "high_c")
				return []string{w + " will be warmer than " + o, res.get("per_diem", "result") + " " + e["cur"]}
			},
		},
		{
			name: "stock_ship",
			hard: true,
			phrasings: []string{
				"For SKU {sku}, check stock in the {wh_a} and {wh_b} warehouses, and then quote shipping {weight} kg from {origin} to {dest}? " +
					"Also convert the quote to {cur}? If the first warehouse has fewer than 20 available, say whether the second can cover it; otherwise, if the quote is over 500 USD, flag it?",
			},
			slots: map[string]string{"sku": reSKU, "wh_a": reWarehouse, "wh_b": reWarehouse, "weight": reInt, "origin": rePlace, "dest": rePlace, "cur": reCurrency},
			draw: func(r *rand.Rand) map[string]string {
				wh, p := pickDistinct(r, warehouses, 2), pickDistinct(r, ports, 2)
				return map[string]string{"sku": skuOf(r), "wh_a": wh[0], "wh_b": wh[1], "weight": strconv.Itoa(20 + r.IntN(900)),
					"origin": p[0], "dest": p[1], "cur": pick(r, currencies(false))}
			},
			plan: func(e map[string]string) *plan.Plan {
				return onePlan("Stock of "+e["sku"]+" in two warehouses and a freight quote in "+e["cur"],
					"Give both stock levels, the quote in USD and "+e["cur"]+"; if the first warehouse has fewer than 20 available say whether the second covers it, otherwise flag a quote over 500 USD.",
					tool("stock_a", "stock_level", map[string]any{"sku": e["sku"], "warehouse": e["wh_a"]}),
					tool("stock_b", "stock_level", map[string]any{"sku": e["sku"], "warehouse": e["wh_b"]}),
					tool("quote", "shipping_quote", map[string]any{"origin": e["origin"], "destination": e["dest"], "weight_kg": num(e["weight"])}),
					tool("convert", "convert_currency", map[string]any{"amount": "${quote.cost_usd}", "from": "USD", "to": e["cur"]}, "quote"))
			},
			answer: func(_ map[string]string, res stepResults) string {
				return fmt.Sprintf("%s: %s available in the %s warehouse and %s available in the %s warehouse [stock_a] [stock_b]. "+
					"Shipping %s kg from %s to %s costs %s USD, %s %s [quote] [convert].",
					res.get("stock_a", "sku"), res.get("stock_a", "available"), res.get("stock_a", "warehouse"), res.get("stock_b", "available"),
					res.get("stock_b", "warehouse"), res.get("quote", "weight_kg"), res.get("quote", "origin"), res.get("quote", "destination"),
					res.get("quote", "cost_usd"), res.get("convert", "result"), res.get("convert", "to"))
			},
			facts: func(e map[string]string, res stepResults) []string {
				return []string{res.get("stock_a", "available") + " available in the " + e["wh_a"], res.get("stock_b", "available") + " available in the " + e["wh_b"],
					res.get("quote", "cost_usd") + " USD", res.get("convert", "result") + " " + e["cur"]}
			},
		},
	}
}
