package mfrc522_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/mfrc522"
	"github.com/portier-io/portier/hal/mfrc522/iso14443"
	"github.com/portier-io/portier/hal/mfrc522/mfrc522sim"
)

// app is a test ISO/IEC 14443-4 application: it answers with a function
// of the command after a fixed processing time.
type app struct {
	busy   time.Duration
	answer func([]byte) []byte
	seen   [][]byte
}

func (a *app) Process(cmd []byte) ([]byte, time.Duration) {
	a.seen = append(a.seen, append([]byte(nil), cmd...))
	return a.answer(cmd), a.busy
}

func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[len(b)-1-i] = b[i]
	}
	return out
}

// selectCard places a card and selects it.
func selectCard(t *testing.T, r *rig, c mfrc522sim.Card) mfrc522.Card {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, r.chip.Place(c))
	r.clock.Advance(mfrc522sim.PowerUp)
	require.NoError(t, r.dev.Init(ctx))
	atqa, err := r.dev.Request(ctx, true)
	require.NoError(t, err)
	card, err := r.dev.Select(ctx, atqa)
	require.NoError(t, err)
	return card
}

// selectISO places a 14443-4 card, selects it and activates the link.
func selectISO(t *testing.T, r *rig, a *app, ats []byte, cfg iso14443.Config) (mfrc522.Card, *iso14443.Link) {
	t.Helper()
	ctx := context.Background()
	card := selectCard(t, r, mfrc522sim.Card{UID: uid7, SAK: 0x20, ATQA: 0x0344, App: a, ATS: ats})
	require.True(t, card.ISODEP())
	link, err := iso14443.Activate(ctx, r.dev, r.dev.Clock(), cfg)
	require.NoError(t, err)
	return card, link
}

func TestISO14443_4OverTheChip(t *testing.T) {
	for _, opt := range []rigOpt{{}, {irq: true}} {
		r := newRig(t, opt)
		ctx := context.Background()
		a := &app{busy: 2 * time.Millisecond, answer: reverse}
		_, link := selectISO(t, r, a, nil, iso14443.Config{})
		assert.Equal(t, mfrc522sim.DefaultATS, link.ATS().Raw)
		for _, cmd := range [][]byte{{0x90, 0x60, 0x00, 0x00, 0x00}, {1, 2, 3}, bytes.Repeat([]byte{7}, 150)} {
			resp, err := link.Transmit(ctx, cmd)
			require.NoError(t, err)
			assert.Equal(t, reverse(cmd), resp)
		}
		assert.Len(t, a.seen, 3)
		require.NoError(t, link.Deselect(ctx))

		// The card is now halted: REQA does not reach it, WUPA does, and
		// plain ISO/IEC 14443-3 selection works again (CRC units off).
		_, err := r.dev.Request(ctx, false)
		require.ErrorIs(t, err, mfrc522.ErrNoCard)
		atqa, err := r.dev.Request(ctx, true)
		require.NoError(t, err)
		c, err := r.dev.Select(ctx, atqa)
		require.NoError(t, err)
		assert.Equal(t, uid7, c.UID)
	}
}

func TestISO14443_4WaitingTimeExtension(t *testing.T) {
	for _, busy := range []time.Duration{300 * time.Millisecond, 3 * time.Second} {
		r := newRig(t, rigOpt{})
		a := &app{busy: busy, answer: reverse}
		// Beyond the default 2 s bound: the chip's timer needs a slower
		// prescaler for such frame waiting times.
		_, link := selectISO(t, r, a, nil, iso14443.Config{MaxExchange: 10 * time.Second})
		start := r.clock.Now()
		resp, err := link.Transmit(context.Background(), []byte{1, 2})
		require.NoError(t, err, "busy %s", busy)
		assert.Equal(t, []byte{2, 1}, resp)
		took := r.clock.Since(start)
		assert.GreaterOrEqual(t, took, busy)
		assert.Less(t, took, busy+50*time.Millisecond)
		var wtx int
		for _, e := range r.chip.Trace() {
			if len(e.Tx) == 4 && e.Tx[0] == 0xF2 {
				wtx++
			}
		}
		assert.Positive(t, wtx, "the card asked for more time")
	}
}

