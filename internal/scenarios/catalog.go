package scenarios

import (
	"encoding/json"

	"github.com/agentd/agentd/internal/plan"
)

// The scenarios themselves: request, plan, scripted model behaviour and
// expected results. Numbers in answers are the fixtures' data, so a run
// whose references bound the wrong values is caught by the step checks.

var compareSchema = json.RawMessage(`{"type":"object","required":["similar","excluded"],"additionalProperties":false,` +
	`"properties":{"similar":{"type":"array","items":{"type":"string"}},"excluded":{"type":"array","items":{"type":"string"}}}}`)

func cityScenario() Scenario {
	type c struct{ id, name string }
	cands := []c{{"austin", "Austin, TX"}, {"san_antonio", "San Antonio, TX"}, {"dallas", "Dallas, TX"}, {"phoenix", "Phoenix, AZ"}, {"denver", "Denver, CO"}}
	p := &plan.Plan{Goal: "Find US cities similar to Austin, TX in climate and population",
		Answer: "Name the cities similar to Austin with their July mean temperature and population, and say why the others were left out."}
	var deps, group []string
	var react []ReactAction
	for _, x := range cands {
		p.Steps = append(p.Steps,
			plan.Step{ID: x.id + "_climate", Tool: "get_climate", Args: map[string]any{"city": x.name}},
			plan.Step{ID: x.id + "_population", Tool: "get_population", Args: map[string]any{"city": x.name}})
		deps = append(deps, x.id+"_climate", x.id+"_population")
		react = append(react,
			ReactAction{Tool: "get_climate", Args: map[string]any{"city": x.name}, Note: "get the climate of " + x.name},
			ReactAction{Tool: "get_population", Args: map[string]any{"city": x.name}, Note: "get the population of " + x.name})
	}
	group = append(group, deps...)
	p.Steps = append(p.Steps, plan.Step{ID: "compare", Tier: plan.TierFast, DependsOn: deps, Output: compareSchema,
		Task: "Compare the candidate cities with Austin (July mean ${austin_climate.july_mean_c} C, population ${austin_population.population}): " +
			"keep those whose July mean is within 2 C of Austin's and whose population is between half and twice Austin's. " +
			"San Antonio: ${san_antonio_climate.july_mean_c} C, ${san_antonio_population.population}. Dallas: ${dallas_climate.july_mean_c} C, ${dallas_population.population}. " +
			"Phoenix: ${phoenix_climate.july_mean_c} C, ${phoenix_population.population}. Denver: ${denver_climate.july_mean_c} C, ${denver_population.population}."})
	answer := "San Antonio, TX and Dallas, TX are the cities most like Austin (29.6 °C in July, 979,882 people) [austin_climate] [austin_population]: " +
		"San Antonio has a July mean of 29.9 °C and 1,495,295 people [san_antonio_climate] [san_antonio_population], " +
		"Dallas 30.1 °C and 1,302,868 people [dallas_climate] [dallas_population]. Phoenix is too hot in July (34.9 °C) and Denver too cool (23.9 °C) [compare]."
	return Scenario{
		Name:    NameCities,
		Request: "Which US cities are similar to Austin, TX by climate and population? Compare San Antonio, Dallas, Phoenix and Denver.",
		Plan:    p,
		Tasks: map[string]Task{"compare": {Marker: "Compare the candidate cities with Austin",
			Answer: `{"similar":["San Antonio, TX","Dallas, TX"],"excluded":["Phoenix, AZ: July mean 34.9 C, 5.3 C hotter","Denver, CO: July mean 23.9 C, 5.7 C cooler"]}`}},
		Answer:     answer,
		React:      react,
		ReactFinal: answer,
		Expect: Expect{
			Steps: []StepExpect{
				{Step: "austin_climate", Tool: "get_climate", Facts: []string{"29.6"}},
				{Step: "austin_population", Tool: "get_population", Facts: []string{"979882"}},
				{Step: "san_antonio_climate", Tool: "get_climate", Facts: []string{"29.9"}},
				{Step: "dallas_population", Tool: "get_population", Facts: []string{"1302868"}},
				{Step: "phoenix_climate", Tool: "get_climate", Facts: []string{"34.9"}},
				{Step: "denver_climate", Tool: "get_climate", Facts: []string{"23.9"}},
				{Step: "compare", Facts: []string{"San Antonio", "Dallas"}},
			},
			Facts:        []string{"San Antonio", "Dallas", "29.9", "30.1", "Phoenix", "Denver"},
			Parallel:     [][]string{group},
			OutputSchema: map[string]json.RawMessage{"compare": compareSchema},
		},
	}
}

