package sqlite_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/sim"
	"github.com/portier-io/portier/sqlite"
)

// tapBenchTaps is how many distinct granted cards BenchmarkTapToRelayLargeCache
// presents (each once), and tapBenchBudget bounds the time it may take.
const (
	tapBenchTaps   = 20000
	tapBenchBudget = 45 * time.Second
	tapBenchWarmup = 50
)

// BenchmarkTapToRelayLargeCache measures a card reported by a simulated
// reader until the door relay is energised, in process, wired the way
// `portier run` wires a door: the hal/sim board's event loop hands the card to an
// agent.Controller (system clock, default timings) that decides from the
// 1,000,000-credential SQLite cache and records every event in the same
// database's outbox. The relay is the sim board's output; its change
// subscription carries the time the line switched.
//
// Each tap is a full door cycle, as at a real door: tap → relay on → door
// opens → door closes → relay off (early relock) → the controller has
// recorded every event and is idle. Only tap → relay on is timed; the next
// member taps once the previous one is through. Every card is a different,
// known credential granted at the door (enrolled and local UIDs), so the
// lookup reads rows the SQLite page cache has not seen before.
//
//	tap_to_relay_p50_us, tap_to_relay_p99_us   latency percentiles
func BenchmarkTapToRelayLargeCache(b *testing.B) {
	gen, shared := largeCache()
	ctx := context.Background()

	// A copy: the outbox grows with this benchmark's events, and the shared
	// cache must stay as other benchmarks expect it.
	path := filepath.Join(b.TempDir(), "tap.db")
	copyFile(b, shared, path)
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(b, err)
	defer db.Close()

	// Cards the door grants now and a while from now (a schedule boundary
	// must not fall inside the run): enrolled and local UIDs, as an MFRC522
	// reads them.
	dc := &agent.Decider{Cache: db, PINKey: agenttest.PINKey()}
	now := time.Now()
	var cards [][]byte
	for _, p := range gen.Samples {
		if p.Kind != agent.KindUID {
			continue
		}
		if !grantedAt(b, dc, gen.Door, p, now) || !grantedAt(b, dc, gen.Door, p, now.Add(5*time.Minute)) {
			continue
		}
		cards = append(cards, p.UID)
		if len(cards) == tapBenchWarmup+tapBenchTaps {
			break
		}
	}
	require.Len(b, cards, tapBenchWarmup+tapBenchTaps, "not enough granted cards at the benchmark door")
	// The filter above read every card's row: reopen so the timed taps find
	// a cold SQLite page cache, as after a restart.
	require.NoError(b, db.Close())
	db, err = sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(b, err)

	door := gen.Door.ID
	board, err := sim.New(hal.Config{Driver: hal.DriverSim, Doors: map[string]hal.DoorWiring{door: {
		MFRC522:     &hal.MFRC522Config{SPI: "SPI0.0"},
		Relay:       &hal.OutputConfig{Pin: "GPIO17", ActiveLow: true},
		GreenLED:    &hal.OutputConfig{Pin: "GPIO27"},
		RedLED:      &hal.OutputConfig{Pin: "GPIO22"},
		DoorContact: &hal.InputConfig{Pin: "GPIO4", Switch: "nc"},
	}}}, []string{door}, sim.Options{})
	require.NoError(b, err)
	defer board.Close()
	changes, unsubscribe := board.Subscribe()
	defer unsubscribe()

	ctl := agent.NewController(agent.ControllerConfig{
		Door:     gen.Door,
		Relay:    boardOutput{board, door, hal.Relay},
		GreenLED: boardOutput{board, door, hal.GreenLED},
		RedLED:   boardOutput{board, door, hal.RedLED},
		Decider:  &agent.Decider{Cache: db, PINKey: agenttest.PINKey()},
		Events:   db, Enrolments: db,
	})
	runCtx, cancel := context.WithCancel(ctx)
	ctlDone := make(chan error, 1)
	go func() { ctlDone <- ctl.Run(runCtx) }()
	tapped := make(chan time.Time, 1) // when the board reported each card
	go func() {
		_ = board.Run(runCtx, func(ev hal.Event) {
			// As the daemon's dispatch: never block the board.
			switch ev.Kind {
			case hal.EventCredential:
				tapped <- ev.At
				_ = ctl.Present(ev.Credential)
			case hal.EventInput:
				_ = ctl.SetInput(agent.DoorInput(ev.Input), ev.Active)
			}
		})
	}()
	defer func() {
		cancel()
		require.NoError(b, <-ctlDone)
		require.NoError(b, db.Close())
	}()
	require.NoError(b, ctl.Flush(ctx))

	relay := func(want bool) time.Time {
		timeout := time.After(5 * time.Second)
		for {
			select {
			case c, ok := <-changes:
				require.True(b, ok, "the board closed")
				if c.Output == hal.Relay {
					require.Equal(b, want, c.On, "relay switched the wrong way")
					return c.At
				}
			case <-timeout:
				b.Fatalf("relay did not switch %v within 5s", want)
			}
		}
	}
	cycle := func(uid []byte) time.Duration {
		// The simulated MFRC522 reads the card first (the real driver over
		// the chip model, ~25 µs of CPU that a real reader spends in its
		// own radio time): timed from the card's event, as before the
		// simulated board read cards through it.
		require.NoError(b, board.Tap(door, uid))
		start := <-tapped
		on := relay(true)
		require.NoError(b, board.SetInput(door, hal.DoorContact, true))
		require.NoError(b, board.SetInput(door, hal.DoorContact, false))
		relay(false)
		require.NoError(b, ctl.Flush(ctx))
		return on.Sub(start)
	}

	for _, uid := range cards[:tapBenchWarmup] {
		cycle(uid)
	}
	b.ResetTimer()
	var lat []time.Duration
	for range b.N {
		lat = lat[:0]
		deadline := time.Now().Add(tapBenchBudget)
		for _, uid := range cards[tapBenchWarmup:] {
			lat = append(lat, cycle(uid))
			if time.Now().After(deadline) {
				break
			}
		}
	}
	b.StopTimer()
	require.GreaterOrEqual(b, len(lat), 1000, "too few taps within %s for a meaningful p99", tapBenchBudget)
	st, err := db.OutboxStats(ctx)
	require.NoError(b, err)
	require.GreaterOrEqual(b, st.Depth, 5*len(lat), "every cycle records granted, relay on, opened, closed and relay off")

	b.ReportMetric(percentile(lat, 0.50), "tap_to_relay_p50_us")
	b.ReportMetric(percentile(lat, 0.99), "tap_to_relay_p99_us")
	if testing.Verbose() { // `make bench` prints the metrics only
		b.Logf("%d taps of distinct granted cards; max %.0f µs; outbox holds %d events", len(lat), percentile(lat, 1), st.Depth)
	}
}

func grantedAt(b *testing.B, dc *agent.Decider, door agent.Door, p agent.Presented, at time.Time) bool {
	d, err := dc.Decide(context.Background(), door, at, p)
	require.NoError(b, err)
	return d.Granted
}

// boardOutput is one door output as the controller sees it (as in
// cmd/portier).
type boardOutput struct {
	b    hal.Board
	door string
	out  hal.Output
}

func (o boardOutput) Set(on bool) error { return o.b.Set(o.door, o.out, on) }

func copyFile(b *testing.B, from, to string) {
	src, err := os.Open(from)
	require.NoError(b, err)
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	require.NoError(b, err)
	_, err = io.Copy(dst, src)
	require.NoError(b, err)
	require.NoError(b, dst.Close())
}
