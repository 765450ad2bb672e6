package osdp_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/osdp/osdpsim"
	"github.com/portier-io/portier/hal/simtime"
)

// stall is how long a test waits without any report before it fails:
// waits are bounded on progress, never on the total.
const stall = 20 * time.Second

var (
	key1 = [16]byte{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F}
	key2 = [16]byte{0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF}
	hid  = osdp.Identity{Vendor: [3]byte{0x00, 0x06, 0x8E}, Model: 2, Version: 1, Serial: 0x01020304, Firmware: [3]byte{1, 4, 7}}
)

// rig is a bus on a simulated line in simulated time.
type rig struct {
	clock   *simtime.Clock
	line    *osdpsim.Line
	bus     *osdp.Bus
	reports chan osdp.Report
	cmds    chan osdpsim.Command
}

type rigConfig struct {
	baud    int
	readers []osdp.ReaderConfig
	pds     []osdpsim.Config
	tune    func(*osdp.Config)
}

func newRig(t *testing.T, rc rigConfig) (*rig, []*osdpsim.PD) {
	t.Helper()
	if rc.baud == 0 {
		rc.baud = 115200
	}
	r := &rig{clock: simtime.New(), reports: make(chan osdp.Report, 4096), cmds: make(chan osdpsim.Command, 4096)}
	var pds []*osdpsim.PD
	for _, pc := range rc.pds {
		if pc.Identity == (osdp.Identity{}) {
			pc.Identity = hid
		}
		pc.OnCommand = func(c osdpsim.Command) {
			select {
			case r.cmds <- c:
			default:
			}
		}
		pds = append(pds, osdpsim.NewPD(pc))
	}
	r.line = osdpsim.NewLine(r.clock, rc.baud, pds...)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := osdp.Config{
		Port: r.line, Baud: rc.baud, Readers: rc.readers, Clock: r.clock,
		Rand: &counter{},
		Report: func(rep osdp.Report) {
			select {
			case r.reports <- rep:
			case <-ctx.Done():
			}
		},
	}
	if rc.tune != nil {
		rc.tune(&cfg)
	}
	bus, err := osdp.NewBus(cfg)
	require.NoError(t, err)
	r.bus = bus
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return r, pds
}

// counter is a deterministic challenge source.
type counter struct{ n byte }

func (c *counter) Read(p []byte) (int, error) {
	for i := range p {
		c.n++
		p[i] = c.n
	}
	return len(p), nil
}

// waitFor returns the first report matching pred, failing if reports stop
// coming for `stall` or if a report matches fail (may be nil).
func (r *rig) waitFor(t *testing.T, what string, pred func(osdp.Report) bool, fail func(osdp.Report) bool) osdp.Report {
	t.Helper()
	return waitReport(t, r.reports, what, pred, fail)
}

func waitReport(t *testing.T, ch <-chan osdp.Report, what string, pred, fail func(osdp.Report) bool) osdp.Report {
	t.Helper()
	timer := time.NewTimer(stall)
	defer timer.Stop()
	for {
		select {
		case rep := <-ch:
			if pred(rep) {
				return rep
			}
			if fail != nil && fail(rep) {
				t.Fatalf("waiting for %s: got %s", what, rep)
			}
			timer.Reset(stall)
		case <-timer.C:
			t.Fatalf("waiting for %s: no report for %v", what, stall)
		}
	}
}

func kind(k osdp.ReportKind, addr byte) func(osdp.Report) bool {
	return func(r osdp.Report) bool { return r.Kind == k && r.Addr == addr }
}

func offline(r osdp.Report) bool { return r.Kind == osdp.ReportOffline }

// waitCmd returns the next command a PD accepted with the given code.
func (r *rig) waitCmd(t *testing.T, code byte) osdpsim.Command {
	t.Helper()
	timer := time.NewTimer(stall)
	defer timer.Stop()
	for {
		select {
		case c := <-r.cmds:
			if c.Code == code {
				return c
			}
			timer.Reset(stall)
		case <-timer.C:
			t.Fatalf("waiting for command 0x%02X: nothing for %v", code, stall)
		}
	}
}

func secureReader(name string, addr byte, key [16]byte) osdp.ReaderConfig {
	return osdp.ReaderConfig{Name: name, Addr: addr, Key: key}
}

func status(t *testing.T, b *osdp.Bus, addr byte) osdp.ReaderStatus {
	t.Helper()
	for _, s := range b.Status() {
		if s.Addr == addr {
			return s
		}
	}
	t.Fatalf("no reader %d", addr)
	return osdp.ReaderStatus{}
}