func orderScenario() Scenario {
	p := &plan.Plan{Goal: "Process order A-1042 end to end",
		Answer: "Say whether order A-1042 was confirmed, with the confirmation number, shipping cost, transit time and total.",
		Steps: []plan.Step{
			{ID: "validate", Tool: "validate_order", Args: map[string]any{"order_id": "A-1042"}},
			{ID: "inventory", Tool: "check_inventory", Args: map[string]any{"items": "${validate.items}"}, DependsOn: []string{"validate"}},
			{ID: "shipping", Tool: "calculate_shipping", Args: map[string]any{"weight_kg": "${inventory.total_weight_kg}", "destination": "${validate.destination}"},
				DependsOn: []string{"validate", "inventory"}},
			{ID: "confirm", Tool: "confirm_order", Args: map[string]any{"order_id": "${validate.order_id}", "shipping_usd": "${shipping.cost_usd}",
				"goods_usd": "${inventory.goods_usd}"}, DependsOn: []string{"validate", "inventory", "shipping"}},
		}}
	answer := "Order A-1042 for Harbor Clinic is confirmed as CNF-A1042-7731 [confirm]. All items are in stock, 53.4 kg in total [inventory]; " +
		"Nordic Freight ships it to Tromsø for $200.54 in 5 days [shipping], for a total of $5350.54 [confirm]."
	items := []any{map[string]any{"sku": "VAX-FRIDGE-SDD", "qty": 1}, map[string]any{"sku": "TEMP-LOGGER", "qty": 4}}
	return Scenario{
		Name:    NameOrder,
		Request: "Process order A-1042: validate it, check inventory, calculate shipping, and confirm it with the supplier.",
		Plan:    p,
		// After a denial nothing may be done instead: the planner has no
		// remaining step to offer.
		Replan: &plan.Plan{Goal: "Process order A-1042 end to end", Steps: []plan.Step{}, Answer: "Report that the order was not confirmed."},
		Answer: answer,
		React: []ReactAction{
			{Tool: "validate_order", Args: map[string]any{"order_id": "A-1042"}, Note: "validate the order"},
			{Tool: "check_inventory", Args: map[string]any{"items": items}, Note: "check stock for the order lines"},
			{Tool: "calculate_shipping", Args: map[string]any{"weight_kg": 53.4, "destination": "Tromsø, NO"}, Note: "quote shipping for 53.4 kg"},
			{Tool: "confirm_order", Args: map[string]any{"order_id": "A-1042", "shipping_usd": 200.54, "goods_usd": 5150}, Note: "confirm the order"},
		},
		ReactFinal: answer,
		Expect: Expect{
			Steps: []StepExpect{
				{Step: "validate", Tool: "validate_order", Facts: []string{"Harbor Clinic", "TEMP-LOGGER"}},
				{Step: "inventory", Tool: "check_inventory", Facts: []string{`"total_weight_kg":53.4`, `"goods_usd":5150`}},
				{Step: "shipping", Tool: "calculate_shipping", Facts: []string{`"cost_usd":200.54`}},
				{Step: "confirm", Tool: "confirm_order", Facts: []string{"CNF-A1042-7731", "5350.54"}},
			},
			Facts:    []string{"CNF-A1042-7731", "200.54", "5350.54"},
			Approval: "confirm",
		},
	}
}

var reportSchema = json.RawMessage(`{"type":"object","required":["title","summary","key_points","sources"],"additionalProperties":false,"properties":{` +
	`"title":{"type":"string","minLength":5},"summary":{"type":"string","minLength":40},` +
	`"key_points":{"type":"array","minItems":3,"items":{"type":"string","minLength":5}},` +
	`"sources":{"type":"array","minItems":1,"items":{"type":"string","pattern":"\\.md$"}}}}`)

