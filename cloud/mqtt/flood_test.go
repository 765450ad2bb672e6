package mqtt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/sqlite"
)

// floodSize is how many junk commands the flood sends.
const floodSize = 10_000

// TestCommandFloodIsSummarised: 10,000 junk commands (three causes), then a
// tap. The refusals become a few events — the first of each cause on its
// own, the rest in one commands_refused per cause — so the tap's event is
// not queued behind thousands, and the local history still holds the door
// events from before the flood. Every command is answered.
func TestCommandFloodIsSummarised(t *testing.T) {
	r := commandFlood(t)
	t.Logf("the tap's event reached the broker %s after the tap", r.latency)
	assert.Equal(t, 3*mqtt.DefaultRefusalBurst, r.rejectedEvents, "one by one: the burst of each cause")
	assert.Equal(t, floodSize, r.rejectedEvents+r.summedUp, "every refusal is counted")
	assert.Len(t, r.summaries, 3, "one summary per cause")
	assert.LessOrEqual(t, r.ahead, 3*mqtt.DefaultRefusalBurst, "at most the bursts were recorded between the door events before the flood and the tap")
	assert.True(t, r.historyKept, "the history still holds the door events from before the flood")
}

// BenchmarkCommandFlood reports how long the event of a tap that follows a
// flood of 10,000 junk commands takes to reach the broker.
//
//	cmd_flood_door_event_ms   tap recorded → its event received from the broker
func BenchmarkCommandFlood(b *testing.B) {
	for range b.N {
		b.ReportMetric(float64(commandFlood(b).latency.Microseconds())/1e3, "cmd_flood_door_event_ms")
	}
}

type floodResult struct {
	latency        time.Duration
	rejectedEvents int            // command_rejected events recorded
	summedUp       int            // refusals counted in commands_refused events
	summaries      []agent.Event  // the commands_refused events
	ahead          int            // events recorded between the last door event before the flood and the tap
	historyKept    bool           // every door event from before the flood is in the history
	causes         map[string]int // refusals per type, from the responses
}

