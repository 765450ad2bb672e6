package hal_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/desfire"
	"github.com/portier-io/portier/hal/desfire/desfiresim"
	"github.com/portier-io/portier/hal/mfrc522"
	"github.com/portier-io/portier/hal/mfrc522/mfrc522sim"
	"github.com/portier-io/portier/hal/simtime"
)

var (
	stationSite = desfire.SiteKeys{
		SystemID: []byte("station test"),
		PICC:     bytes.Repeat([]byte{0x51}, 16),
		App:      bytes.Repeat([]byte{0x52}, 16),
		Read:     bytes.Repeat([]byte{0x53}, 16),
		Version:  4,
	}
	stationUID = []byte{0x04, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66}
)

// stationRig is a door's reader over the chip model, polled by hand.
type stationRig struct {
	t       *testing.T
	chip    *mfrc522sim.Chip
	clock   *simtime.Clock
	dev     *mfrc522.Dev
	reader  *mfrc522.Reader
	station *hal.CardStation
}

func newStationRig(t *testing.T, mode agent.CardMode) *stationRig {
	t.Helper()
	r := &stationRig{t: t, clock: simtime.New()}
	r.chip = mfrc522sim.New(mfrc522sim.Config{Clock: r.clock})
	var err error
	r.dev, err = mfrc522.New(r.chip, mfrc522.Config{Clock: r.clock})
	require.NoError(t, err)
	r.station, err = hal.NewCardStation("lab", hal.CardsConfig{Modes: map[string]agent.CardMode{"lab": mode}, Sites: []desfire.SiteKeys{stationSite}})
	require.NoError(t, err)
	r.reader = mfrc522.NewReader(r.dev, mfrc522.ReaderConfig{Gone: 1, Inspect: r.station.Inspect})
	return r
}

// present places card for one poll and returns the events it made.
func (r *stationRig) present(card mfrc522sim.Card) []hal.Event {
	r.t.Helper()
	require.NoError(r.t, r.chip.Place(card))
	r.clock.Advance(mfrc522sim.PowerUp)
	found, err := r.reader.Poll(context.Background())
	require.NoError(r.t, err)
	require.NotEmpty(r.t, found)
	r.chip.Clear()
	_, err = r.reader.Poll(context.Background())
	require.NoError(r.t, err)
	var evs []hal.Event
	for _, c := range found {
		if ev, ok := r.station.Event(c, r.clock.Now()); ok {
			evs = append(evs, ev)
		}
	}
	return evs
}

func issuedCard(t *testing.T) *desfiresim.Card {
	t.Helper()
	c, err := desfiresim.NewIssued(stationUID, stationSite, desfire.Identity{TagNumber: 2301234, Generation: 5, Issued: time.Unix(1_800_000_000, 0)}, nil)
	require.NoError(t, err)
	return c
}

func TestCardStationChecksEachCard(t *testing.T) {
	r := newStationRig(t, agent.CardModeDESFire)
	assert.Equal(t, agent.CardModeDESFire, r.station.Mode())
	evs := r.present(issuedCard(t).Tag())
	require.Len(t, evs, 1)
	p := evs[0].Credential
	assert.Equal(t, "lab", evs[0].Door)
	assert.Equal(t, agent.KindDESFire, p.Kind)
	assert.Equal(t, "02301234", p.TagNumber)
	assert.Equal(t, uint32(5), p.Card.Generation)
	assert.Equal(t, byte(4), p.Card.KeyVersion)

	evs = r.present(mfrc522sim.Card{UID: stationUID, SAK: 0x08})
	require.Len(t, evs, 1)
	assert.Equal(t, agent.CardRefused, evs[0].Credential.Card.Outcome)
	assert.Equal(t, "not_desfire", evs[0].Credential.Card.Cause)
	assert.Equal(t, "MIFARE Classic 1K (or a copy)", evs[0].Credential.Card.Summary)

	u := newStationRig(t, agent.CardModeUID)
	evs = u.present(issuedCard(t).Tag())
	require.Len(t, evs, 1)
	assert.Equal(t, agent.KindUID, evs[0].Credential.Kind)
	assert.Contains(t, evs[0].Credential.Card.Fingerprint, "sak=20;ats=")
	assert.Equal(t, "DESFire EV2, no originality signature", evs[0].Credential.Card.Summary)
}