func researchScenario() Scenario {
	p := &plan.Plan{Goal: "Summarise how an off-grid clinic keeps vaccines in the cold chain",
		Answer: "Give the validated report: title, summary and key points, citing the source documents.",
		Steps: []plan.Step{
			{ID: "retrieve", Tool: "search_notes", Args: map[string]any{"query": "vaccine cold chain temperature freeze solar refrigerator excursion", "top_k": 3}},
			{ID: "analyse", Task: "Analyse the retrieved passages about the vaccine cold chain: the safe temperature range, the main risks, and the equipment that suits an off-grid clinic. Passages: ${retrieve.passages}",
				Tier: plan.TierFast, DependsOn: []string{"retrieve"}},
			{ID: "summarise", Task: "Summarise the analysis for a clinic manager in three sentences: ${analyse}",
				Tier: plan.TierStandard, DependsOn: []string{"analyse"}},
			{ID: "validate", Task: "Validate the summary against the passages and return it as the report JSON, listing the source documents. Summary: ${summarise}",
				Tier: plan.TierFast, DependsOn: []string{"summarise", "retrieve"}, Output: reportSchema},
		}}
	analysis := "Safe range: 2 °C to 8 °C for routine vaccines. Risks: freezing destroys freeze-sensitive vaccines (hepatitis B, DTP, HPV) invisibly; " +
		"heat exposure is cumulative (tracked by VVMs); excursions must be recorded and reported, 30-DTR alarms flag heat and freezing. " +
		"Equipment: solar direct-drive refrigerators store cold in an ice bank with no battery and hold 2-8 °C for three days without sun."
	summary := "Keep vaccines between 2 °C and 8 °C and guard against freezing above all, since one freeze can ruin freeze-sensitive vaccines without visible damage. " +
		"A solar direct-drive refrigerator suits an off-grid clinic: no battery, an ice bank, and three days of autonomy. " +
		"Log temperatures twice a day, read the 30-day recorder, and report every excursion to the district cold chain officer."
	report := mustJSON(map[string]any{
		"title":   "Keeping vaccines cold in an off-grid clinic",
		"summary": summary,
		"key_points": []string{"Store routine vaccines at 2 °C to 8 °C", "Freezing ruins freeze-sensitive vaccines invisibly: prevent it first",
			"Solar direct-drive fridges need no battery and hold temperature three days without sun", "Record and report every temperature excursion"},
		"sources": []string{"cold-chain-basics.md", "solar-direct-drive.md", "temperature-excursions.md"},
	})
	answer := "Keeping vaccines cold in an off-grid clinic [validate]: store them at 2 °C to 8 °C and prevent freezing, which ruins freeze-sensitive vaccines invisibly [analyse]. " +
		"A solar direct-drive refrigerator needs no battery and holds temperature for three days without sun [summarise]. " +
		"Log temperatures twice a day and report every excursion. Sources: cold-chain-basics.md, solar-direct-drive.md, temperature-excursions.md [retrieve]."
	return Scenario{
		Name:    NameResearch,
		Request: "Research how our off-grid clinic should keep vaccines in the cold chain, and give me a validated summary with sources.",
		Plan:    p,
		Tasks: map[string]Task{
			"analyse":   {Marker: "Analyse the retrieved passages about the vaccine cold chain", Answer: analysis},
			"summarise": {Marker: "Summarise the analysis for a clinic manager", Answer: summary},
			"validate":  {Marker: "Validate the summary against the passages", Answer: report},
		},
		Answer: answer,
		React: []ReactAction{
			{Tool: "search_notes", Args: map[string]any{"query": "vaccine cold chain temperature freeze solar refrigerator excursion", "top_k": 3}, Note: "search the notes"},
		},
		ReactFinal: answer,
		Expect: Expect{
			Steps: []StepExpect{
				{Step: "retrieve", Tool: "search_notes", Facts: []string{"cold-chain-basics.md", "solar-direct-drive.md", "temperature-excursions.md"}},
				{Step: "analyse", Facts: []string{"2 °C to 8 °C", "freez"}},
				{Step: "summarise", Facts: []string{"solar direct-drive"}},
				{Step: "validate", Facts: []string{"key_points", "solar-direct-drive.md"}},
			},
			Facts:        []string{"2 °C to 8 °C", "freez", "solar direct-drive", "cold-chain-basics.md"},
			OutputSchema: map[string]json.RawMessage{"validate": reportSchema},
		},
	}
}

