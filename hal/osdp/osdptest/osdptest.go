// Package osdptest runs a simulated OSDP reader (osdpsim) on the far side of
// a pseudo-terminal, answering in real time, for tests of code that opens
// it as a serial device, as it would a USB RS-485 adapter. Test code only.
package osdptest

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/osdp/osdpsim"
	"github.com/portier-io/portier/hal/wallclock"
)

// Reader is a simulated reader on a pseudo-terminal: Port is the device to
// open, PD the reader the test drives.
type Reader struct {
	Port  string
	PD    *osdpsim.PD
	heard chan struct{} // ticks on every chunk of bytes the reader hears
}

// tapRW ticks heard on every read.
type tapRW struct {
	io.ReadWriter
	heard chan struct{}
}

func (r tapRW) Read(p []byte) (int, error) {
	n, err := r.ReadWriter.Read(p)
	select {
	case r.heard <- struct{}{}:
	default:
	}
	return n, err
}

// NewReader starts a reader with cfg on a new pseudo-terminal, until the
// test ends. The test holds the slave side open, so the reader outlives
// whoever opens and closes Port in between.
func NewReader(t testing.TB, cfg osdpsim.Config) *Reader {
	t.Helper()
	ptm, pts, err := pty.Open()
	require.NoError(t, err)
	r := &Reader{Port: pts.Name(), PD: osdpsim.NewPD(cfg), heard: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- osdpsim.Serve(ctx, tapRW{ptm, r.heard}, 115200, wallclock.Clock{}, r.PD) }()
	t.Cleanup(func() {
		cancel()
		// Closing the last slave descriptor (EIO on the master) ends
		// Serve's blocking read.
		assert.NoError(t, pts.Close())
		assert.NoError(t, <-served)
		assert.NoError(t, ptm.Close())
	})
	return r
}

// WaitFeedback waits for the LED command of feedback f after the reader's
// first from commands (the reader's LED now is whatever came last: a grant
// is over before anyone looks). A queued command goes out within a few
// polls, so the wait is bounded on the line's progress: it fails after the
// reader heard 1000 more transmissions without it, or nothing for 30 s.
func (r *Reader) WaitFeedback(t testing.TB, from int, f osdp.Feedback) {
	t.Helper()
	led, _ := osdp.FeedbackCommands(f)
	want := led.Encode()
	for heard := 0; heard < 1000; heard++ {
		for _, c := range r.PD.Commands()[from:] {
			if c.Code == osdp.CmdLED && bytes.Equal(c.Data, want) {
				return
			}
		}
		select {
		case <-r.heard:
		case <-time.After(30 * time.Second):
			t.Fatalf("the reader heard nothing for 30 s and never got the LED command of feedback %v", f)
		}
	}
	t.Fatalf("the reader never got the LED command of feedback %v", f)
}
