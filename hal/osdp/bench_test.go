package osdp_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/osdp/osdpsim"
	"github.com/portier-io/portier/hal/simtime"
)

// benchBus is n secure readers on a simulated line in simulated time.
type benchBus struct {
	clock *simtime.Clock
	line  *osdpsim.Line
	pds   []*osdpsim.PD
	cfg   osdp.Config
}

func newBenchBus(n, baud int, poll time.Duration) *benchBus {
	bb := &benchBus{clock: simtime.New()}
	var readers []osdp.ReaderConfig
	for i := range n {
		addr := byte(i + 1)
		readers = append(readers, secureReader(fmt.Sprint("r", addr), addr, key1))
		bb.pds = append(bb.pds, osdpsim.NewPD(osdpsim.Config{Addr: addr, Key: key1, Identity: hid}))
	}
	bb.line = osdpsim.NewLine(bb.clock, baud, bb.pds...)
	bb.cfg = osdp.Config{Port: bb.line, Baud: baud, Readers: readers, Clock: bb.clock, PollInterval: poll, Rand: &counter{}}
	return bb
}

// stopAt is a port that ends the run once simulated time passes `end`.
type stopAt struct {
	*osdpsim.Line
	clock *simtime.Clock
	mu    sync.Mutex
	end   time.Time
	stop  context.CancelFunc
}

func (s *stopAt) Write(p []byte) (int, error) {
	s.mu.Lock()
	if !s.end.IsZero() && s.clock.Now().After(s.end) {
		s.stop()
	}
	s.mu.Unlock()
	return s.Line.Write(p)
}

func (s *stopAt) setEnd(t time.Time) {
	s.mu.Lock()
	s.end = t
	s.mu.Unlock()
}

func totalPolls(b *osdp.Bus) uint64 {
	var n uint64
	for _, s := range b.Status() {
		n += s.Polls
	}
	return n
}

// pollCycle runs n readers polled back to back for 20 s of simulated time
// and returns the bus time of one pass over all of them.
func pollCycle(b *testing.B, n, baud int) time.Duration {
	bb := newBenchBus(n, baud, time.Nanosecond) // no rest between passes
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := &stopAt{Line: bb.line, clock: bb.clock, stop: cancel}
	bb.cfg.Port = port
	var bus *osdp.Bus
	var t0 time.Time
	var p0 uint64
	online := 0
	bb.cfg.Report = func(r osdp.Report) {
		if r.Kind == osdp.ReportOffline {
			b.Errorf("reader offline: %s", r)
		}
		if r.Kind == osdp.ReportOnline {
			if online++; online == n {
				t0, p0 = bb.clock.Now(), totalPolls(bus)
				port.setEnd(t0.Add(20 * time.Second))
			}
		}
	}
	bus, err := osdp.NewBus(bb.cfg)
	require.NoError(b, err)
	require.NoError(b, bus.Run(ctx))
	polls := totalPolls(bus) - p0
	require.NotZero(b, polls)
	return time.Duration(float64(bb.clock.Since(t0)) / (float64(polls) / float64(n)))
}

// BenchmarkPollCycle reports the time of one polling pass over all readers
// of a bus, Secure Channel on, polls back to back, every byte taking its
// real time at the baud rate and each reader answering after
// osdpsim.DefaultProcessDelay (3 ms).
func BenchmarkPollCycle(b *testing.B) {
	for _, c := range []struct{ n, baud int }{{1, 9600}, {8, 9600}, {8, 115200}} {
		b.Run(fmt.Sprintf("%d_%d", c.n, c.baud), func(b *testing.B) {
			var cycle time.Duration
			for b.Loop() {
				cycle = pollCycle(b, c.n, c.baud)
			}
			b.ReportMetric(float64(cycle)/float64(time.Millisecond), fmt.Sprintf("osdp_poll_cycle_ms_%d_%d", c.n, c.baud))
		})
	}
}

// BenchmarkCardToReport reports the 99th percentile, in simulated time,
// from a card entering one of 8 readers at 115200 baud (random reader,
// random phase of the poll cycle) to the card report reaching its consumer:
// the bus's part of a card's way to a decision (hal's
// BenchmarkOSDPCardToDecision adds the door's decision). It also reports the
// mean poll cycle of the same run at the default poll interval.
func BenchmarkCardToReport(b *testing.B) {
	const readers, cards = 8, 2000
	var p99, cycle time.Duration
	for b.Loop() {
		bb := newBenchBus(readers, 115200, 0)
		ctx, cancel := context.WithCancel(context.Background())
		rnd := rand.New(rand.NewPCG(7, 11))
		allowed := map[uint64]bool{h10301: true}
		var lat []time.Duration
		var arrive, t0 time.Time
		var p0 uint64
		var bus *osdp.Bus
		online := 0
		next := func() {
			arrive = bb.clock.Now().Add(time.Duration(rnd.Int64N(int64(200 * time.Millisecond))))
			bb.pds[rnd.IntN(readers)].PresentCardAt(arrive, 26, osdpsim.WiegandBytes(h10301, 26))
		}
		bb.cfg.Report = func(r osdp.Report) {
			switch r.Kind {
			case osdp.ReportOffline:
				b.Errorf("reader offline: %s", r)
			case osdp.ReportOnline:
				if online++; online == readers {
					t0, p0 = bb.clock.Now(), totalPolls(bus)
					next()
				}
			case osdp.ReportCard:
				v, _ := r.Card.Uint64()
				if !allowed[v] {
					b.Errorf("card %x", v)
				}
				lat = append(lat, bb.clock.Since(arrive))
				if len(lat) == cards {
					polls := totalPolls(bus) - p0
					cycle = time.Duration(float64(bb.clock.Since(t0)) / (float64(polls) / readers))
					cancel()
					return
				}
				next()
			}
		}
		var err error
		bus, err = osdp.NewBus(bb.cfg)
		require.NoError(b, err)
		require.NoError(b, bus.Run(ctx))
		cancel()
		require.Len(b, lat, cards)
		slices.Sort(lat)
		p99 = lat[len(lat)*99/100]
	}
	b.ReportMetric(float64(p99)/float64(time.Millisecond), "osdp_card_to_report_p99_ms")
	b.ReportMetric(float64(cycle)/float64(time.Millisecond), "osdp_report_poll_cycle_ms")
}

