package mfrc522_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/mfrc522"
	"github.com/portier-io/portier/hal/mfrc522/mfrc522sim"
	"github.com/portier-io/portier/hal/simtime"
)

var (
	uid4  = []byte{0x04, 0xA1, 0xB2, 0xC3}
	uid7  = []byte{0x04, 0x3C, 0x6C, 0xA2, 0xE2, 0x61, 0x80}
	uid10 = []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99}
)

type rig struct {
	clock *simtime.Clock
	chip  *mfrc522sim.Chip
	dev   *mfrc522.Dev
}

type rigOpt struct {
	irq, reset bool
	version    byte
}

func newRig(t testing.TB, o rigOpt) *rig {
	t.Helper()
	clock := simtime.New()
	chip := mfrc522sim.New(mfrc522sim.Config{Clock: clock, Version: o.version})
	cfg := mfrc522.Config{Clock: clock}
	if o.irq {
		cfg.IRQ = chip.IRQ()
	}
	if o.reset {
		cfg.Reset = chip.ResetPin()
	}
	dev, err := mfrc522.New(chip, cfg)
	require.NoError(t, err)
	return &rig{clock: clock, chip: chip, dev: dev}
}

// selects counts SELECT frames (NVB 0x70) in the radio trace.
func selects(chip *mfrc522sim.Chip) int {
	n := 0
	for _, e := range chip.Trace() {
		if len(e.Tx) == 9 && e.Tx[1] == 0x70 {
			n++
		}
	}
	return n
}

func TestReadUID(t *testing.T) {
	tests := []struct {
		name   string
		uid    []byte
		sak    byte
		opt    rigOpt
		levels int
	}{
		{"4 bytes polled", uid4, 0x08, rigOpt{}, 1},
		{"4 bytes on a clone chip", uid4, 0x08, rigOpt{version: 0x88}, 1},
		{"7 bytes polled", uid7, 0x00, rigOpt{}, 2},
		{"10 bytes polled", uid10, 0x20, rigOpt{}, 3},
		{"4 bytes with IRQ pin", uid4, 0x08, rigOpt{irq: true}, 1},
		{"7 bytes with IRQ and reset pins", uid7, 0x00, rigOpt{irq: true, reset: true}, 2},
		{"10 bytes on a v1.0 chip", uid10, 0x08, rigOpt{version: 0x91}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.opt)
			require.NoError(t, r.chip.Place(mfrc522sim.Card{UID: tt.uid, SAK: tt.sak}))
			r.clock.Advance(mfrc522sim.PowerUp)
			rd := mfrc522.NewReader(r.dev, mfrc522.ReaderConfig{})
			cards, err := rd.Poll(context.Background())
			require.NoError(t, err)
			require.Len(t, cards, 1)
			assert.Equal(t, tt.uid, cards[0].UID)
			assert.Equal(t, tt.sak, cards[0].SAK)
			assert.Equal(t, tt.levels, selects(r.chip), "one SELECT per cascade level")
			v := r.dev.Version()
			assert.NotEqual(t, "no chip", mfrc522.ChipName(v))
		})
	}
}

func TestHaltedCardNeedsWUPA(t *testing.T) {
	r := newRig(t, rigOpt{})
	ctx := context.Background()
	require.NoError(t, r.chip.Place(mfrc522sim.Card{UID: uid7}))
	r.clock.Advance(mfrc522sim.PowerUp)
	require.NoError(t, r.dev.Init(ctx))
	atqa, err := r.dev.Request(ctx, false)
	require.NoError(t, err)
	assert.Equal(t, uint16(0x0044), atqa)
	c, err := r.dev.Select(ctx, atqa)
	require.NoError(t, err)
	assert.Equal(t, uid7, c.UID)
	require.NoError(t, r.dev.HaltCard(ctx))
	_, err = r.dev.Request(ctx, false)
	require.ErrorIs(t, err, mfrc522.ErrNoCard, "a halted card ignores REQA")
	_, err = r.dev.Request(ctx, true)
	require.NoError(t, err, "WUPA wakes it")
}

func TestCardLeftOnReaderReportedOnce(t *testing.T) {
	r := newRig(t, rigOpt{})
	ctx := context.Background()
	rd := mfrc522.NewReader(r.dev, mfrc522.ReaderConfig{})
	require.NoError(t, r.chip.Place(mfrc522sim.Card{UID: uid4}))
	r.clock.Advance(mfrc522sim.PowerUp)
	poll := func() int {
		cards, err := rd.Poll(ctx)
		require.NoError(t, err)
		r.clock.Advance(mfrc522.DefaultPollInterval)
		return len(cards)
	}
	assert.Equal(t, 1, poll())
	for range 50 {
		assert.Equal(t, 0, poll(), "card still on the reader")
	}
	r.chip.Remove(uid4)
	for range 3 {
		assert.Equal(t, 0, poll())
	}
	require.NoError(t, r.chip.Place(mfrc522sim.Card{UID: uid4}))
	r.clock.Advance(mfrc522sim.PowerUp)
	assert.Equal(t, 1, poll(), "a new tap after removal is reported")
}