// commandFlood runs a link over a real outbox (SQLite behind the event
// spool, as in the daemon) against the embedded broker: door events, a
// flood of junk commands, a tap, then the summaries.
func commandFlood(t testing.TB) floodResult {
	ctx := context.Background()
	broker := startMochi(t, nil)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "portier.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := agenttest.NewClock(t0)
	spool := agent.NewEventSpool(agent.EventSpoolConfig{Store: db, Clock: clock})
	sctx, stopSpool := context.WithCancel(ctx)
	spoolDone := make(chan error, 1)
	go func() { spoolDone <- spool.Run(sctx) }()
	t.Cleanup(func() { stopSpool(); <-spoolDone })

	cfg := sqliteConfig(db, broker.URL())
	cfg.Events, cfg.Clock = spool, clock
	cfg.StateInterval, cfg.OutboxCheck, cfg.TelemetryInterval = time.Hour, time.Hour, time.Hour
	link, err := mqtt.New(cfg)
	require.NoError(t, err)
	lctx, stopLink := context.WithCancel(ctx)
	linkDone := make(chan error, 1)
	go func() { linkDone <- link.Run(lctx) }()
	t.Cleanup(func() { stopLink(); <-linkDone })
	tp := link.Topics()

	// The dashboard: door events with their arrival time, and the answers.
	var mu sync.Mutex
	arrived := map[string]time.Time{} // event detail → arrival
	causes := map[string]int{}
	answers := 0
	dash := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).SetClientID("flood-dash").SetAutoReconnect(false))
	tok := dash.Connect()
	require.True(t, tok.WaitTimeout(waitFor))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { dash.Disconnect(0) })
	tok = dash.Subscribe(tp.Event(mqtt.CategoryAccess), 1, func(_ paho.Client, m paho.Message) {
		var e mqtt.EventPayload
		if json.Unmarshal(m.Payload(), &e) == nil {
			mu.Lock()
			arrived[e.Detail] = time.Now()
			mu.Unlock()
		}
	})
	require.True(t, tok.WaitTimeout(waitFor))
	tok = dash.Subscribe(tp.Response(), 1, func(_ paho.Client, m paho.Message) {
		var p mqtt.ResponsePayload
		if json.Unmarshal(m.Payload(), &p) == nil && p.Error != nil {
			mu.Lock()
			answers++
			causes[p.Error.Type]++
			mu.Unlock()
		}
	})
	require.True(t, tok.WaitTimeout(waitFor))
	count := func(m map[string]time.Time) func() int64 {
		return func() int64 { mu.Lock(); defer mu.Unlock(); return int64(len(m)) }
	}
	waitProgress(t, "the link to connect", func() bool { return link.Status().Connected }, nil)

	// Door events before the flood.
	const before = 20
	for i := range before {
		require.NoError(t, spool.Record(ctx, agent.Event{Type: agent.EventAccessGranted, Door: "front", Detail: fmt.Sprintf("before-%d", i)}))
	}
	waitProgress(t, "the door events before the flood", func() bool { return count(arrived)() == before }, count(arrived))

	// The flood: malformed JSON, expired commands, an unknown command.
	expired := t0.Add(-time.Minute).Format(time.RFC3339)
	window := make([]paho.Token, 0, 512)
	for i := range floodSize {
		var topic, body string
		switch i % 3 {
		case 0:
			topic, body = tp.Command(mqtt.CmdUnlock), fmt.Sprintf(`{"id":"m-%d","door":`, i)
		case 1:
			topic, body = tp.Command(mqtt.CmdUnlock), fmt.Sprintf(`{"id":"e-%d","expires_at":%q,"actor":"flood","door":"front"}`, i, expired)
		default:
			topic, body = tp.Command("open_sesame"), fmt.Sprintf(`{"id":"u-%d","expires_at":%q,"actor":"flood"}`, i, t0.Add(time.Minute).Format(time.RFC3339))
		}
		if len(window) == cap(window) {
			require.True(t, window[0].WaitTimeout(waitFor))
			window = window[1:]
		}
		window = append(window, dash.Publish(topic, 1, false, body))
	}
	for _, tok := range window {
		require.True(t, tok.WaitTimeout(waitFor))
		require.NoError(t, tok.Error())
	}

	// A tap, while the link works through the flood.
	tapped := time.Now()
	require.NoError(t, spool.Record(ctx, agent.Event{Type: agent.EventAccessGranted, Door: "front", Detail: "tap"}))
	waitProgress(t, "the tap's event", func() bool { mu.Lock(); defer mu.Unlock(); return !arrived["tap"].IsZero() }, count(arrived))
	mu.Lock()
	res := floodResult{latency: arrived["tap"].Sub(tapped)}
	mu.Unlock()

	answered := func() int64 { mu.Lock(); defer mu.Unlock(); return int64(answers) }
	waitProgress(t, "every junk command answered", func() bool { return answered() == floodSize }, answered)

	// The interval ends: one summary per cause.
	clock.Advance(mqtt.DefaultRefusalInterval)
	history := func() []agent.Event {
		require.NoError(t, spool.Sync(ctx))
		evs, err := db.Events(ctx, 0, 100_000)
		require.NoError(t, err)
		return evs
	}
	var evs []agent.Event
	waitProgress(t, "the summaries", func() bool {
		evs = history()
		n := 0
		for _, e := range evs {
			if e.Type == agent.EventCommandsRefused {
				n++
			}
		}
		return n == 3
	}, nil)
	var lastBefore, tap int64
	kept := 0
	for _, e := range evs {
		switch {
		case e.Type == agent.EventCommandRejected:
			res.rejectedEvents++
		case e.Type == agent.EventCommandsRefused:
			res.summedUp += e.Count
			res.summaries = append(res.summaries, e)
		case e.Detail == "tap":
			tap = e.Seq
		case e.Type == agent.EventAccessGranted:
			lastBefore = e.Seq
			kept++
		}
	}
	res.ahead = int(tap - lastBefore - 1)
	res.historyKept = kept == before
	res.causes = causes
	return res
}
