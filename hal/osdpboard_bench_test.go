package hal_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/osdp/osdpsim"
	"github.com/portier-io/portier/hal/simtime"
	"github.com/portier-io/portier/hal/wiegand"
)

// nopRelay is a relay nobody watches.
type nopRelay struct{}

func (nopRelay) Set(bool) error { return nil }

// decisions records when each door's access decision was recorded.
type decisions struct {
	mu   sync.Mutex
	seen map[string]chan agent.Event
}

func (d *decisions) Record(_ context.Context, e agent.Event) error {
	if e.Type == agent.EventAccessGranted || e.Type == agent.EventAccessDenied {
		d.mu.Lock()
		ch := d.seen[e.Door]
		d.mu.Unlock()
		ch <- e
	}
	return nil
}

// BenchmarkOSDPCardToDecision reports the 99th percentile from a card
// entering one of 8 OSDP readers on one bus at 115200 baud (a random reader,
// a random phase of the poll cycle) to the door's access decision recorded:
// the bus part in simulated time (every byte at its real time on the line,
// readers answering 3 ms after a command, Secure Channel on, the default
// 50 ms poll interval), plus the real time the gateway takes from the
// reader's report to the recorded decision — the hal runtime decoding the
// Wiegand bits, the door controller, agent.Decider over an in-memory cache.
// The goal is one poll cycle plus 10 ms; it also reports the cycle and the
// gateway's real-time part alone.
func BenchmarkOSDPCardToDecision(b *testing.B) {
	const readers, cards = 8, 2000
	fr, err := wiegand.StandardFormats()[0].Encode(12, 1001)
	require.NoError(b, err)
	var p99, gw99, cycle time.Duration
	for b.Loop() {
		snap := agenttest.Site()
		snap.Credentials = append(snap.Credentials, agent.Credential{Key: "wg:H10301:12:1001", Kind: agent.KindWiegand, Origin: agent.OriginLocal, UserID: "u-ada"})
		dec := &agent.Decider{Cache: agenttest.NewCache(snap), PINKey: agenttest.PINKey()}
		clock := simtime.New()
		sink := &decisions{seen: map[string]chan agent.Event{}}
		var pds []*osdpsim.PD
		bus := hal.OSDPBus{Name: "rs485-0", Port: "sim", Baud: 115200}
		ctls := map[string]*agent.Controller{}
		var cfgs []agent.ControllerConfig
		for i := range readers {
			door, addr := fmt.Sprintf("d%d", i+1), byte(i+1)
			pd := osdpsim.NewPD(osdpsim.Config{Addr: addr, Key: keyA, Identity: hid})
			pds = append(pds, pd)
			bus.Readers = append(bus.Readers, hal.OSDPReader{Door: door, Addr: addr, Key: keyA, Decoder: wiegand.NewDecoder()})
			sink.seen[door] = make(chan agent.Event, 16)
			cfgs = append(cfgs, agent.ControllerConfig{Door: agent.Door{ID: door, Mode: agent.ModeCardOrPIN, LockIDs: []string{agenttest.LockFront}},
				Relay: nopRelay{}, Decider: dec, Events: sink})
		}
		doors, err := agent.NewDoors(cfgs...)
		require.NoError(b, err)
		for _, id := range doors.DoorIDs() {
			ctls[id], _ = doors.Get(id)
		}
		bus.Opened = simLine{osdpsim.NewLine(clock, 115200, pds...)}
		rt := hal.NewOSDPRuntime([]hal.OSDPBus{bus}, hal.OSDPOptions{Clock: clock, Rand: &counter{}})

		ctx, cancel := context.WithCancel(context.Background())
		go doors.Run(ctx)
		// The decision is timed on the bus's goroutine, which waits for it:
		// the simulated bus runs flat out in simulated time and would
		// otherwise take the CPU a real bus leaves idle between polls.
		type timed struct {
			at   time.Time     // simulated: the report reached the gateway
			took time.Duration // real: report to recorded decision
			ev   agent.Event
		}
		reports := make(chan timed, 1)
		online := make(chan struct{}, readers)
		ran := make(chan struct{})
		go func() {
			defer close(ran)
			rt.Run(ctx, func(e hal.Event) {
				switch e.Kind {
				case hal.EventReader:
					if e.Reader.State == agent.ReaderOnline {
						online <- struct{}{}
					}
				case hal.EventCredential:
					start := time.Now()
					if err := ctls[e.Door].Present(e.Credential); err != nil {
						b.Error(err)
					}
					ev := <-sink.seen[e.Door]
					reports <- timed{e.At, time.Since(start), ev}
				}
			})
		}()
		for range readers {
			<-online
		}
		rnd := rand.New(rand.NewPCG(7, 11))
		polls := func() uint64 {
			var n uint64
			for _, h := range rt.Readers() {
				n += h.Polls
			}
			return n
		}
		t0, p0 := clock.Now(), polls()
		lat := make([]time.Duration, 0, cards)
		gw := make([]time.Duration, 0, cards)
		for range cards {
			arrive := clock.Now().Add(time.Duration(rnd.Int64N(int64(200 * time.Millisecond))))
			pds[rnd.IntN(readers)].PresentCardAt(arrive, fr.Bits, osdpsim.WiegandBytes(fr.Raw, fr.Bits))
			r := <-reports
			if r.ev.Type != agent.EventAccessGranted {
				b.Fatalf("%s: %s %s", r.ev.Door, r.ev.Type, r.ev.Reason)
			}
			lat, gw = append(lat, r.at.Sub(arrive)+r.took), append(gw, r.took)
		}
		cycle = time.Duration(float64(clock.Since(t0)) / (float64(polls()-p0) / readers))
		cancel()
		<-ran
		slices.Sort(lat)
		slices.Sort(gw)
		p99, gw99 = lat[len(lat)*99/100], gw[len(gw)*99/100]
	}
	b.ReportMetric(float64(p99)/float64(time.Millisecond), "osdp_card_to_decision_p99_ms")
	b.ReportMetric(float64(gw99)/float64(time.Millisecond), "osdp_report_to_decision_p99_ms")
	b.ReportMetric(float64(cycle)/float64(time.Millisecond), "osdp_card_poll_cycle_ms")
}