func TestTwoCards(t *testing.T) {
	tests := []struct {
		name string
		a, b []byte
	}{
		{"differ in the first bit", []byte{0x01, 0x02, 0x03, 0x04}, []byte{0x00, 0x02, 0x03, 0x04}},
		{"differ in the last UID bit", []byte{0x11, 0x22, 0x33, 0x44}, []byte{0x11, 0x22, 0x33, 0xC4}},
		{"differ mid-byte", []byte{0x11, 0x2F, 0x33, 0x44}, []byte{0x11, 0x27, 0x33, 0x45}},
		{"7-byte cards differing at level 2", []byte{0x04, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06}, []byte{0x04, 0x01, 0x02, 0x03, 0x04, 0x85, 0x06}},
		{"4-byte and 7-byte", uid4, uid7},
		{"7-byte and 10-byte", uid7, uid10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, rigOpt{})
			require.NoError(t, r.chip.Place(mfrc522sim.Card{UID: tt.a}))
			require.NoError(t, r.chip.Place(mfrc522sim.Card{UID: tt.b}))
			r.clock.Advance(mfrc522sim.PowerUp)
			rd := mfrc522.NewReader(r.dev, mfrc522.ReaderConfig{})
			cards, err := rd.Poll(context.Background())
			require.NoError(t, err)
			var got [][]byte
			for _, c := range cards {
				got = append(got, c.UID)
			}
			assert.ElementsMatch(t, [][]byte{tt.a, tt.b}, got)
			cards, err = rd.Poll(context.Background())
			require.NoError(t, err)
			assert.Empty(t, cards, "both still present, none reported again")
		})
	}
}

func TestChipFaults(t *testing.T) {
	tests := []struct {
		name    string
		opt     rigOpt
		faults  mfrc522sim.Faults
		wantErr error
	}{
		{name: "no chip (MISO low)", faults: mfrc522sim.Faults{NoChip: true}, wantErr: mfrc522.ErrNoChip},
		{name: "no chip (MISO high)", faults: mfrc522sim.Faults{NoChip: true, MISOHigh: true}, wantErr: mfrc522.ErrNoChip},
		{name: "SPI transfer fails", faults: mfrc522sim.Faults{SPIErrors: 1}},
		{name: "chip never finishes", faults: mfrc522sim.Faults{TimerDead: true}, wantErr: mfrc522.ErrTimeout},
		{name: "CRC unit too slow", faults: mfrc522sim.Faults{CRCDelay: time.Second}, wantErr: mfrc522.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.opt)
			r.chip.SetFaults(tt.faults)
			rd := mfrc522.NewReader(r.dev, mfrc522.ReaderConfig{})
			start := r.clock.Now()
			_, err := rd.Poll(context.Background())
			require.Error(t, err)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			}
			assert.Less(t, r.clock.Since(start), 200*time.Millisecond, "bounded")
			// Once the fault is gone the next poll recovers.
			r.chip.SetFaults(mfrc522sim.Faults{})
			require.NoError(t, r.chip.Place(mfrc522sim.Card{UID: uid4}))
			r.clock.Advance(mfrc522sim.PowerUp)
			cards, err := rd.Poll(context.Background())
			require.NoError(t, err)
			require.Len(t, cards, 1)
		})
	}
}

func TestCardFaults(t *testing.T) {
	tests := []struct {
		name   string
		opt    rigOpt
		faults mfrc522sim.Faults
	}{
		{name: "SAK with a bad CRC", faults: mfrc522sim.Faults{CardCRCError: true}},
		{name: "parity errors", faults: mfrc522sim.Faults{ParityError: true}},
		{name: "card pulled during SELECT", faults: mfrc522sim.Faults{RemoveOnSelect: true}},
		{name: "garbage answers", faults: mfrc522sim.Faults{Garbage: []byte{0xDE, 0xAD}}},
		{name: "IRQ never asserts", opt: rigOpt{irq: true}, faults: mfrc522sim.Faults{NoIRQ: true, CardCRCError: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.opt)
			r.chip.SetFaults(tt.faults)
			require.NoError(t, r.chip.Place(mfrc522sim.Card{UID: uid7}))
			r.clock.Advance(mfrc522sim.PowerUp)
			rd := mfrc522.NewReader(r.dev, mfrc522.ReaderConfig{})
			for range 5 {
				cards, err := rd.Poll(context.Background())
				require.NoError(t, err, "card trouble is not a chip error")
				assert.Empty(t, cards, "never a wrong or partial UID")
			}
		})
	}
}

// With the IRQ pin but an IRQ line that never fires, reads still work: the
// wait is bounded and the register decides.
func TestIRQNeverAsserts(t *testing.T) {
	r := newRig(t, rigOpt{irq: true})
	r.chip.SetFaults(mfrc522sim.Faults{NoIRQ: true})
	require.NoError(t, r.chip.Place(mfrc522sim.Card{UID: uid4}))
	r.clock.Advance(mfrc522sim.PowerUp)
	cards, err := mfrc522.NewReader(r.dev, mfrc522.ReaderConfig{}).Poll(context.Background())
	require.NoError(t, err)
	require.Len(t, cards, 1)
	assert.Equal(t, uid4, cards[0].UID)
}

