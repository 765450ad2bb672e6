package osdpsim_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/osdp/osdpsim"
	"github.com/portier-io/portier/hal/simtime"
	"github.com/portier-io/portier/hal/wallclock"
)

var id = osdp.Identity{Vendor: [3]byte{1, 2, 3}, Model: 4, Version: 5, Serial: 6, Firmware: [3]byte{7, 8, 9}}

func idFrame(t *testing.T) []byte {
	t.Helper()
	b, err := osdp.AppendFrame(nil, osdp.Frame{Addr: 2, Code: osdp.CmdID, Data: []byte{0}}, nil, true)
	require.NoError(t, err)
	return b
}

// Every byte takes 10 bit times: the command's wire time, then the
// reader's delay, then the reply byte by byte.
func TestLineByteTiming(t *testing.T) {
	clock := simtime.New()
	line := osdpsim.NewLine(clock, 9600, osdpsim.NewPD(osdpsim.Config{Addr: 2, Identity: id}))
	char := line.CharTime()
	assert.Equal(t, 1041666*time.Nanosecond, char)
	t0 := clock.Now()
	cmd := idFrame(t)
	_, err := line.Write(cmd)
	require.NoError(t, err)
	sent := t0.Add(time.Duration(len(cmd)) * char)
	assert.Equal(t, sent, clock.Now())

	require.NoError(t, line.SetReadTimeout(osdp.DefaultReplyTimeout))
	var rx osdp.Receiver
	var frame []byte
	var buf [64]byte
	for frame == nil {
		n, err := line.Read(buf[:])
		require.NoError(t, err)
		require.NotZero(t, n, "reply within the timeout")
		for _, c := range buf[:n] {
			if f := rx.Push(c, clock.Now()); f != nil {
				frame = append([]byte(nil), f...)
			}
		}
	}
	f, err := osdp.ParseFrame(frame)
	require.NoError(t, err)
	assert.Equal(t, byte(osdp.ReplyPDID), f.Code)
	assert.True(t, f.Reply)
	replyLen := len(frame) + 1 // and the mark byte
	assert.Equal(t, sent.Add(osdpsim.DefaultProcessDelay+time.Duration(replyLen)*char), clock.Now())

	// Nothing more: a read waits out its timeout in simulated time.
	before := clock.Now()
	n, err := line.Read(buf[:])
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Equal(t, before.Add(osdp.DefaultReplyTimeout), clock.Now())
}

// A reader that talks while the CP transmits garbles both.
func TestLineCollision(t *testing.T) {
	clock := simtime.New()
	pd := osdpsim.NewPD(osdpsim.Config{Addr: 2, Identity: id})
	pd.SetFaults(osdpsim.Faults{LateReplies: 1, LateBy: 5 * time.Millisecond})
	line := osdpsim.NewLine(clock, 9600, pd)
	_, err := line.Write(idFrame(t))
	require.NoError(t, err)
	clock.Advance(6 * time.Millisecond) // the reply has started
	_, err = line.Write(idFrame(t))     // and the CP talks over it
	require.NoError(t, err)
	require.NoError(t, line.SetReadTimeout(time.Second))
	var rx osdp.Receiver
	var buf [64]byte
	for {
		n, err := line.Read(buf[:])
		require.NoError(t, err)
		if n == 0 {
			break
		}
		for _, c := range buf[:n] {
			if f := rx.Push(c, clock.Now()); f != nil {
				_, err := osdp.ParseFrame(f)
				assert.Error(t, err, "no clean frame out of a collision")
			}
		}
	}
}

// Serve answers on a real byte stream.
func TestServeOverPipe(t *testing.T) {
	cp, sim := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- osdpsim.Serve(ctx, sim, 115200, wallclock.Clock{}, osdpsim.NewPD(osdpsim.Config{Addr: 2, Identity: id}))
	}()
	_, err := cp.Write(idFrame(t))
	require.NoError(t, err)
	var rx osdp.Receiver
	var buf [64]byte
	var frame []byte
	for frame == nil {
		n, err := cp.Read(buf[:])
		require.NoError(t, err)
		for _, c := range buf[:n] {
			if f := rx.Push(c, time.Now()); f != nil {
				frame = append([]byte(nil), f...)
			}
		}
	}
	f, err := osdp.ParseFrame(frame)
	require.NoError(t, err)
	assert.Equal(t, byte(osdp.ReplyPDID), f.Code)
	cancel()
	require.NoError(t, cp.Close())
	assert.NoError(t, <-served, "a closed stream after ctx ended is the normal end")
}

// The simulated reader's LED and buzzer follow the controller's records:
// a temporary pattern for its timer, then the permanent state.
func TestPDShowsFeedback(t *testing.T) {
	key := [16]byte{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6}
	clock := simtime.New()
	var mu sync.Mutex
	var at, buzAt time.Time // the last LED and buzzer commands
	pd := osdpsim.NewPD(osdpsim.Config{Addr: 1, Key: key, OnCommand: func(c osdpsim.Command) {
		mu.Lock()
		defer mu.Unlock()
		switch c.Code {
		case osdp.CmdLED:
			at = c.At
		case osdp.CmdBUZ:
			buzAt = c.At
		}
	}})
	line := osdpsim.NewLine(clock, 115200, pd)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	online := make(chan struct{}, 1)
	bus, err := osdp.NewBus(osdp.Config{Port: line, Baud: 115200, Clock: clock, Readers: []osdp.ReaderConfig{{Name: "r", Addr: 1, Key: key}},
		Report: func(r osdp.Report) {
			if r.Kind == osdp.ReportOnline {
				online <- struct{}{}
			}
		}})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx) }()
	<-online
	assert.Equal(t, "black", pd.LED(clock.Now()).String(), "dark until a controller sets it")
	require.NoError(t, bus.Feedback(1, osdp.FeedbackGrant))
	require.Eventually(t, func() bool { return pd.LED(clock.Now()).Color == osdp.Green }, 10*time.Second, time.Millisecond)
	ledAt := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return at
	}
	grantAt := ledAt()
	require.NoError(t, bus.Feedback(1, osdp.FeedbackDeny))
	// The deny pattern lasts 3 s of simulated time, which the bus's polls can
	// pass before the test looks: look at the moment its LED record came.
	require.Eventually(t, func() bool { return ledAt().After(grantAt) }, 10*time.Second, time.Millisecond)
	assert.Equal(t, "red blinking", pd.LED(ledAt()).String())
	// The deny pattern's buzzer record follows its LED record.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !buzAt.Before(at)
	}, 10*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	assert.True(t, pd.Buzzing(buzAt), "three beeps")
	assert.False(t, pd.Buzzing(buzAt.Add(2*time.Second)))
	assert.Equal(t, "green", pd.LED(at.Add(3*time.Second)).String(), "back to the permanent state after the deny pattern's 3 s")
}