func replanScenario() Scenario {
	decideTask := "Decide whether the supply boat can sail to Station Bravo on Thursday: it may sail if gusts stay below 25 kt and waves below 2 m, arriving near high tide."
	p := &plan.Plan{Goal: "Decide whether the supply boat can reach Station Bravo on Thursday",
		Answer: "Say whether the boat can sail on Thursday, with the gusts, wave height and the high tide time.",
		Steps: []plan.Step{
			{ID: "wind", Tool: "station_forecast", Args: map[string]any{"station": "BRAVO-AWS"}},
			{ID: "tide", Tool: "tide_table", Args: map[string]any{"harbour": "Station Bravo", "day": "Thursday"}},
			{ID: "decide", Task: decideTask + " Wind: ${wind}. Tide: ${tide}.", Tier: plan.TierFast, DependsOn: []string{"wind", "tide"}},
		}}
	replan := &plan.Plan{Goal: p.Goal, Answer: p.Answer,
		Steps: []plan.Step{
			{ID: "regional_wind", Tool: "regional_forecast", Args: map[string]any{"region": "North Sound", "day": "Thursday"}},
			{ID: "decide", Task: decideTask + " Wind: ${regional_wind}. Tide: ${tide}.", Tier: plan.TierFast, DependsOn: []string{"regional_wind"}},
		}}
	decision := "Yes: Thursday is safe to sail. Gusts reach 18 kt (below 25) and waves 1.2 m (below 2 m); high tide at Station Bravo is at 10:40 (2.9 m), so plan to arrive around 10:00-11:00."
	answer := "The boat can sail to Station Bravo on Thursday [decide]: the North Sound forecast gives gusts of 18 kt and 1.2 m waves [regional_wind] " +
		"(the station's own sensor is offline), and high tide is at 10:40 [tide]."
	return Scenario{
		Name:    NameReplan,
		Request: "Can the supply boat reach Station Bravo on Thursday? Check the wind forecast for the route and the harbour tide.",
		Plan:    p,
		Replan:  replan,
		Tasks:   map[string]Task{"decide": {Marker: "Decide whether the supply boat can sail to Station Bravo", Answer: decision}},
		Answer:  answer,
		React: []ReactAction{
			{Tool: "station_forecast", Args: map[string]any{"station": "BRAVO-AWS"}, Note: "get the station's wind forecast"},
			{Tool: "regional_forecast", Args: map[string]any{"region": "North Sound", "day": "Thursday"}, Note: "the station is offline: use the regional forecast"},
			{Tool: "tide_table", Args: map[string]any{"harbour": "Station Bravo", "day": "Thursday"}, Note: "get the tide"},
		},
		ReactFinal: answer,
		Expect: Expect{
			Steps: []StepExpect{
				{Step: "tide", Tool: "tide_table", Facts: []string{"10:40"}},
				{Step: "regional_wind", Tool: "regional_forecast", Facts: []string{`"max_gust_kt":18`}},
				{Step: "decide", Facts: []string{"18 kt", "safe"}},
			},
			Facts:   []string{"Thursday", "18 kt", "1.2 m", "10:40"},
			Replans: 1,
		},
	}
}

func templateScenario() Scenario {
	answer := "Draft purchase order for warehouse W2 [draft_po]: GLV-NIT-M x60 ($450.00), SYR-5ML x1000 ($120.00), ORS-SACHET x200 ($70.00), " +
		"total $640.00 [draft_po]; the last item (ORS-SACHET) arrives in 9 days [lead_times]."
	return Scenario{
		Name:     NameTemplate,
		Request:  "Check low stock in warehouse W2 and draft a reorder.",
		Workflow: "low_stock_reorder",
		Params:   map[string]any{"warehouse": "W2"},
		Tasks: map[string]Task{"draft_po": {Marker: "Draft a purchase order for the low-stock items",
			ToolCalls: []ToolCall{{Name: "calc", Args: map[string]any{"expression": "60*7.5 + 1000*0.12 + 200*0.35"}}},
			Answer:    "PO for W2: GLV-NIT-M x60 at $7.50 = $450.00; SYR-5ML x1000 at $0.12 = $120.00; ORS-SACHET x200 at $0.35 = $70.00. Total $640.00. Slowest lead time: ORS-SACHET, 9 days."}},
		Answer: answer,
		React: []ReactAction{
			{Tool: "list_low_stock", Args: map[string]any{"warehouse": "W2"}, Note: "list low stock"},
			{Tool: "supplier_lead_times", Args: map[string]any{"warehouse": "W2"}, Note: "get lead times"},
			{Tool: "calc", Args: map[string]any{"expression": "60*7.5 + 1000*0.12 + 200*0.35"}, Note: "price the order"},
		},
		ReactFinal: answer,
		Expect: Expect{
			Steps: []StepExpect{
				{Step: "low_stock", Tool: "list_low_stock", Facts: []string{"GLV-NIT-M", "ORS-SACHET"}},
				{Step: "lead_times", Tool: "supplier_lead_times", Facts: []string{`"ORS-SACHET":9`}},
				{Step: "draft_po", Facts: []string{"640.00"}},
			},
			Facts:    []string{"W2", "640.00", "9 days"},
			Parallel: [][]string{{"low_stock", "lead_times"}},
		},
	}
}