func TestRun(t *testing.T) {
	r := newRig(t, rigOpt{irq: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	arrive := r.clock.Now().Add(time.Second)
	require.NoError(t, r.chip.PlaceAt(mfrc522sim.Card{UID: uid10}, arrive))
	r.chip.SetFaults(mfrc522sim.Faults{SPIErrors: 3})
	var got []mfrc522.Card
	var errs []error
	err := mfrc522.NewReader(r.dev, mfrc522.ReaderConfig{}).Run(ctx, func(c mfrc522.Card) {
		got = append(got, c)
		cancel()
	}, func(err error) { errs = append(errs, err) })
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, uid10, got[0].UID)
	assert.Len(t, errs, 3, "each injected SPI error reported, then recovered")
	latency := r.clock.Since(arrive)
	assert.Less(t, latency, mfrc522.DefaultPollInterval+mfrc522sim.PowerUp+10*time.Millisecond)
}

func TestParse(t *testing.T) {
	atqa, size, err := mfrc522.ParseATQA([]byte{0x44, 0x00})
	require.NoError(t, err)
	assert.Equal(t, uint16(0x0044), atqa)
	assert.Equal(t, 7, size)
	_, _, err = mfrc522.ParseATQA([]byte{0xC4, 0x00})
	assert.ErrorIs(t, err, mfrc522.ErrProtocol)
	_, _, err = mfrc522.ParseATQA([]byte{0x04})
	assert.ErrorIs(t, err, mfrc522.ErrProtocol)

	uid, err := mfrc522.ParseAnticollision([]byte{0x04, 0xA1, 0xB2, 0xC3, 0x04 ^ 0xA1 ^ 0xB2 ^ 0xC3})
	require.NoError(t, err)
	assert.Equal(t, [4]byte{0x04, 0xA1, 0xB2, 0xC3}, uid)
	_, err = mfrc522.ParseAnticollision([]byte{0x04, 0xA1, 0xB2, 0xC3, 0x00})
	assert.ErrorIs(t, err, mfrc522.ErrBCC)

	assert.Equal(t, [2]byte{0x57, 0xCD}, mfrc522.CRCA([]byte{0x50, 0x00}), "HLTA vector")
	sak, err := mfrc522.ParseSAK(append([]byte{0x08}, crc(0x08)...))
	require.NoError(t, err)
	assert.Equal(t, byte(0x08), sak)
	_, err = mfrc522.ParseSAK([]byte{0x08, 0x00, 0x00})
	assert.ErrorIs(t, err, mfrc522.ErrCRC)
}

func crc(b ...byte) []byte {
	c := mfrc522.CRCA(b)
	return c[:]
}

// FuzzParse feeds arbitrary card answers to the response parsers: they must
// never panic, and whatever they accept must be self-consistent.
func FuzzParse(f *testing.F) {
	f.Add([]byte{0x44, 0x00})
	f.Add([]byte{0x88, 0x04, 0x3C, 0x6C, 0x88 ^ 0x04 ^ 0x3C ^ 0x6C})
	f.Add(append([]byte{0x20}, crc(0x20)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, size, err := mfrc522.ParseATQA(b); err == nil && size != 4 && size != 7 && size != 10 {
			t.Fatalf("ATQA % X gives UID size %d", b, size)
		}
		if uid, err := mfrc522.ParseAnticollision(b); err == nil && uid[0]^uid[1]^uid[2]^uid[3] != b[4] {
			t.Fatalf("accepted % X with a wrong BCC", b)
		}
		if sak, err := mfrc522.ParseSAK(b); err == nil && mfrc522.CRCA([]byte{sak}) != [2]byte{b[1], b[2]} {
			t.Fatalf("accepted SAK % X with a wrong CRC", b)
		}
	})
}

// FuzzCardAnswer makes every card answer arbitrary bytes and runs the whole
// driver against it: no panic, no error (card trouble is not a chip error),
// and never a UID that is not the card's.
func FuzzCardAnswer(f *testing.F) {
	f.Add([]byte{0x04, 0x00})
	f.Add([]byte{0x88, 0x04, 0x3C, 0x6C, 0xDC})
	f.Add(make([]byte, 70))
	f.Fuzz(func(t *testing.T, garbage []byte) {
		if len(garbage) == 0 || len(garbage) > 64 {
			return // longer answers overflow the FIFO and take longer on air than a command may last: a chip error, tested elsewhere
		}
		r := newRig(t, rigOpt{})
		r.chip.SetFaults(mfrc522sim.Faults{Garbage: garbage})
		if err := r.chip.Place(mfrc522sim.Card{UID: uid4}); err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(mfrc522sim.PowerUp)
		cards, err := mfrc522.NewReader(r.dev, mfrc522.ReaderConfig{}).Poll(context.Background())
		if err != nil {
			t.Fatalf("garbage % X: %v", garbage, err)
		}
		for _, c := range cards {
			if len(c.UID) != 4 && len(c.UID) != 7 && len(c.UID) != 10 {
				t.Fatalf("garbage % X gave UID % X", garbage, c.UID)
			}
		}
	})
}
