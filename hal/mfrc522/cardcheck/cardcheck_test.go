package cardcheck_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"github.com/portier-io/portier/hal/desfire"
	"github.com/portier-io/portier/hal/desfire/desfiresim"
	"github.com/portier-io/portier/hal/mfrc522"
	"github.com/portier-io/portier/hal/mfrc522/cardcheck"
	"github.com/portier-io/portier/hal/mfrc522/iso14443"
	"github.com/portier-io/portier/hal/mfrc522/mfrc522sim"
	"github.com/portier-io/portier/hal/simtime"
)

var (
	uid  = []byte{0x04, 0x3C, 0x6C, 0xA2, 0xE2, 0x61, 0x80}
	site = desfire.SiteKeys{
		SystemID: []byte("portier:cardcheck"),
		PICC:     bytes.Repeat([]byte{0xA1}, 16),
		App:      bytes.Repeat([]byte{0xA2}, 16),
		Read:     bytes.Repeat([]byte{0xA3}, 16),
		Version:  1,
	}
	doorKeys = desfire.SiteKeys{SystemID: site.SystemID, Read: site.Read, Version: 1}
	ident    = desfire.Identity{TagNumber: 40001234, Generation: 1, Issued: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}
)

type rig struct {
	clock *simtime.Clock
	chip  *mfrc522sim.Chip
	rd    *mfrc522.Reader
}

func newRig(t testing.TB, cfg cardcheck.Config) *rig {
	t.Helper()
	clock := simtime.New()
	chip := mfrc522sim.New(mfrc522sim.Config{Clock: clock})
	dev, err := mfrc522.New(chip, mfrc522.Config{Clock: clock})
	require.NoError(t, err)
	return &rig{clock: clock, chip: chip, rd: mfrc522.NewReader(dev, mfrc522.ReaderConfig{Inspect: cfg.Inspect})}
}

// tap presents a card and returns what the reader reports.
func (r *rig) tap(t *testing.T, card mfrc522sim.Card) *cardcheck.Result {
	t.Helper()
	r.chip.Clear()
	require.NoError(t, r.chip.Place(card))
	r.clock.Advance(mfrc522sim.PowerUp)
	cards, err := r.rd.Poll(context.Background())
	require.NoError(t, err)
	require.Len(t, cards, 1)
	res, ok := cards[0].Detail.(*cardcheck.Result)
	require.True(t, ok, "Detail is a *cardcheck.Result")
	// Gone, so the next tap is a new presence.
	r.chip.Clear()
	for range 4 {
		r.clock.Advance(mfrc522.DefaultPollInterval)
		_, err := r.rd.Poll(context.Background())
		require.NoError(t, err)
	}
	return res
}

func issued(t *testing.T, uid []byte, s desfire.SiteKeys, _ *desfiresim.Card) *desfiresim.Card {
	t.Helper()
	c, err := desfiresim.NewIssued(uid, s, ident, nil)
	require.NoError(t, err)
	return c
}

