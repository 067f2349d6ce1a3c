package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/internal/events"
)

func (env *testEnv) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(env.url, "http") + "/api/v1/events" + query
}

func (env *testEnv) dial(ctx context.Context, query string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	if opts == nil {
		opts = &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + env.token}}}
	}
	c, resp, err := websocket.Dial(ctx, env.wsURL(query), opts)
	if c != nil {
		c.SetReadLimit(4 << 20)
	}
	return c, resp, err
}

// wsMsg is any message of the stream: an event or the resume hint.
type wsMsg struct {
	Seq   int64           `json:"seq"`
	Type  string          `json:"type"`
	RunID string          `json:"run_id"`
	Since int64           `json:"since"`
	Data  json.RawMessage `json:"data"`
}

func readMsg(ctx context.Context, t *testing.T, c *websocket.Conn) (wsMsg, error) {
	t.Helper()
	_, b, err := c.Read(ctx)
	if err != nil {
		return wsMsg{}, err
	}
	var m wsMsg
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("message %s: %v", b, err)
	}
	return m, nil
}

func TestStreamBacklogThenLive(t *testing.T) {
	env := newTestEnv(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for i := range 10 {
		env.bus.Publish(events.StepStatus, "r"+strconv.Itoa(i%2), StepStatusData{StepID: "s", Status: "running"})
	}
	c, _, err := env.dial(ctx, "?since=4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for want := int64(5); want <= 10; want++ {
		m, err := readMsg(ctx, t, c)
		if err != nil || m.Seq != want {
			t.Fatalf("backlog: got seq %d (%v), want %d", m.Seq, err, want)
		}
	}
	env.bus.Publish(events.RunStatus, "r1", RunStatusData{Status: "done"})
	if m, err := readMsg(ctx, t, c); err != nil || m.Seq != 11 || m.Type != events.RunStatus {
		t.Fatalf("live: %+v %v", m, err)
	}

	// ?run= keeps one run's events; no since means live only.
	c2, _, err := env.dial(ctx, "?run=r1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	// The subscription is made before the upgrade answers, so this event
	// cannot be missed.
	env.bus.Publish(events.StepStatus, "r0", nil)
	env.bus.Publish(events.StepStatus, "r1", nil)
	if m, err := readMsg(ctx, t, c2); err != nil || m.RunID != "r1" || m.Seq != 13 {
		t.Fatalf("filtered: %+v %v", m, err)
	}
}

// slowDrops reads agentd_websocket_slow_drops_total.
func slowDrops(t *testing.T, m *Metrics) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "agentd_websocket_slow_drops_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

func TestStreamDropsASlowClientWithAResumeHint(t *testing.T) {
	var m *Metrics
	env := newTestEnv(t, func(_ *Config, d *Deps) { d.WSBuffer = 8; m = d.Metrics })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, _, err := env.dial(ctx, "?since=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	// The client reads nothing while big events fill the socket buffers and
	// the subscription's buffer of 8: the bus must drop it, not wait.
	big := strings.Repeat("x", 256<<10)
	start := time.Now()
	const n = 200
	for range n {
		env.bus.Emit("r", events.StepStatusData{StepID: "s", Status: "running", Error: big})
	}
	// Not a speed target (the machine is shared): a bus that waited for the
	// stuck client would not finish 200 publishes at all, so any bound far
	// above the normal milliseconds tells the two apart.
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("publishing to a stuck client took %v: the bus waited for it", d)
	}
	var last int64
	var resume *wsMsg
	for {
		m, err := readMsg(ctx, t, c)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("stream ended with %v, want close 1008 (policy violation)", err)
			}
			break
		}
		if m.Type == "resume" {
			resume = &m
			continue
		}
		if m.Seq != last+1 {
			t.Fatalf("gap: seq %d after %d", m.Seq, last)
		}
		last = m.Seq
	}
	if resume == nil || resume.Since != last || last >= n {
		t.Fatalf("resume %+v after last seq %d; want since=%d < %d", resume, last, last, n)
	}
	if got := slowDrops(t, m); got != 1 {
		t.Errorf("agentd_websocket_slow_drops_total = %v, want 1", got)
	}
	// Resuming from the hint continues with no gap.
	c2, _, err := env.dial(ctx, "?since="+strconv.FormatInt(resume.Since, 10), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	if m, err := readMsg(ctx, t, c2); err != nil || m.Seq != last+1 {
		t.Fatalf("after resume: %+v %v, want seq %d", m.Seq, err, last+1)
	}
}

func TestStreamOriginAndAuth(t *testing.T) {
	env := newTestEnv(t, func(c *Config, _ *Deps) { c.AllowedOrigins = []string{"dash.example.com", "https://*.site.example"} })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	host := strings.TrimPrefix(env.url, "http://")
	bearer := http.Header{"Authorization": {"Bearer " + env.token}}
	cases := []struct {
		name   string
		header http.Header
		status int // 0: accepted
	}{
		{"no token", http.Header{"Origin": {"http://" + host}}, 401},
		{"wrong token", http.Header{"Authorization": {"Bearer nope-nope-nope-nope"}}, 401},
		{"same origin", http.Header{"Origin": {"http://" + host}, "Authorization": bearer["Authorization"]}, 0},
		{"no origin (not a browser)", bearer, 0},
		{"foreign origin", http.Header{"Origin": {"http://evil.example"}, "Authorization": bearer["Authorization"]}, 403},
		{"allowed host", http.Header{"Origin": {"http://dash.example.com"}, "Authorization": bearer["Authorization"]}, 0},
		{"allowed scheme pattern", http.Header{"Origin": {"https://a.site.example"}, "Authorization": bearer["Authorization"]}, 0},
		{"pattern wrong scheme", http.Header{"Origin": {"http://a.site.example"}, "Authorization": bearer["Authorization"]}, 403},
		{"cookie", http.Header{"Origin": {"http://" + host}, "Cookie": {SessionCookie + "=" + env.token}}, 0},
		{"wrong cookie", http.Header{"Origin": {"http://" + host}, "Cookie": {SessionCookie + "=nope"}}, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, resp, err := env.dial(ctx, "", &websocket.DialOptions{HTTPHeader: c.header})
			if c.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				env.bus.Publish("test", "", nil)
				if _, err := readMsg(ctx, t, conn); err != nil {
					t.Errorf("no event: %v", err)
				}
				conn.CloseNow()
				return
			}
			if err == nil {
				conn.CloseNow()
				t.Fatalf("accepted, want %d", c.status)
			}
			if resp == nil || resp.StatusCode != c.status {
				t.Fatalf("err %v resp %v, want %d", err, resp, c.status)
			}
		})
	}
	resp, b := env.do("GET", "/api/v1/events?since=-3", "", true)
	if resp.StatusCode != 400 || decode[ErrorBody](t, b).Error.Code != "bad_since" {
		t.Errorf("bad since: %d %s", resp.StatusCode, b)
	}
}