// BenchmarkIdleCPU reports the CPU time of the process running the bus,
// as a share of one core, while it polls 8 idle secure readers at the
// default interval over a real pseudo-terminal at 115200 baud in real time,
// for 10 s of wall time. The simulated readers run in a child process (this
// test binary, see TestMain) so that they are not counted. It also reports
// the CPU time and the context switches (the process's threads waking up
// and going to sleep) per poll, and what one bare sleep and wake-up of a
// thread costs on this host: a poll needs at least two (the reply, the
// idle-line gap), so that cost sets the floor of the figure, and it differs
// by an order of magnitude between a virtual machine and a gateway's CPU.
func BenchmarkIdleCPU(b *testing.B) {
	const readers = 8
	var pct, user, perPoll, switches, wake float64
	for b.Loop() {
		wake = wakeupCost(b)
		ptm, pts, err := pty.Open()
		require.NoError(b, err)
		sim := exec.Command(os.Args[0])
		sim.Env = append(os.Environ(), fmt.Sprintf("%s=%d", simReadersEnv, readers))
		sim.ExtraFiles = []*os.File{ptm}
		sim.Stderr = os.Stderr
		require.NoError(b, sim.Start())
		require.NoError(b, ptm.Close()) // the child holds it now
		var rcs []osdp.ReaderConfig
		for i := range readers {
			addr := byte(i + 1)
			rcs = append(rcs, secureReader(fmt.Sprint("r", addr), addr, key1))
		}
		ctx, cancel := context.WithCancel(context.Background())
		port, err := osdp.OpenSerial(pts.Name(), 115200)
		require.NoError(b, err)
		// The port holds the line now. A second descriptor of the same tty
		// (the daemon never has one) would sit in the poller and wake it
		// for output on every poll, which the port itself is built to avoid.
		require.NoError(b, pts.Close())
		online := make(chan struct{}, readers)
		bus, err := osdp.NewBus(osdp.Config{Port: port, Baud: 115200, Readers: rcs, Report: func(r osdp.Report) {
			if r.Kind == osdp.ReportOnline {
				online <- struct{}{}
			}
		}})
		require.NoError(b, err)
		ran := make(chan error, 1)
		go func() { ran <- bus.Run(ctx) }()
		for range readers {
			<-online
		}
		var ru0, ru1 syscall.Rusage
		require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru0))
		wall0, polls0 := time.Now(), totalPolls(bus)
		<-time.After(10 * time.Second) // the measurement interval itself
		require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru1))
		wall, polls := float64(time.Since(wall0)), float64(totalPolls(bus)-polls0)
		u := float64(ru1.Utime.Nano() - ru0.Utime.Nano())
		s := float64(ru1.Stime.Nano() - ru0.Stime.Nano())
		pct, user = (u+s)/wall*100, u/wall*100
		perPoll = (u + s) / polls / float64(time.Microsecond)
		switches = float64(ru1.Nvcsw-ru0.Nvcsw+ru1.Nivcsw-ru0.Nivcsw) / polls
		for _, s := range bus.Status() {
			require.True(b, s.Online && s.Secure, "%s", s.Name)
		}
		cancel()
		require.NoError(b, <-ran)
		require.NoError(b, port.Close())
		require.NoError(b, sim.Wait())
	}
	b.ReportMetric(pct, "osdp_idle_cpu_pct")
	b.ReportMetric(user, "osdp_idle_cpu_user_pct")
	b.ReportMetric(perPoll, "osdp_idle_cpu_us_per_poll")
	b.ReportMetric(switches, "osdp_idle_switches_per_poll")
	b.ReportMetric(wake, "osdp_idle_host_wakeup_us")
}

// wakeupCost returns the CPU time, in microseconds, of one sleep of two
// character times at 115200 baud (the bus's idle-line gap) and the wake-up
// after it, in a thread doing nothing else.
func wakeupCost(b *testing.B) float64 {
	const n = 2000
	runtime.LockOSThread() // the thread's own usage is measured
	defer runtime.UnlockOSThread()
	var ru0, ru1 syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_THREAD, &ru0))
	for range n {
		ts := syscall.NsecToTimespec(int64(174 * time.Microsecond))
		_, _, _ = syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
	}
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_THREAD, &ru1))
	cpu := ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano()
	return float64(cpu) / n / float64(time.Microsecond)
}
