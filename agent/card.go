package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// A card's UID is public: any phone reads it and a "magic" card or an
// emulator presents it. So a door goes further, per its CardMode (DESIGN
// decision 9): at a uid door the reader also takes the card's fingerprint
// (what the chip answers besides its UID) and a card that answers unlike the
// one enrolled is refused; at a desfire door only a MIFARE DESFire card that
// proves the site's diversified key is accepted, and its identity comes from
// its enciphered identity file. This file holds what the decision needs of
// both; the readers' side is hal/mfrc522/cardcheck.

// CardMode says what a card must prove at a door.
type CardMode string

// Card modes.
const (
	// CardModeUID (the default): the UID identifies the card; the
	// fingerprint recorded at enrolment must match.
	CardModeUID CardMode = "uid"
	// CardModeDESFire: only a DESFire card proving the site's key opens;
	// other cards (UIDs, Wiegand, tag numbers) are the wrong type here.
	CardModeDESFire CardMode = "desfire"
)

// CardModes lists the valid card modes.
var CardModes = []CardMode{CardModeUID, CardModeDESFire}

// FingerprintPolicy says what a uid door does with a known card for which
// no fingerprint was recorded (enrolled before fingerprints existed, or
// imported as a bare UID).
type FingerprintPolicy string

// Fingerprint policies.
const (
	// FingerprintLearn (the default): the card's next tap records its
	// fingerprint (event card_learned) and is decided as usual; from then
	// on the card must answer the same.
	FingerprintLearn FingerprintPolicy = "learn"
	// FingerprintRequire: refused with card_unverified until re-enrolled.
	FingerprintRequire FingerprintPolicy = "require"
)

// FingerprintPolicies lists the valid policies.
var FingerprintPolicies = []FingerprintPolicy{FingerprintLearn, FingerprintRequire}

// CardOutcome says whether a reader finished its check of a card.
type CardOutcome string

// Card check outcomes.
const (
	// CardOK: the check ran to its end (a DESFire card proved the key).
	CardOK CardOutcome = "ok"
	// CardRefused: the card answered but did not prove what it had to
	// (Cause says how: wrong_key, integrity, card_auth, not_issued,
	// not_desfire, bad_identity, protocol).
	CardRefused CardOutcome = "refused"
	// CardInterrupted: the card stopped answering (pulled away).
	CardInterrupted CardOutcome = "interrupted"
)

// CardCheck is what a door's RFID reader learned about a presented card
// beyond its identifier. It holds no secret.
type CardCheck struct {
	// Fingerprint is the card's answers (ATQA, SAK, ATS, GetVersion,
	// originality signature) as one stable text of name=value fields
	// separated by ';'; "" when the reader took none.
	Fingerprint string
	Outcome     CardOutcome
	// Cause is a stable word for an outcome other than ok.
	Cause string
	// Generation and KeyVersion (a DESFire card that proved the key): its
	// identity file's card generation and its read key's version.
	Generation uint32
	KeyVersion byte
	// Summary describes the card for people, e.g. "DESFire EV2, originality
	// signature verified".
	Summary string
}

// CardRecord is what the gateway recorded about a card credential: the
// fingerprint of the card enrolled under a UID, or the newest generation
// issued or seen for a DESFire tag number.
type CardRecord struct {
	Fingerprint string
	Generation  uint32
}

// CardLearning is what a decision asks the door to record after a tap: a
// card's first fingerprint (FingerprintLearn), or a newer DESFire
// generation, so the cards it replaced are refused from then on.
type CardLearning struct {
	Key  string // the credential's cache key
	Card CardRecord
	What string // for the card_learned event
}

// CardStore records what doors learn about cards; the SQLite cache
// implements it. A fingerprint is recorded only where none is; a
// generation only raises the recorded one.
type CardStore interface {
	LearnCard(ctx context.Context, l CardLearning) error
}