func TestDESFireMode(t *testing.T) {
	other := site
	other.App, other.Read = bytes.Repeat([]byte{0xB2}, 16), bytes.Repeat([]byte{0xB3}, 16)
	tests := []struct {
		name    string
		card    func(t *testing.T) mfrc522sim.Card
		outcome cardcheck.Outcome
		err     error
		cause   string
	}{
		{"the site's card", func(t *testing.T) mfrc522sim.Card { return issued(t, uid, site, nil).Tag() },
			cardcheck.OK, nil, ""},
		{"another site's card", func(t *testing.T) mfrc522sim.Card { return issued(t, uid, other, nil).Tag() },
			cardcheck.Refused, desfire.StatusAuthenticationError, "wrong_key"},
		{"copied UID on a magic MIFARE Classic", func(t *testing.T) mfrc522sim.Card {
			return mfrc522sim.Card{UID: uid, SAK: 0x08, ATQA: 0x0044}
		}, cardcheck.Refused, cardcheck.ErrNotISO14443_4, "not_desfire"},
		{"copied UID on a blank DESFire", func(t *testing.T) mfrc522sim.Card {
			c, err := desfiresim.New(desfiresim.Config{UID: uid})
			require.NoError(t, err)
			return c.Tag()
		}, cardcheck.Refused, desfire.ErrNotIssued, "not_issued"},
		{"copied UID on an ISO/IEC 14443-4 emulator", func(t *testing.T) mfrc522sim.Card {
			return mfrc522sim.Card{UID: uid, SAK: 0x20, ATQA: 0x0344, ATS: []byte{0x05, 0x78, 0x80, 0x70, 0x02}, App: isoOnly{}}
		}, cardcheck.Refused, nil, "not_desfire"},
		{"pulled away mid-authentication", func(t *testing.T) mfrc522sim.Card {
			c := issued(t, uid, site, nil)
			c.SetFaults(desfiresim.Faults{RemoveOn: 0xAF})
			return c.Tag()
		}, cardcheck.Interrupted, iso14443.ErrNoResponse, "removed"},
		{"replayed authentication answer", func(t *testing.T) mfrc522sim.Card {
			c := issued(t, uid, site, nil)
			_, err := desfire.ReadIdentity(context.Background(), desfire.New(direct{c}, desfire.Options{}), uid, doorKeys)
			require.NoError(t, err)
			c.SetFaults(desfiresim.Faults{ReplayAuth: true})
			return c.Tag()
		}, cardcheck.Refused, desfire.ErrCardAuth, "card_auth"},
		{"replayed file answer", func(t *testing.T) mfrc522sim.Card {
			c := issued(t, uid, site, nil)
			_, err := desfire.ReadIdentity(context.Background(), desfire.New(direct{c}, desfire.Options{}), uid, doorKeys)
			require.NoError(t, err)
			c.SetFaults(desfiresim.Faults{ReplayReadData: true})
			return c.Tag()
		}, cardcheck.Refused, desfire.ErrIntegrity, "integrity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, cardcheck.Config{Mode: cardcheck.ModeDESFire, Sites: []desfire.SiteKeys{doorKeys}})
			res := r.tap(t, tt.card(t))
			assert.Equal(t, tt.outcome, res.Outcome, "%v", res.Err)
			assert.Equal(t, tt.cause, res.Cause(), "%v", res.Err)
			if tt.err != nil {
				assert.ErrorIs(t, res.Err, tt.err)
			}
			assert.Equal(t, uid, res.Fingerprint.UID)
			if tt.outcome == cardcheck.OK {
				require.NoError(t, res.Err)
				require.NotNil(t, res.Identity)
				assert.Equal(t, ident.TagNumber, res.Identity.TagNumber)
			} else {
				assert.Error(t, res.Err)
				assert.Nil(t, res.Identity, "no identity from a refused card")
			}
		})
	}
}

// isoOnly is an ISO/IEC 14443-4 card that knows no DESFire command.
type isoOnly struct{}

func (isoOnly) Process([]byte) ([]byte, time.Duration) { return []byte{0x6E, 0x00}, time.Millisecond }

func TestUIDModeFingerprints(t *testing.T) {
	signer, err := desfiresim.NewSigningKey()
	require.NoError(t, err)
	trusted := append(desfire.NXPOriginalityKeys(), desfiresim.TrustKey(signer))
	r := newRig(t, cardcheck.Config{Mode: cardcheck.ModeUID, Trusted: trusted})

	genuine, err := desfiresim.New(desfiresim.Config{UID: uid, SigningKey: signer})
	require.NoError(t, err)
	enrolled := r.tap(t, genuine.Tag())
	require.Equal(t, cardcheck.OK, enrolled.Outcome, "%v", enrolled.Err)
	fp := enrolled.Fingerprint
	assert.Equal(t, mfrc522sim.DefaultATS, fp.ATS)
	assert.Len(t, fp.Version, 28)
	assert.Len(t, fp.Signature, desfire.SignatureSize)
	assert.Equal(t, "simulated card vendor", fp.Original)

	again := r.tap(t, genuine.Tag())
	assert.Empty(t, again.Fingerprint.Diff(fp), "the same card answers the same")

	ev1, err := desfiresim.New(desfiresim.Config{UID: uid, Generation: desfire.GenEV1, SigningKey: signer})
	require.NoError(t, err)
	forger, err := desfiresim.NewSigningKey()
	require.NoError(t, err)
	unsigned, err := desfiresim.New(desfiresim.Config{UID: uid, SigningKey: forger})
	require.NoError(t, err)
	for _, tt := range []struct {
		name string
		card mfrc522sim.Card
		diff []string
	}{
		{"magic MIFARE Classic", mfrc522sim.Card{UID: uid, SAK: 0x08, ATQA: 0x0044}, []string{"atqa", "sak", "ats", "version", "signature", "originality"}},
		{"ISO/IEC 14443-4 emulator", mfrc522sim.Card{UID: uid, SAK: 0x20, ATQA: 0x0344, ATS: []byte{0x05, 0x78, 0x80, 0x70, 0x02}, App: isoOnly{}}, []string{"ats", "version", "signature", "originality"}},
		{"DESFire of another generation", ev1.Tag(), []string{"version", "signature"}},
		{"a chip whose signature verifies under no trusted key", unsigned.Tag(), []string{"signature", "originality"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := r.tap(t, tt.card)
			require.Equal(t, cardcheck.OK, res.Outcome, "%v", res.Err)
			assert.Equal(t, tt.diff, res.Fingerprint.Diff(fp))
		})
	}

	// The limit, documented: an emulator replaying every static answer of
	// the enrolled card (here the same model with the same signature)
	// fingerprints the same; only ModeDESFire refuses it.
	replica, err := desfiresim.New(desfiresim.Config{UID: uid, Signature: genuine.Signature()})
	require.NoError(t, err)
	assert.Empty(t, r.tap(t, replica.Tag()).Fingerprint.Diff(fp))
}

