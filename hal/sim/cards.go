package sim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/desfire"
	"github.com/portier-io/portier/hal/desfire/desfiresim"
	"github.com/portier-io/portier/hal/mfrc522"
	"github.com/portier-io/portier/hal/mfrc522/mfrc522sim"
	"github.com/portier-io/portier/hal/simtime"
)

// A door's MFRC522 on the simulated board is the real driver (hal/mfrc522,
// its reader loop and the door's card checks, ISO/IEC 14443-4 and DESFire
// included) over the MFRC522 chip model; cards are models too (a DESFire
// EV1/EV2/EV3 from hal/desfire/desfiresim, or a card that answers only
// ISO/IEC 14443-3). A presentation places the card in the model's field,
// runs one poll and takes the card away again. The radio runs in simulated
// time of its own, so a presentation costs no wall time beyond the CPU.

// vendorSeed makes the simulated card vendor's signing key: the same on
// every run, so a simulated card's fingerprint (its originality signature
// included) survives restarts.
const vendorSeed = "portier simulated card vendor (not NXP)"

// foreignSite is another site's keys, for cards issued elsewhere.
var foreignSite = desfire.SiteKeys{
	SystemID: []byte("another site"),
	PICC:     bytes.Repeat([]byte{0xF1}, 16),
	App:      bytes.Repeat([]byte{0xF2}, 16),
	Read:     bytes.Repeat([]byte{0xF3}, 16),
	Version:  1,
}

// simReader is one door's simulated MFRC522.
type simReader struct {
	mu      sync.Mutex // one presentation at a time
	chip    *mfrc522sim.Chip
	clock   *simtime.Clock
	dev     *mfrc522.Dev
	reader  *mfrc522.Reader
	station *hal.CardStation
	cards   hal.CardsConfig
}

func newSimReader(door string, cards hal.CardsConfig) (*simReader, error) {
	station, err := hal.NewCardStation(door, cards)
	if err != nil {
		return nil, err
	}
	clock := simtime.New()
	chip := mfrc522sim.New(mfrc522sim.Config{Clock: clock})
	dev, err := mfrc522.New(chip, mfrc522.Config{Clock: clock})
	if err != nil {
		return nil, err
	}
	// Gone 1: the one empty poll after a presentation forgets the card, so
	// presenting it again is a new tap.
	rd := mfrc522.NewReader(dev, mfrc522.ReaderConfig{Gone: 1, Inspect: station.Inspect})
	return &simReader{chip: chip, clock: clock, dev: dev, reader: rd, station: station, cards: cards}, nil
}

// testISO runs the hardware self-test's ISO/IEC 14443-4 check on the chip
// model (the caller holds mu and has placed a card).
func (r *simReader) testISO(ctx context.Context, door string) hal.Check {
	if err := r.dev.Init(ctx); err != nil {
		return hal.Check{Name: door + ": MFRC522", Detail: err.Error()}
	}
	return hal.TestISO14443_4(ctx, door, r.dev, r.cards)
}

// present places card in the field for one poll and returns the events of
// what the reader found (none when a card job took the card).
func (r *simReader) present(ctx context.Context, card mfrc522sim.Card, at func() time.Time) ([]hal.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.chip.Place(card); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	r.clock.Advance(mfrc522sim.PowerUp)
	found, err := r.reader.Poll(ctx)
	r.chip.Clear()
	if _, gone := r.reader.Poll(ctx); err == nil {
		err = gone
	}
	if err != nil {
		return nil, fmt.Errorf("sim: the simulated MFRC522 failed: %w", err)
	}
	var evs []hal.Event
	taken := false
	for _, c := range found {
		if ev, ok := r.station.Event(c, at()); ok {
			evs = append(evs, ev)
		} else {
			taken = true
		}
	}
	if len(evs) == 0 && !taken {
		return nil, errors.New("sim: the card did not answer the reader")
	}
	return evs, nil
}

// simCard is a named card of the board.
type simCard struct {
	name string
	cfg  hal.SimCard
	des  *desfiresim.Card // a DESFire; keeps what issuing writes to it
	tag  mfrc522sim.Card  // any other card
	uid  []byte
	site *desfire.SiteKeys // the keys it was issued with (nil: blank or not a DESFire)
}

// field is the card as the chip model's field holds it.
func (c *simCard) field() mfrc522sim.Card {
	if c.des != nil {
		return c.des.Tag()
	}
	return c.tag
}

// describe says what the card is, for `cards` and the self-test.
func (c *simCard) describe() string {
	what := map[string]string{
		hal.SimDESFireEV1: "DESFire EV1", hal.SimDESFireEV2: "DESFire EV2", hal.SimDESFireEV3: "DESFire EV3",
		hal.SimClassic: "MIFARE Classic", hal.SimUltralight: "MIFARE Ultralight",
	}[c.cfg.Type]
	what += ", UID " + agent.CardUID(c.uid).Masked()
	switch {
	case c.cfg.TagNumber != "" && c.cfg.ForeignSite:
		what += ", issued by another site"
	case c.cfg.TagNumber != "":
		what += ", issued for " + agent.CardTagNumber(c.cfg.TagNumber).Masked()
	case c.des != nil:
		what += ", blank (factory keys)"
	}
	if c.cfg.Fault != "" {
		what += ", fault " + c.cfg.Fault
	}
	return what
}

