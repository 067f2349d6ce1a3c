package fallback

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// ordinaryItems are values of everyday requests that carry no identity and
// that a plan needs: years, quantities, dates, times, percentages, prices,
// versions, words. Redaction should leave them alone.
var ordinaryItems = map[string][]string{
	"year":       {"2024", "1998", "2031", "in 2025", "FY2024", "Q3 2024", "2020-2024", "2023/24"},
	"quantity":   {"3 pumps", "12 valves", "250 ml", "1,200 litres", "4.5 kg", "40 ft", "2 x 16 A", "1 500 m", "12 000 l", "step 2 of 5"},
	"date":       {"2024-05-17", "17.05.2024", "05/17/2024", "17/05/2024", "May 17, 2024", "17 May 2024", "2024-05-17 08:30", "2024-05-17T08:30:00Z", "17.05.2024 - 20.05.2024", "2024-05"},
	"time":       {"08:30", "14:05:59", "8 pm", "08:30-17:00", "3h 20m", "90 s", "24/7"},
	"percentage": {"72%", "12.5%", "0.3 %", "99.9%", "50/50"},
	"price":      {"$1,299.00", "€45", "NOK 12 500", "USD 0.05", "£3.20", "1,234,567.89 EUR"},
	"version":    {"v1.2.3", "1.26.8", "llama3.2:3b", "HTTP/2", "IPv6", "UTF-8", "ISO 9001", "COVID-19", "x86_64", "SHA256"},
	"reference":  {"#4471", "ticket 44718", "room 12B", "line 3", "bay 7", "PO 88231", "route E6", "1080p", "5G"},
	"word": {"pump", "Zürich", "São Paulo", "naïve", "internationalization", "get_weather_forecast", "state-of-the-art",
		"troubleshooting", "Arbeitsunfähigkeitsbescheinigung", "sykehusapotekene", "getWeatherForecastForCity",
		"/var/lib/agentd/agentd.db", "README.md", "config.toml", "the author", "keyboard", "monkey",
		"kvalitetssikring", "jordbruksdepartementet", "verantwortungsbewusstsein", "telecommunications"},
	"measurement": {"-4 °C", "1013 hPa", "3.14", "59.91 N", "120/80 mmHg", "38.5 °C", "6.2 bar"},
	// Values default-deny takes although they identify no one: long digit
	// runs and long random-looking words. They are in the measure so that it
	// shows the price of default-deny.
	"lost": {"1 500 000 units", "3.14159265", "-33.868820", "10.0.19045.3803", "Rechtsschutzversicherungsgesellschaften", "iPhone15ProMax-Case"},
}

var ordinaryTemplates = []string{
	"Order %s for the north site.", "The report says %s, please check.", "Summarise: %s", `{"note": "%s"}`,
	"- %s\n- done", "Compare %s with last week", "item: %s\n", "%s", "Due %s; list 3 steps.",
}

// TestRedactOrdinaryText measures what ordinary text loses: the share of
// everyday values (every class but "lost") that reach the remote unchanged.
// It must stay at or above ordinaryKeptThreshold.
const ordinaryKeptThreshold = 0.99

func TestRedactOrdinaryText(t *testing.T) {
	r, err := NewRedactor(testPrivacy)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	kept, total := 0, 0
	classes := slices.Sorted(maps.Keys(ordinaryItems))
	for _, class := range classes {
		values := ordinaryItems[class]
		classKept := 0
		for _, v := range values {
			for _, tmpl := range ordinaryTemplates {
				doc := fmt.Sprintf(tmpl, v)
				if rng.IntN(2) == 0 {
					doc = "Hi team. " + doc + " Thanks, 3 pumps left."
				}
				s := r.NewSession()
				out := s.Redact(doc)
				if class != "lost" {
					total++
				}
				if strings.Contains(out, v) {
					if class != "lost" {
						kept++
					}
					classKept++
				} else if tmpl == "%s" {
					t.Logf("%s %q became %q", class, v, out)
				}
				if back := s.Restore(out); back != doc {
					t.Errorf("round trip: %q -> %q -> %q", doc, out, back)
				}
			}
		}
		t.Logf("%-11s kept %3d of %3d", class, classKept, len(values)*len(ordinaryTemplates))
	}
	share := float64(kept) / float64(total)
	t.Logf("everyday values kept: %d / %d (%.1f%%); the class \"lost\" above is what default-deny costs", kept, total, 100*share)
	if share < ordinaryKeptThreshold {
		t.Errorf("everyday values kept %.3f, want >= %.2f", share, ordinaryKeptThreshold)
	}
}
