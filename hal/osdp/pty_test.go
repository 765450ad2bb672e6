package osdp_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/osdp/osdpsim"
	"github.com/portier-io/portier/hal/wallclock"
)

// ptyBus runs a bus on the slave side of a pseudo-terminal, opened through
// go.bug.st/serial (real termios, real read timeouts), with simulated
// readers answering on the master side in real time.
func ptyBus(t *testing.T, baud int, readers []osdp.ReaderConfig, pds ...*osdpsim.PD) (*osdp.Bus, <-chan osdp.Report) {
	t.Helper()
	ptm, pts, err := pty.Open()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- osdpsim.Serve(ctx, ptm, baud, wallclock.Clock{}, pds...) }()
	port, err := osdp.OpenSerial(pts.Name(), baud)
	require.NoError(t, err)
	reports := make(chan osdp.Report, 1024)
	bus, err := osdp.NewBus(osdp.Config{Port: port, Baud: baud, Readers: readers, Report: func(r osdp.Report) {
		select {
		case reports <- r:
		default:
		}
	}})
	require.NoError(t, err)
	ran := make(chan error, 1)
	go func() { ran <- bus.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-ran)
		// The master's read is a plain blocking read: closing every slave
		// descriptor (EIO on the master) is what ends it.
		assert.NoError(t, port.Close())
		assert.NoError(t, pts.Close())
		assert.NoError(t, <-served)
		assert.NoError(t, ptm.Close())
	})
	return bus, reports
}

func TestOverPseudoTerminal(t *testing.T) {
	pd1 := osdpsim.NewPD(osdpsim.Config{Addr: 1, Key: key1, Identity: hid})
	pd2 := osdpsim.NewPD(osdpsim.Config{Addr: 2, Key: key2, Identity: hid})
	bus, reports := ptyBus(t, 115200,
		[]osdp.ReaderConfig{secureReader("a", 1, key1), secureReader("b", 2, key2)}, pd1, pd2)
	waitReport(t, reports, "a online", kind(osdp.ReportOnline, 1), offline)
	waitReport(t, reports, "b online", kind(osdp.ReportOnline, 2), offline)
	pd2.PresentWiegand(h10301, 26)
	c := waitReport(t, reports, "card", kind(osdp.ReportCard, 2), offline).Card
	v, _ := c.Uint64()
	assert.Equal(t, h10301, v)
	pd1.PressKeys("42#")
	assert.Equal(t, "42#", waitReport(t, reports, "keys", kind(osdp.ReportKeypad, 1), offline).Keys)
	require.NoError(t, bus.Feedback(1, osdp.FeedbackDeny))
	st := bus.Status()
	assert.True(t, st[0].Online && st[0].Secure && st[1].Online && st[1].Secure)
}

// dePort checks that every frame goes out with the DE pin driven high.
type dePort struct {
	*osdpsim.Line
	pin      *gpiotest.Pin
	low, all atomic.Int32
	readHigh atomic.Int32
}

func (p *dePort) Read(b []byte) (int, error) {
	if p.pin.Read() != gpio.Low {
		p.readHigh.Add(1)
	}
	return p.Line.Read(b)
}

func (p *dePort) Write(b []byte) (int, error) {
	p.all.Add(1)
	if p.pin.Read() != gpio.High {
		p.low.Add(1)
	}
	return p.Line.Write(b)
}

func TestDirectionPin(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO17"}
	var port *dePort
	r, _ := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{secureReader("r", 1, key1)},
		pds:     []osdpsim.Config{{Addr: 1, Key: key1}},
		tune: func(c *osdp.Config) {
			port = &dePort{Line: c.Port.(*osdpsim.Line), pin: pin}
			c.Port = port
			c.Direction = osdp.Direction{Mode: osdp.DirectionPin, Pin: pin}
		},
	})
	r.waitFor(t, "online", kind(osdp.ReportOnline, 1), offline)
	st := status(t, r.bus, 1)
	assert.NotZero(t, st.Polls)
	assert.NotZero(t, port.all.Load())
	assert.Zero(t, port.low.Load(), "every frame sent with DE high")
	assert.Zero(t, port.readHigh.Load(), "DE low while listening")
}