func TestISO14443_4CardFaults(t *testing.T) {
	ctx := context.Background()
	t.Run("pulled away mid-command", func(t *testing.T) {
		r := newRig(t, rigOpt{})
		a := &app{answer: func([]byte) []byte { return nil }}
		_, link := selectISO(t, r, a, nil, iso14443.Config{})
		start := r.clock.Now()
		_, err := link.Transmit(ctx, []byte{1})
		require.ErrorIs(t, err, iso14443.ErrNoResponse)
		require.ErrorIs(t, err, mfrc522.ErrNoCard)
		assert.Less(t, r.clock.Since(start), 400*time.Millisecond, "three frame waiting times, not more")
	})
	t.Run("parity errors", func(t *testing.T) {
		r := newRig(t, rigOpt{})
		_, link := selectISO(t, r, &app{answer: reverse}, nil, iso14443.Config{})
		r.chip.SetFaults(mfrc522sim.Faults{ParityError: true})
		_, err := link.Transmit(ctx, []byte{1})
		require.ErrorIs(t, err, iso14443.ErrNoResponse)
		require.ErrorIs(t, err, mfrc522.ErrProtocol)
	})
	t.Run("not an ISO/IEC 14443-4 card", func(t *testing.T) {
		r := newRig(t, rigOpt{})
		c := selectCard(t, r, mfrc522sim.Card{UID: uid4, SAK: 0x08})
		assert.False(t, c.ISODEP())
		_, err := iso14443.Activate(ctx, r.dev, r.dev.Clock(), iso14443.Config{})
		require.ErrorIs(t, err, iso14443.ErrNoResponse, "a MIFARE Classic ignores RATS")
	})
	t.Run("frame too long for the FIFO", func(t *testing.T) {
		r := newRig(t, rigOpt{})
		require.NoError(t, r.dev.Init(ctx))
		_, err := r.dev.TransceiveCRC(ctx, make([]byte, 63), time.Millisecond)
		require.Error(t, err)
	})
}

// A chip failure during Inspect ends the poll with that error; the next
// poll re-initialises the chip.
func TestReaderInspect(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, rigOpt{})
	var calls int
	inspect := func(ctx context.Context, dev *mfrc522.Dev, c mfrc522.Card) (any, error) {
		calls++
		if !c.ISODEP() {
			return "not 14443-4", nil
		}
		link, err := iso14443.Activate(ctx, dev, dev.Clock(), iso14443.Config{})
		if err != nil {
			return err, nil
		}
		resp, err := link.Transmit(ctx, []byte("who"))
		if err != nil {
			return err, nil
		}
		return string(resp), link.Deselect(ctx)
	}
	rd := mfrc522.NewReader(r.dev, mfrc522.ReaderConfig{Inspect: inspect})
	require.NoError(t, r.chip.Place(mfrc522sim.Card{UID: uid7, SAK: 0x20, App: &app{answer: reverse}}))
	r.clock.Advance(mfrc522sim.PowerUp)
	cards, err := rd.Poll(ctx)
	require.NoError(t, err)
	require.Len(t, cards, 1)
	assert.Equal(t, "ohw", cards[0].Detail)
	for range 10 {
		r.clock.Advance(mfrc522.DefaultPollInterval)
		cards, err = rd.Poll(ctx)
		require.NoError(t, err)
		assert.Empty(t, cards)
	}
	assert.Equal(t, 1, calls, "inspected once per presence")

	boom := errors.New("chip on fire")
	rd = mfrc522.NewReader(r.dev, mfrc522.ReaderConfig{Inspect: func(context.Context, *mfrc522.Dev, mfrc522.Card) (any, error) {
		return nil, boom
	}})
	_, err = rd.Poll(ctx)
	require.ErrorIs(t, err, boom)
}