func TestInterruptedFingerprint(t *testing.T) {
	r := newRig(t, cardcheck.Config{Mode: cardcheck.ModeUID})
	c, err := desfiresim.New(desfiresim.Config{UID: uid})
	require.NoError(t, err)
	c.SetFaults(desfiresim.Faults{RemoveOn: 0x3C})
	res := r.tap(t, c.Tag())
	assert.Equal(t, cardcheck.Interrupted, res.Outcome)
	require.ErrorIs(t, res.Err, iso14443.ErrNoResponse)
}

// A reader chip that fails in the middle of a check is a chip error: the
// poll ends with it (and the reader re-initialises the chip), instead of a
// card result.
func TestChipFailureDuringCheck(t *testing.T) {
	clock := simtime.New()
	chip := mfrc522sim.New(mfrc522sim.Config{Clock: clock})
	var broken atomic.Bool
	flaky := func(transfer func() error) error {
		if broken.Load() {
			return errBus
		}
		return transfer()
	}
	dev, err := mfrc522.New(hookPort{chip, flaky}, mfrc522.Config{Clock: clock})
	require.NoError(t, err)
	cfg := cardcheck.Config{Mode: cardcheck.ModeDESFire, Sites: []desfire.SiteKeys{doorKeys}}
	rd := mfrc522.NewReader(dev, mfrc522.ReaderConfig{Inspect: cfg.Inspect})
	card := issued(t, uid, site, nil).Tag()
	card.App = breaker{card.App, &broken}
	require.NoError(t, chip.Place(card))
	clock.Advance(mfrc522sim.PowerUp)
	_, err = rd.Poll(context.Background())
	require.ErrorIs(t, err, mfrc522.ErrSPI)
}

// breaker breaks the SPI bus once the card got its first command.
type breaker struct {
	mfrc522sim.Application
	broken *atomic.Bool
}

func (b breaker) Process(cmd []byte) ([]byte, time.Duration) {
	b.broken.Store(true)
	return b.Application.Process(cmd)
}

var errBus = errors.New("bus broke")

// hookPort wraps the chip's SPI port: every transfer goes through hook
// (to break the bus, or to time the simulator).
type hookPort struct {
	*mfrc522sim.Chip
	hook func(transfer func() error) error
}

func (p hookPort) Connect(f physic.Frequency, m spi.Mode, bits int) (spi.Conn, error) {
	c, err := p.Chip.Connect(f, m, bits)
	return hookConn{c, p.hook}, err
}

type hookConn struct {
	spi.Conn
	hook func(func() error) error
}

func (c hookConn) Tx(w, r []byte) error { return c.hook(func() error { return c.Conn.Tx(w, r) }) }

func (c hookConn) TxPackets(p []spi.Packet) error {
	return c.hook(func() error { return c.Conn.TxPackets(p) })
}

// direct carries commands straight to a card model.
type direct struct{ c *desfiresim.Card }

func (d direct) Transmit(_ context.Context, cmd []byte) ([]byte, error) {
	resp, _ := d.c.Process(cmd)
	return resp, nil
}
