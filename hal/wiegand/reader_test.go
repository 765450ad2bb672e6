package wiegand_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/gpio"

	"github.com/portier-io/portier/hal/simtime"
	"github.com/portier-io/portier/hal/wiegand"
)

const (
	lineD0 = 5 // chip line numbers, as a LineSet reports them
	lineD1 = 6
)

type edgeAt struct {
	at   time.Duration
	line int
	edge gpio.Edge
}

// wire replays an edge stream in simulated time the way a LineSet does:
// queued edges come out in order, a quiet line times out with
// os.ErrDeadlineExceeded. When the stream is exhausted it cancels the run.
type wire struct {
	clock  *simtime.Clock
	start  time.Time
	edges  []edgeAt
	stop   context.CancelFunc
	failAt int // index at which WaitForEdge fails with a device error; -1 never
}

func (w *wire) WaitForEdge(timeout time.Duration) (int, gpio.Edge, error) {
	if timeout <= 0 {
		return 0, gpio.NoEdge, errors.New("wire: non-positive timeout would expire at once on gpioioctl")
	}
	if w.failAt == 0 {
		return 0, gpio.NoEdge, errors.New("read /dev/gpiochip0: bad file descriptor")
	}
	if len(w.edges) == 0 {
		w.stop()
		w.clock.Advance(timeout)
		return 0, gpio.NoEdge, os.ErrDeadlineExceeded
	}
	next := w.edges[0]
	now := w.clock.Since(w.start)
	if next.at > now+timeout {
		w.clock.Advance(timeout)
		return 0, gpio.NoEdge, os.ErrDeadlineExceeded
	}
	w.clock.AdvanceTo(w.start.Add(next.at))
	w.edges = w.edges[1:]
	w.failAt--
	return next.line, next.edge, nil
}

// burst is one frame on the wire starting at `at`.
type burst struct {
	at   time.Duration
	fr   wiegand.Frame
	drop int // 1-based bit whose falling edge is lost; 0 none
}

// edges renders bursts with 50 µs pulses every 2 ms ± 200 µs jitter.
func edges(seed uint64, bursts ...burst) []edgeAt {
	rnd := rand.New(rand.NewPCG(seed, 1))
	var out []edgeAt
	for _, b := range bursts {
		t := b.at
		for i := 0; i < b.fr.Bits; i++ {
			line := lineD0
			if b.fr.Raw>>(b.fr.Bits-1-i)&1 == 1 {
				line = lineD1
			}
			if i+1 != b.drop {
				out = append(out, edgeAt{t, line, gpio.FallingEdge}, edgeAt{t + 50*time.Microsecond, line, gpio.RisingEdge})
			}
			t += 2*time.Millisecond + time.Duration(rnd.IntN(400)-200)*time.Microsecond
		}
	}
	return out
}

type result struct {
	r   wiegand.Reading
	err error
	at  time.Time
}

func run(t *testing.T, w *wire) ([]result, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.clock, w.stop = simtime.New(), cancel
	w.start = w.clock.Now()
	r := wiegand.NewReader(w, wiegand.ReaderConfig{D0: lineD0, D1: lineD1, Decoder: wiegand.NewDecoder()})
	var got []result
	err := r.Run(ctx, func(rd wiegand.Reading, err error) {
		got = append(got, result{rd, err, w.clock.Now()})
	})
	return got, err
}

func mustEncode(t *testing.T, name string, fc, cn uint64) wiegand.Frame {
	t.Helper()
	fr, err := format(t, name).Encode(fc, cn)
	require.NoError(t, err)
	return fr
}

func mustKey(t *testing.T, k rune, n int) wiegand.Frame {
	t.Helper()
	fr, err := wiegand.EncodeKey(k, n)
	require.NoError(t, err)
	return fr
}