// checkCard applies the door's card mode to a credential: its proof first
// (a check that did not finish or a DESFire card that did not prove the
// key decides at once), then, with facts, its record. ok false means d is
// the decision.
func checkCard(d *Decision, c Resolved, in Input) (Decision, bool) {
	p, cc := c.Presented, c.Presented.Card
	if cc == nil {
		return *d, true
	}
	describe := func(s string) string {
		if cc.Summary != "" {
			s += " (" + cc.Summary + ")"
		}
		return s
	}
	switch cc.Outcome {
	case CardInterrupted:
		return deny(*d, ReasonCardReadFailed, describe("the card stopped answering before it was read to the end ("+causeOr(cc.Cause, "removed")+"): present it again")), false
	case CardRefused:
		if p.Kind != KindDESFire {
			return deny(*d, ReasonCardReadFailed, describe("the card broke off its answers ("+causeOr(cc.Cause, "protocol")+"): present it again")), false
		}
		r := deny(*d, ReasonCardNotAuthenticated, describe("the card did not prove the site's key: "+causeText(cc.Cause)))
		if cc.Cause == "integrity" || cc.Cause == "card_auth" {
			r.Alarm = "a card answered with a forged or replayed proof (" + cc.Cause + ")"
		}
		return r, false
	}
	if c.Facts == nil {
		return *d, true // unknown: decided by checkCredential
	}
	if c.Facts.User != nil {
		d.User = c.Facts.User.Ref() // whose card was copied or replaced
	}
	rec := c.Facts.Card
	switch {
	case p.Kind == KindUID && cc.Fingerprint != "":
		switch {
		case rec.Fingerprint == cc.Fingerprint:
		case rec.Fingerprint == "" && in.Door.Unfingerprinted == FingerprintRequire:
			return deny(*d, ReasonCardUnverified, describe("no fingerprint was recorded for this card and the door requires one: enrol it again")), false
		case rec.Fingerprint == "":
			d.Learn = &CardLearning{Key: c.Facts.Credential.Key, Card: CardRecord{Fingerprint: cc.Fingerprint},
				What: describe("first fingerprint of this card recorded")}
		default:
			diff := FingerprintDiff(cc.Fingerprint, rec.Fingerprint)
			r := deny(*d, ReasonCardMismatch, describe("the card answers unlike the one enrolled under this UID: "+strings.Join(diff, ", ")+" differ"))
			r.Alarm = "a card presented an enrolled UID but answers differently (" + strings.Join(diff, ", ") + "): a copied UID on another chip?"
			return r, false
		}
	case p.Kind == KindDESFire:
		switch {
		case cc.Generation < rec.Generation:
			return deny(*d, ReasonCardSuperseded, fmt.Sprintf("card generation %d was replaced by generation %d for this tag number", cc.Generation, rec.Generation)), false
		case cc.Generation > rec.Generation:
			d.Learn = &CardLearning{Key: c.Facts.Credential.Key, Card: CardRecord{Generation: cc.Generation},
				What: fmt.Sprintf("card generation %d seen: earlier cards of this tag number are refused from now on", cc.Generation)}
		}
	}
	return *d, true
}

func causeOr(cause, def string) string {
	if cause == "" {
		return def
	}
	return cause
}

// causeText explains a DESFire check's cause word for people.
func causeText(cause string) string {
	switch cause {
	case "wrong_key":
		return "wrong_key (another site's card, or keys not rotated yet)"
	case "integrity":
		return "integrity (an answer failed its MAC or CRC: tampered or replayed)"
	case "card_auth":
		return "card_auth (the card could not show it holds the key)"
	case "not_issued":
		return "not_issued (no site application on the card)"
	case "not_desfire":
		return "not_desfire (not a DESFire card)"
	case "bad_identity":
		return "bad_identity (the identity file is not Portier's)"
	}
	return causeOr(cause, "unknown")
}

// FingerprintDiff names the fields in which two fingerprints differ
// (fields are name=value, separated by ';'); "fingerprint" when they do not
// even have the same fields.
func FingerprintDiff(a, b string) []string {
	fa, fb := strings.Split(a, ";"), strings.Split(b, ";")
	if len(fa) != len(fb) || len(fa) == 0 || fa[0] != fb[0] {
		return []string{"fingerprint"}
	}
	var out []string
	for i := 1; i < len(fa); i++ {
		na, _, _ := strings.Cut(fa[i], "=")
		nb, _, _ := strings.Cut(fb[i], "=")
		if na != nb {
			return []string{"fingerprint"}
		}
		if fa[i] != fb[i] && !slices.Contains(out, na) {
			out = append(out, na)
		}
	}
	if len(out) == 0 && a != b {
		return []string{"fingerprint"}
	}
	return out
}