func TestStreamPingsAndClosesOnShutdown(t *testing.T) {
	env := newTestEnv(t, func(_ *Config, d *Deps) { d.WSPing = 30 * time.Millisecond })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var pings atomic.Int32
	c, _, err := env.dial(ctx, "", &websocket.DialOptions{
		HTTPHeader:     http.Header{"Authorization": {"Bearer " + env.token}},
		OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	errc := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.Read(ctx); err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	if pings.Load() < 2 {
		t.Errorf("%d pings in 200ms at a 30ms interval", pings.Load())
	}
	env.stop()
	select {
	case err := <-errc:
		if websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("closed with %v, want 1001 going away", err)
		}
	case <-ctx.Done():
		t.Fatal("stream still open after shutdown")
	}
}

// TestStreamKeepsAnIdleClient: a client connected through many ping
// intervals with nothing to receive is not dropped, whether it waits in a
// read or reads nothing at all for a while (pongs then come late).
func TestStreamKeepsAnIdleClient(t *testing.T) {
	env := newTestEnv(t, func(_ *Config, d *Deps) { d.WSPing = 5 * time.Millisecond })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var pings atomic.Int32
	reading, _, err := env.dial(ctx, "", &websocket.DialOptions{
		HTTPHeader:     http.Header{"Authorization": {"Bearer " + env.token}},
		OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer reading.CloseNow()
	notReading, _, err := env.dial(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer notReading.CloseNow()
	got := make(chan wsMsg, 1)
	errc := make(chan error, 1)
	go func() {
		m, err := readMsg(ctx, t, reading)
		if err != nil {
			errc <- err
			return
		}
		got <- m
	}()
	// 60 ping intervals, without a pong from notReading.
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("idle reading client dropped: %v", err)
	default:
	}
	if pings.Load() < 3 {
		t.Errorf("%d pings in 60 intervals", pings.Load())
	}
	ev := env.bus.Emit("r", events.RunStatusData{Status: "running"})
	for name, read := range map[string]func() (wsMsg, error){
		"reading": func() (wsMsg, error) {
			select {
			case m := <-got:
				return m, nil
			case err := <-errc:
				return wsMsg{}, err
			}
		},
		"not reading": func() (wsMsg, error) { return readMsg(ctx, t, notReading) },
	} {
		if m, err := read(); err != nil || m.Seq != ev.Seq {
			t.Errorf("%s client: %+v, %v; want the event %d", name, m, err, ev.Seq)
		}
	}
}