// plainCard is what `tap DOOR UID` presents: a card that answers with its
// UID only, as a MIFARE Classic (4 bytes) or Ultralight (7 or 10) does, or
// a copy of one.
func plainCard(uid []byte) mfrc522sim.Card {
	sak := byte(0x00)
	if len(uid) == 4 {
		sak = 0x08
	}
	return mfrc522sim.Card{UID: uid, SAK: sak}
}

// buildCards makes the board's named cards. Issued DESFire cards need the
// site's three masters (an issuing station's key file).
func buildCards(cfg hal.Config, signer *ecdsa.PrivateKey, now time.Time) (map[string]*simCard, error) {
	out := map[string]*simCard{}
	var full *desfire.SiteKeys
	for i, s := range cfg.Cards.Sites {
		if s.PICC != nil && s.App != nil && s.Read != nil && (full == nil || s.Version > full.Version) {
			full = &cfg.Cards.Sites[i]
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.SimCards)) {
		sc := cfg.SimCards[name]
		uid, err := agent.ParseUID(sc.UID) // validated
		if err != nil {
			return nil, fmt.Errorf("sim: sim card %s: %w", name, err)
		}
		c := &simCard{name: name, cfg: sc, uid: uid}
		out[name] = c
		switch sc.Type {
		case hal.SimClassic:
			c.tag = mfrc522sim.Card{UID: uid, SAK: 0x08}
			continue
		case hal.SimUltralight:
			c.tag = mfrc522sim.Card{UID: uid, SAK: 0x00}
			continue
		}
		sig, err := desfiresim.SignUID(signer, uid)
		if err != nil {
			return nil, fmt.Errorf("sim: sim card %s: %w", name, err)
		}
		dc := desfiresim.Config{UID: uid, Signature: sig, Generation: map[string]desfire.Generation{
			hal.SimDESFireEV1: desfire.GenEV1, hal.SimDESFireEV2: desfire.GenEV2, hal.SimDESFireEV3: desfire.GenEV3}[sc.Type]}
		switch sc.Fault {
		case hal.SimFaultRemovedMidAuth:
			dc.Faults.RemoveOn = 0xAF // the second step of the authentication
		case hal.SimFaultReplayAuth:
			dc.Faults.ReplayAuth = true
		case hal.SimFaultReplayRead:
			dc.Faults.ReplayReadData = true
		}
		if sc.TagNumber == "" {
			if c.des, err = desfiresim.New(dc); err != nil {
				return nil, fmt.Errorf("sim: sim card %s: %w", name, err)
			}
			continue
		}
		site := foreignSite
		if !sc.ForeignSite {
			if full == nil {
				return nil, fmt.Errorf("sim: sim card %s is issued with the site's keys, but the DESFire key file holds no key set with all three masters (picc, app, read)", name)
			}
			site = *full
		}
		tag, _ := agent.NormalizeTagNumber(sc.TagNumber) // validated
		n, _ := strconv.ParseUint(tag, 10, 32)
		gen := max(sc.Generation, 1)
		if c.des, err = desfiresim.NewIssuedCard(dc, site, desfire.Identity{TagNumber: uint32(n), Generation: gen, Issued: now.UTC().Truncate(time.Second)}); err != nil {
			return nil, fmt.Errorf("sim: sim card %s: %w", name, err)
		}
		c.site = &site
	}
	return out, nil
}

// cardNames lists the named cards for messages.
func (b *Board) cardNames() string {
	if len(b.cards) == 0 {
		return "none: add some under hardware.sim_cards"
	}
	return strings.Join(slices.Sorted(maps.Keys(b.cards)), ", ")
}

// Card presents the named card to the door's MFRC522.
func (b *Board) Card(ctx context.Context, doorID, name string) error {
	c, ok := b.cards[name]
	if !ok {
		return fmt.Errorf("sim: no card %q (cards: %s)", name, b.cardNames())
	}
	return b.present(ctx, doorID, c.field())
}

// present shows a card to door's reader and queues what it reports.
func (b *Board) present(ctx context.Context, doorID string, card mfrc522sim.Card) error {
	d, err := b.door(doorID)
	if err != nil {
		return err
	}
	if d.rfid == nil {
		return fmt.Errorf("sim: door %s has no MFRC522 reader", doorID)
	}
	evs, err := d.rfid.present(ctx, card, b.clock.Now)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		if err := b.emit(ev); err != nil {
			return err
		}
	}
	return nil
}

// CardJob runs job on the next card presented at door's MFRC522 (see
// hal.CardStation.Job): issuing, inspecting or re-keying a simulated card.
func (b *Board) CardJob(ctx context.Context, doorID string, job hal.CardJob, ready func()) error {
	d, err := b.door(doorID)
	if err != nil {
		return err
	}
	if d.rfid == nil {
		return fmt.Errorf("sim: door %s has no MFRC522 reader", doorID)
	}
	return d.rfid.station.Job(ctx, job, ready)
}