func TestCardStationJob(t *testing.T) {
	r := newStationRig(t, agent.CardModeDESFire)
	card := issuedCard(t)
	ctx := context.Background()

	waiting, done := make(chan struct{}), make(chan error, 1)
	var got desfire.Identity
	var seen hal.PresentedCard
	go func() {
		done <- r.station.Job(ctx, func(ctx context.Context, c hal.PresentedCard) error {
			seen = c
			var err error
			got, err = desfire.ReadIdentity(ctx, desfire.New(c.Link, desfire.Options{}), c.UID, stationSite)
			return err
		}, func() { close(waiting) })
	}()
	<-waiting
	assert.ErrorIs(t, r.station.Job(ctx, nil, nil), hal.ErrCardJobBusy, "one job at a time")
	assert.Empty(t, r.present(card.Tag()), "the job takes the card: the door sees no tap")
	require.NoError(t, <-done)
	assert.Equal(t, uint32(2301234), got.TagNumber)
	assert.Equal(t, stationUID, seen.UID)
	assert.Equal(t, mfrc522sim.DefaultATS, seen.ATS)

	// The next card is the door's again.
	require.Len(t, r.present(card.Tag()), 1)

	// A job on a card without ISO/IEC 14443-4 gets no link.
	waiting, done = make(chan struct{}), make(chan error, 1)
	go func() {
		done <- r.station.Job(ctx, func(_ context.Context, c hal.PresentedCard) error {
			if c.Link != nil {
				return errors.New("a Classic has no ISO/IEC 14443-4 link")
			}
			return nil
		}, func() { close(waiting) })
	}()
	<-waiting
	assert.Empty(t, r.present(mfrc522sim.Card{UID: []byte{1, 2, 3, 4}, SAK: 0x08}))
	require.NoError(t, <-done)

	// A job given up before a card came leaves the reader to the door.
	cctx, cancel := context.WithCancel(ctx)
	waiting, done = make(chan struct{}), make(chan error, 1)
	go func() {
		done <- r.station.Job(cctx, func(context.Context, hal.PresentedCard) error { return nil }, func() { close(waiting) })
	}()
	<-waiting
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	require.Len(t, r.present(card.Tag()), 1)
}

func TestCardStationNeedsReadKeys(t *testing.T) {
	_, err := hal.NewCardStation("lab", hal.CardsConfig{Modes: map[string]agent.CardMode{"lab": agent.CardModeDESFire}})
	assert.ErrorContains(t, err, "no site read key")
	_, err = hal.NewCardStation("lab", hal.CardsConfig{Modes: map[string]agent.CardMode{"lab": "nfc"}})
	assert.ErrorContains(t, err, `card mode "nfc"`)
	s, err := hal.NewCardStation("front", hal.CardsConfig{})
	require.NoError(t, err)
	assert.Equal(t, agent.CardModeUID, s.Mode())
}

func TestISO14443_4Check(t *testing.T) {
	r := newStationRig(t, agent.CardModeDESFire)
	ctx := context.Background()
	require.NoError(t, r.dev.Init(ctx))
	cards := hal.CardsConfig{Modes: map[string]agent.CardMode{"lab": agent.CardModeDESFire}}

	c := hal.TestISO14443_4(ctx, "lab", r.dev, cards)
	assert.True(t, c.OK)
	assert.Equal(t, "lab: ISO/IEC 14443-4 (card mode desfire)", c.Name)
	assert.Contains(t, c.Detail, "not tested: no card on the reader")

	require.NoError(t, r.chip.Place(mfrc522sim.Card{UID: []byte{1, 2, 3, 4}, SAK: 0x08}))
	r.clock.Advance(mfrc522sim.PowerUp)
	c = hal.TestISO14443_4(ctx, "lab", r.dev, cards)
	assert.True(t, c.OK)
	assert.Contains(t, c.Detail, "MIFARE Classic 1K (or a copy), which does not speak ISO/IEC 14443-4")
	r.chip.Clear()

	require.NoError(t, r.chip.Place(issuedCard(t).Tag()))
	r.clock.Advance(mfrc522sim.PowerUp)
	c = hal.TestISO14443_4(ctx, "lab", r.dev, cards)
	assert.True(t, c.OK, c.Detail)
	assert.Equal(t, "RATS and card commands work (ATS 06 75 77 81 02 80): DESFire EV2, no originality signature", c.Detail)
	r.chip.Clear()

	// A card that breaks off after selection.
	require.NoError(t, r.chip.Place(mfrc522sim.Card{UID: stationUID, SAK: 0x20, ATS: []byte{0x02, 0x00}, App: silent{}}))
	r.clock.Advance(mfrc522sim.PowerUp)
	c = hal.TestISO14443_4(ctx, "lab", r.dev, cards)
	assert.False(t, c.OK, c.Detail)
	assert.NotEmpty(t, c.Fix)
}

// silent is an ISO/IEC 14443-4 card that leaves the field at its first
// command.
type silent struct{}

func (silent) Process([]byte) ([]byte, time.Duration) { return nil, 0 }
