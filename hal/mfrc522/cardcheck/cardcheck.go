// Package cardcheck is what a door's MFRC522 does with each newly
// presented card beyond reading its UID, per the door's credential mode:
//
//   - ModeUID: the UID, plus the card's fingerprint (ATQA, SAK, ATS,
//     GetVersion, originality signature) for the agent to compare with the
//     one recorded at enrolment;
//   - ModeDESFire: the card must prove the site's diversified read key; the
//     identity comes from its enciphered identity file.
//
// Config.Inspect plugs into mfrc522.ReaderConfig.Inspect; each reported
// mfrc522.Card then carries a *Result in Detail.
package cardcheck

import (
	"context"
	"errors"
	"fmt"

	"github.com/portier-io/portier/hal/desfire"
	"github.com/portier-io/portier/hal/mfrc522"
	"github.com/portier-io/portier/hal/mfrc522/iso14443"
)

// Mode is a door's credential mode.
type Mode uint8

// Modes.
const (
	ModeUID     Mode = iota + 1 // UID and fingerprint
	ModeDESFire                 // only a card proving the site's key
)

func (m Mode) String() string {
	switch m {
	case ModeUID:
		return "uid"
	case ModeDESFire:
		return "desfire"
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// Config configures the checks of one reader.
type Config struct {
	Mode Mode
	// Sites are the site's key sets holding at least the read master (two
	// while keys rotate; the card's key version picks one). ModeDESFire.
	Sites []desfire.SiteKeys
	// Trusted are the originality keys a fingerprint's signature is checked
	// against; nil: NXP's DESFire-family keys.
	Trusted []desfire.OriginalityKey
	Link    iso14443.Config
	// Native selects native DESFire framing instead of ISO 7816-4
	// wrapping for ModeDESFire. Fingerprints always use wrapping, so a card
	// that is no DESFire answers with an ISO status word.
	Native bool
}

// Outcome sums a check up for the agent.
type Outcome uint8

// Outcomes.
const (
	// OK: ModeUID read the fingerprint (to be compared with the enrolled
	// one); ModeDESFire proved the key and read the identity.
	OK Outcome = iota
	// Refused: the card answered but did not prove the site's key (wrong
	// key, a replayed or tampered answer, no site application, not a
	// DESFire, not ISO/IEC 14443-4, a broken protocol); in ModeUID, a
	// card that broke the protocol while fingerprinted.
	Refused
	// Interrupted: the card stopped answering (pulled away, radio
	// trouble), so nothing is known.
	Interrupted
)

func (o Outcome) String() string {
	return [...]string{"ok", "refused", "interrupted"}[o]
}

// Result is what a check found: mfrc522.Card.Detail holds a *Result.
type Result struct {
	Mode Mode
	// Fingerprint holds at least the card's ISO/IEC 14443-3 answers and,
	// for an ISO/IEC 14443-4 card, its ATS; in ModeUID also GetVersion and
	// the originality signature.
	Fingerprint desfire.Fingerprint
	// Identity is the card's identity file and KeyVersion its read key's
	// version (ModeDESFire, OK only).
	Identity   *desfire.Identity
	KeyVersion byte
	Outcome    Outcome
	// Err says why the outcome is not OK.
	Err error
}

// Cause names why a check failed, for events and logs (stable words):
// "" when it did not; "wrong_key" (the card refused the site's key: another
// site's card, or keys not rotated yet), "integrity" (an answer's MAC or
// CRC did not verify: tampered or replayed), "card_auth" (the card did not
// prove the key), "not_issued" (no site application), "not_desfire" (not
// ISO/IEC 14443-4, or no DESFire), "bad_identity" (the identity file is not
// Portier's), "removed" (the card stopped answering), "protocol" (it broke
// the ISO/IEC 14443-4 protocol), "other".
func (r *Result) Cause() string {
	var ie *desfire.ISOError
	switch err := r.Err; {
	case err == nil:
		return ""
	case errors.Is(err, desfire.StatusAuthenticationError) || errors.Is(err, desfire.StatusNoSuchKey):
		return "wrong_key"
	case errors.Is(err, desfire.ErrIntegrity):
		return "integrity"
	case errors.Is(err, desfire.ErrCardAuth):
		return "card_auth"
	case errors.Is(err, desfire.ErrNotIssued):
		return "not_issued"
	case errors.Is(err, ErrNotISO14443_4) || errors.As(err, &ie) || errors.Is(err, desfire.StatusIllegalCommand):
		return "not_desfire"
	case errors.Is(err, desfire.ErrIdentity):
		return "bad_identity"
	case errors.Is(err, iso14443.ErrNoResponse):
		return "removed"
	case errors.Is(err, iso14443.ErrProtocol) || errors.Is(err, iso14443.ErrATS) || errors.Is(err, desfire.ErrMalformed):
		return "protocol"
	}
	return "other"
}

// ErrNotISO14443_4: the card does not speak ISO/IEC 14443-4 (SAK bit 0x20
// clear), so it cannot be a DESFire: a MIFARE Classic, Ultralight or a
// "magic" card.
var ErrNotISO14443_4 = errors.New("cardcheck: not an ISO/IEC 14443-4 card")

// Inspect runs the checks on a card the reader just selected. It returns a
// *Result, and an error only when the reader chip failed.
func (cfg Config) Inspect(ctx context.Context, dev *mfrc522.Dev, card mfrc522.Card) (any, error) {
	res := &Result{Mode: cfg.Mode, Fingerprint: desfire.Fingerprint{UID: card.UID, ATQA: card.ATQA, SAK: card.SAK}}
	if !card.ISODEP() {
		if cfg.Mode == ModeDESFire {
			res.Outcome, res.Err = Refused, ErrNotISO14443_4
		}
		return res, nil
	}
	link, err := iso14443.Activate(ctx, dev, dev.Clock(), cfg.Link)
	if err != nil {
		return res, res.fail(err)
	}
	res.Fingerprint.ATS = link.ATS().Raw
	switch cfg.Mode {
	case ModeDESFire:
		c := desfire.New(link, desfire.Options{Native: cfg.Native})
		id, keys, err := desfire.ReadIdentityKeys(ctx, c, card.UID, cfg.Sites...)
		if err != nil {
			return res, res.fail(err)
		}
		res.Identity, res.KeyVersion = &id, keys.Version
	default:
		trusted := cfg.Trusted
		if trusted == nil {
			trusted = desfire.NXPOriginalityKeys()
		}
		fp, err := desfire.CaptureFingerprint(ctx, link, res.Fingerprint, trusted)
		res.Fingerprint = fp
		if err != nil {
			return res, res.fail(err)
		}
	}
	// The card goes to HALT; a failure here changes nothing already read.
	if err := link.Deselect(ctx); err != nil && ChipFailed(err) {
		return res, err
	}
	return res, nil
}

// fail records a failed check and returns the error only if the chip
// failed.
func (r *Result) fail(err error) error {
	r.Err = err
	r.Outcome = Refused
	if errors.Is(err, iso14443.ErrNoResponse) || ChipFailed(err) {
		r.Outcome = Interrupted
	}
	if ChipFailed(err) {
		return err
	}
	return nil
}

// ChipFailed tells a reader chip failure (re-initialise it) from card
// trouble.
func ChipFailed(err error) bool {
	return errors.Is(err, mfrc522.ErrTimeout) || errors.Is(err, mfrc522.ErrSPI) || errors.Is(err, mfrc522.ErrNoChip)
}
