package hal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal/desfire"
	"github.com/portier-io/portier/hal/mfrc522"
	"github.com/portier-io/portier/hal/mfrc522/cardcheck"
	"github.com/portier-io/portier/hal/mfrc522/iso14443"
)

// CardsConfig is how the doors' RFID readers treat cards (DESIGN decision
// 9): each door's card mode and the site's DESFire keys. It is no part of
// the hardware: section; cmd/portier/config builds it from the doors'
// credential keys and the cards: section.
type CardsConfig struct {
	// Modes is each door's card mode by door id; a door not listed reads
	// UIDs and fingerprints (agent.CardModeUID).
	Modes map[string]agent.CardMode
	// Sites are the site's DESFire key sets, at least the read master of
	// each (two while keys rotate; a card's key version picks one). An
	// issuing station holds all three masters.
	Sites []desfire.SiteKeys
	// Trusted are the originality keys fingerprints are verified against;
	// nil: NXP's DESFire-family keys.
	Trusted []desfire.OriginalityKey
}

// Mode is door's card mode.
func (c CardsConfig) Mode(door string) agent.CardMode {
	if m := c.Modes[door]; m != "" {
		return m
	}
	return agent.CardModeUID
}

// check is the reader check of door.
func (c CardsConfig) check(door string) (cardcheck.Config, error) {
	switch m := c.Mode(door); m {
	case agent.CardModeUID:
		return cardcheck.Config{Mode: cardcheck.ModeUID, Trusted: c.Trusted}, nil
	case agent.CardModeDESFire:
		if !slices.ContainsFunc(c.Sites, func(s desfire.SiteKeys) bool { return len(s.Read) > 0 }) {
			return cardcheck.Config{}, fmt.Errorf("hal: door %s requires DESFire cards but no site read key is configured", door)
		}
		return cardcheck.Config{Mode: cardcheck.ModeDESFire, Sites: c.Sites, Trusted: c.Trusted}, nil
	default:
		return cardcheck.Config{}, fmt.Errorf("hal: door %s: card mode %q", door, m)
	}
}

// PresentedCard is a card handed to a CardJob: its ISO/IEC 14443-3
// answers and, for an ISO/IEC 14443-4 card, its ATS and the activated link
// to exchange commands over (Link nil: the card does not speak -4, so it is
// no DESFire).
type PresentedCard struct {
	UID  []byte
	ATQA uint16
	SAK  byte
	ATS  []byte
	Link desfire.Transport
	// Trusted are the originality keys the reader's checks trust (a
	// fingerprint taken by a job must match the door's).
	Trusted []desfire.OriginalityKey
}

// CardJob is work on a card at a door's reader instead of the door's own
// check: issuing, inspecting or re-keying a card. It runs in the reader's
// loop while the card is selected; the door sees no tap for that card.
type CardJob func(ctx context.Context, card PresentedCard) error

// ErrCardJobBusy: a card job already waits at the door's reader.
var ErrCardJobBusy = errors.New("hal: another card job is already waiting at this reader")

// CardStation is a door's RFID reader as a board runs it: each newly
// presented card is checked per the door's card mode (Inspect, for
// mfrc522.ReaderConfig) and becomes an Event (Event), unless a CardJob
// waits (Job), which then gets the card.
type CardStation struct {
	door  string
	check cardcheck.Config

	mu  sync.Mutex
	job *cardJob
}

type cardJob struct {
	ctx  context.Context
	run  CardJob
	done chan error
}

// jobDone is the Detail of a card a job took.
type jobDone struct{}

// NewCardStation returns the station of door's reader.
func NewCardStation(door string, cards CardsConfig) (*CardStation, error) {
	check, err := cards.check(door)
	if err != nil {
		return nil, err
	}
	return &CardStation{door: door, check: check}, nil
}

// Mode is the door's card mode.
func (s *CardStation) Mode() agent.CardMode {
	if s.check.Mode == cardcheck.ModeDESFire {
		return agent.CardModeDESFire
	}
	return agent.CardModeUID
}

// Inspect implements mfrc522.ReaderConfig.Inspect: the door's check, or the
// waiting job.
func (s *CardStation) Inspect(ctx context.Context, dev *mfrc522.Dev, card mfrc522.Card) (any, error) {
	if j := s.takeJob(); j != nil {
		return jobDone{}, s.runJob(ctx, j, dev, card)
	}
	return s.check.Inspect(ctx, dev, card)
}