func TestReaderFrames(t *testing.T) {
	h26 := mustEncode(t, "H10301", 21, 15890)
	h34 := mustEncode(t, "H10306", 1234, 56789)
	c35 := mustEncode(t, "C1000", 1234, 567890)
	tests := []struct {
		name   string
		bursts []burst
		want   []wiegand.Reading
		errs   []error // per emitted result; nil = reading expected
	}{
		{
			name:   "one 26-bit card",
			bursts: []burst{{at: time.Millisecond, fr: h26}},
			want:   []wiegand.Reading{{Kind: wiegand.KindCard, Format: "H10301", Facility: 21, Card: 15890, Bits: 26, Raw: h26.Raw}},
			errs:   []error{nil},
		},
		{
			name:   "three formats back to back with 100 ms gaps",
			bursts: []burst{{at: 0, fr: h34}, {at: 170 * time.Millisecond, fr: c35}, {at: 340 * time.Millisecond, fr: h26}},
			want: []wiegand.Reading{
				{Kind: wiegand.KindCard, Format: "H10306", Facility: 1234, Card: 56789, Bits: 34, Raw: h34.Raw},
				{Kind: wiegand.KindCard, Format: "C1000", Facility: 1234, Card: 567890, Bits: 35, Raw: c35.Raw},
				{Kind: wiegand.KindCard, Format: "H10301", Facility: 21, Card: 15890, Bits: 26, Raw: h26.Raw},
			},
			errs: []error{nil, nil, nil},
		},
		{
			name:   "dropped edge is a length error, then the next card reads",
			bursts: []burst{{at: 0, fr: h26, drop: 7}, {at: 200 * time.Millisecond, fr: h26}},
			want:   []wiegand.Reading{{}, {Kind: wiegand.KindCard, Format: "H10301", Facility: 21, Card: 15890, Bits: 26, Raw: h26.Raw}},
			errs:   []error{wiegand.ErrLength, nil},
		},
		{
			name:   "keypad bursts 4-bit and 8-bit",
			bursts: []burst{{at: 0, fr: mustKey(t, '1', 4)}, {at: 300 * time.Millisecond, fr: mustKey(t, '#', 8)}},
			want: []wiegand.Reading{
				{Kind: wiegand.KindKey, Bits: 4, Raw: 1, Key: '1'},
				{Kind: wiegand.KindKey, Bits: 8, Raw: 0x4B, Key: '#'},
			},
			errs: []error{nil, nil},
		},
		{
			name:   "80 bits of noise overflow",
			bursts: []burst{{at: 0, fr: wiegand.Frame{Bits: 64, Raw: 1<<64 - 1}}, {at: 129 * time.Millisecond, fr: wiegand.Frame{Bits: 16}}},
			want:   []wiegand.Reading{{}},
			errs:   []error{wiegand.ErrOverflow},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &wire{edges: edges(42, tt.bursts...), failAt: -1}
			got, err := run(t, w)
			require.NoError(t, err)
			require.Len(t, got, len(tt.want))
			for i := range got {
				if tt.errs[i] != nil {
					assert.ErrorIs(t, got[i].err, tt.errs[i], "result %d", i)
					continue
				}
				require.NoError(t, got[i].err, "result %d", i)
				assert.Equal(t, tt.want[i], got[i].r, "result %d", i)
			}
		})
	}
}

// The frame is delivered one frame gap after its last bit, not later.
func TestReaderLatency(t *testing.T) {
	fr := mustEncode(t, "H10301", 1, 1)
	w := &wire{edges: edges(1, burst{at: 0, fr: fr}), failAt: -1}
	got, err := run(t, w)
	require.NoError(t, err)
	require.Len(t, got, 1)
	last := w.start.Add(edges(1, burst{at: 0, fr: fr})[2*fr.Bits-1].at)
	assert.LessOrEqual(t, got[0].at.Sub(last), wiegand.DefaultFrameGap)
}

func TestReaderSourceError(t *testing.T) {
	w := &wire{edges: edges(1, burst{fr: mustEncode(t, "H10301", 1, 1)}), failAt: 3}
	_, err := run(t, w)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "wiegand: wait for edge")
}

// FuzzReader feeds arbitrary edge streams: bit i of data picks the line, byte
// values pick gaps. The reader must never panic and every emitted card must
// be a valid frame of its format.
func FuzzReader(f *testing.F) {
	f.Add([]byte{0x01, 0x80, 0x02, 0xFF, 0x00})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		var es []edgeAt
		var at time.Duration
		for _, b := range data {
			line := lineD0
			if b&1 == 1 {
				line = lineD1
			}
			at += time.Duration(b>>1) * time.Millisecond / 4
			es = append(es, edgeAt{at, line, gpio.FallingEdge})
		}
		got, err := run(t, &wire{edges: es, failAt: -1})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			if g.err == nil && g.r.Kind == wiegand.KindCard {
				f, _ := wiegand.FormatByName(g.r.Format)
				fr, err := f.Encode(g.r.Facility, g.r.Card)
				if err != nil || fr.Raw != g.r.Raw {
					t.Fatalf("accepted %+v that does not re-encode", g.r)
				}
			}
		}
	})
}