// takeJob returns the waiting job, if any still wants a card.
func (s *CardStation) takeJob() *cardJob {
	s.mu.Lock()
	j := s.job
	s.job = nil
	s.mu.Unlock()
	if j != nil && j.ctx.Err() != nil {
		j.done <- j.ctx.Err()
		return nil
	}
	return j
}

// runJob hands the card to j and reports its result; the error returned is
// a chip failure only (the reader re-initialises the chip).
func (s *CardStation) runJob(ctx context.Context, j *cardJob, dev *mfrc522.Dev, card mfrc522.Card) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(j.ctx, cancel)
	defer stop()
	pc := PresentedCard{UID: append([]byte(nil), card.UID...), ATQA: card.ATQA, SAK: card.SAK, Trusted: s.check.Trusted}
	if pc.Trusted == nil {
		pc.Trusted = desfire.NXPOriginalityKeys()
	}
	var link *iso14443.Link
	var err error
	if card.ISODEP() {
		if link, err = iso14443.Activate(ctx, dev, dev.Clock(), s.check.Link); err == nil {
			pc.ATS, pc.Link = link.ATS().Raw, link
		}
	}
	if err == nil {
		err = j.run(ctx, pc)
	}
	if link != nil {
		// The card goes to HALT; a failure here changes nothing done.
		if derr := link.Deselect(ctx); err == nil && cardcheck.ChipFailed(derr) {
			err = derr
		}
	}
	j.done <- err
	if cardcheck.ChipFailed(err) {
		return err
	}
	return nil
}

// Job waits for the next card presented at the reader and runs job on it,
// returning its error. ready (may be nil) is called once the job waits, so
// the caller can ask for the card. ctx bounds the wait and the job.
func (s *CardStation) Job(ctx context.Context, job CardJob, ready func()) error {
	j := &cardJob{ctx: ctx, run: job, done: make(chan error, 1)}
	s.mu.Lock()
	if s.job != nil && s.job.ctx.Err() == nil {
		s.mu.Unlock()
		return ErrCardJobBusy
	}
	s.job = j
	s.mu.Unlock()
	if ready != nil {
		ready()
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		s.mu.Lock()
		waiting := s.job == j
		if waiting {
			s.job = nil
		}
		s.mu.Unlock()
		if waiting {
			return ctx.Err()
		}
		return <-j.done // the reader has it: it ends with ctx
	}
}

// Event turns a card the reader reported into the door's event; false when
// a card job took the card.
func (s *CardStation) Event(c mfrc522.Card, at time.Time) (Event, bool) {
	switch r := c.Detail.(type) {
	case jobDone:
		return Event{}, false
	case *cardcheck.Result:
		return Event{Door: s.door, Kind: EventCredential, At: at, Credential: CheckedCard(c.UID, r)}, true
	}
	return CardEvent(s.door, c.UID, at), true
}

// CheckedCard is the credential the agent decides on for a card the reader
// checked: a UID with its fingerprint (uid mode), or a DESFire card with
// the tag number its identity file names when it proved the site's key.
func CheckedCard(uid []byte, r *cardcheck.Result) agent.Presented {
	uid = append([]byte(nil), uid...)
	check := agent.CardCheck{Outcome: agent.CardOK, Cause: r.Cause(), Summary: r.Fingerprint.Describe()}
	switch r.Outcome {
	case cardcheck.Refused:
		check.Outcome = agent.CardRefused
	case cardcheck.Interrupted:
		check.Outcome = agent.CardInterrupted
	}
	if r.Mode != cardcheck.ModeDESFire {
		if r.Outcome == cardcheck.OK {
			check.Fingerprint = r.Fingerprint.MatchKey()
		}
		p := agent.CardUID(uid)
		p.Card = &check
		return p
	}
	tag := ""
	if r.Outcome == cardcheck.OK && r.Identity != nil {
		tag = fmt.Sprintf("%08d", r.Identity.TagNumber)
		check.Generation, check.KeyVersion = r.Identity.Generation, r.KeyVersion
		check.Summary = fmt.Sprintf("DESFire, site key version %d, card generation %d", r.KeyVersion, r.Identity.Generation)
	}
	return agent.CardDESFire(uid, tag, check)
}
