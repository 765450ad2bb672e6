package agent

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Reason is the machine-readable cause of a decision. The set is closed and
// documented in docs/reasons.md; dashboards key on these strings, so they never
// change meaning.
type Reason string

// Decision reasons.
const (
	ReasonGranted              Reason = "granted"
	ReasonInvalidCredential    Reason = "invalid_credential"     // malformed input: bad length, digits, parity
	ReasonWrongCredentialType  Reason = "wrong_credential_type"  // e.g. a card at a PIN-only door, a bare UID at a desfire door
	ReasonCardReadFailed       Reason = "card_read_failed"       // the card stopped answering mid-read: nothing is known
	ReasonCardNotAuthenticated Reason = "card_not_authenticated" // desfire door: the card did not prove the site's key
	ReasonCardMismatch         Reason = "card_mismatch"          // uid door: the card answers unlike the one enrolled
	ReasonCardUnverified       Reason = "card_unverified"        // uid door: no fingerprint recorded and the door requires one
	ReasonUnknownCredential    Reason = "unknown_credential"     // not in the cache, or its holder is gone
	ReasonCardSuperseded       Reason = "card_superseded"        // desfire door: a newer card was issued for the tag number
	ReasonUserBlocked          Reason = "user_blocked"           // Salto user blocked
	ReasonUserSuspended        Reason = "user_suspended"         // Salto user has no subscription seat
	ReasonExpired              Reason = "expired"                // user expires_at, credential ends_at or schedule end date passed
	ReasonNotYetValid          Reason = "not_yet_valid"          // credential starts_at or schedule start date ahead
	ReasonPINDisabled          Reason = "pin_disabled"           // the user's use_pin is off
	ReasonNoAccessToDoor       Reason = "no_access_to_door"      // no access group with a schedule covers this door
	ReasonOutsideSchedule      Reason = "outside_schedule"       // covered, but not at this day or hour
	ReasonSecondFactorRequired Reason = "second_factor_required" // card_and_pin door: the other factor is missing
	ReasonCredentialMismatch   Reason = "credential_mismatch"    // card and PIN belong to different users
	ReasonLockedOut            Reason = "locked_out"             // too many wrong PINs at this door
	ReasonDoorLockdown         Reason = "door_lockdown"          // the door is in lockdown
	ReasonCacheStale           Reason = "cache_stale"            // policy: cache older than the allowed age
	ReasonCacheUnavailable     Reason = "cache_unavailable"      // the cache could not be read (fail secure)
	ReasonClockUnsynced        Reason = "clock_unsynced"         // policy: schedule-bound access with an untrusted clock
)

// Reasons lists every reason, in documentation order.
var Reasons = []Reason{
	ReasonGranted, ReasonInvalidCredential, ReasonWrongCredentialType,
	ReasonCardReadFailed, ReasonCardNotAuthenticated, ReasonCardMismatch, ReasonCardUnverified,
	ReasonUnknownCredential, ReasonCardSuperseded, ReasonUserBlocked, ReasonUserSuspended, ReasonExpired, ReasonNotYetValid, ReasonPINDisabled,
	ReasonNoAccessToDoor, ReasonOutsideSchedule, ReasonSecondFactorRequired, ReasonCredentialMismatch,
	ReasonLockedOut, ReasonDoorLockdown, ReasonCacheStale, ReasonCacheUnavailable, ReasonClockUnsynced,
}

// GroupRef identifies the access group that granted access.
type GroupRef struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Decision is the answer to "may this credential open this door now". A denial
// is a Decision with Granted false, not an error.
type Decision struct {
	Granted    bool           `json:"granted"`
	Reason     Reason         `json:"reason"`
	Detail     string         `json:"detail,omitempty"` // human explanation, never a secret
	Door       string         `json:"door"`
	User       *UserRef       `json:"user,omitempty"`
	Group      *GroupRef      `json:"group,omitempty"`
	Kind       CredentialKind `json:"credential_kind,omitempty"`
	Credential string         `json:"credential,omitempty"` // masked
	// Alarm, on a denial, says why it is also an alarm (a copied UID, a
	// forged or replayed card answer): the door records a card_alarm.
	Alarm string `json:"alarm,omitempty"`
	// Learn is what the door records about the card after deciding (its
	// first fingerprint, a newer DESFire generation); nil: nothing.
	Learn *CardLearning `json:"-"`
}

// CredentialFacts is what the cache knows about one credential key: the stored
// credential, its holder (nil when the holder is not in the snapshot) and the
// ids of the access groups the holder belongs to.
type CredentialFacts struct {
	Credential Credential
	User       *User
	GroupIDs   []string
	// Card is what the gateway recorded about the card (fingerprint,
	// DESFire generation); zero when nothing.
	Card CardRecord
}

// Resolved is a presented credential together with the facts looked up for it.
// Facts is nil when the cache has no such credential; Err is set when the input
// was malformed.
type Resolved struct {
	Presented Presented
	Facts     *CredentialFacts
	Err       error
}

// GroupLookup returns access groups by id.
type GroupLookup interface {
	Group(id string) (*AccessGroup, bool)
}

// Input is everything a decision depends on.
type Input struct {
	Door        Door
	Credentials []Resolved // one, or card then PIN for card_and_pin
	Groups      GroupLookup
	Location    *time.Location // site time zone
	Now         time.Time
	// UntrustedClock applies the deny_scheduled clock policy: the gateway's
	// clock is not known to be right (no RTC, no NTP yet, or it went
	// backwards), so only access that does not depend on the time may be
	// granted — an always-schedule, with no validity window on the user or
	// the credential. Everything else is denied with clock_unsynced.
	UntrustedClock bool
}

// Decide is the access decision: a pure function of its input, following Salto
// KS semantics. Access is granted only through an access group that holds the
// user, covers the door and has a time schedule matching now in the site zone.
func Decide(in Input) Decision {
	d := Decision{Door: in.Door.ID}
	if len(in.Credentials) == 0 {
		return deny(d, ReasonInvalidCredential, "no credential presented")
	}
	first := in.Credentials[0]
	d.Kind, d.Credential = first.Presented.Kind, first.Presented.Masked()
	for _, c := range in.Credentials {
		k := c.Presented.Kind
		if !in.Door.Mode.Accepts(k) {
			return deny(d, ReasonWrongCredentialType, fmt.Sprintf("door %q (mode %s) does not accept a %s", in.Door.ID, in.Door.Mode, kindNoun(k)))
		}
		if in.Door.RequiresDESFire() && k.IsCard() && k != KindDESFire {
			return deny(d, ReasonWrongCredentialType, fmt.Sprintf("door %q opens only for a DESFire card that proves the site's key; a %s proves nothing", in.Door.ID, k))
		}
	}
	if in.Door.Mode == ModeCardAndPIN {
		return decideTwoFactor(d, in)
	}
	if len(in.Credentials) > 1 {
		return deny(d, ReasonInvalidCredential, fmt.Sprintf("door mode %s takes one credential, got %d", in.Door.Mode, len(in.Credentials)))
	}
	if r, ok := checkCredential(&d, first, in); !ok {
		return r
	}
	return decideAccess(d, in, first.Facts)
}

// decideTwoFactor handles card_and_pin: a card alone that would open the door
// answers second_factor_required (with its holder, so the controller knows
// whose PIN to expect); card and PIN must belong to the same user.
func decideTwoFactor(d Decision, in Input) Decision {
	var card, pin *Resolved
	for i := range in.Credentials {
		c := &in.Credentials[i]
		switch {
		case c.Presented.Kind == KindPIN && pin == nil:
			pin = c
		case c.Presented.Kind.IsCard() && card == nil:
			card = c
		default:
			return deny(d, ReasonInvalidCredential, "card_and_pin takes one card and one PIN")
		}
	}
	if card == nil {
		return deny(d, ReasonSecondFactorRequired, "present the card first, then type the PIN")
	}
	if r, ok := checkCredential(&d, *card, in); !ok {
		return r
	}
	if pin == nil {
		r := decideAccess(d, in, card.Facts)
		if !r.Granted {
			return r
		}
		r.Granted, r.Reason, r.Group, r.Detail = false, ReasonSecondFactorRequired, nil, "card accepted; type the PIN"
		return r
	}
	if r, ok := checkCredential(&d, *pin, in); !ok {
		r.Kind, r.Credential = KindPIN, pin.Presented.Masked()
		return r
	}
	if card.Facts.User.ID != pin.Facts.User.ID {
		d.User = nil
		return deny(d, ReasonCredentialMismatch, "the card and the PIN belong to different users")
	}
	return decideAccess(d, in, card.Facts)
}

// checkCredential runs the per-credential checks: well-formed, known, holder
// present and in good standing, and inside the credential's own window.
func checkCredential(d *Decision, c Resolved, in Input) (Decision, bool) {
	now, loc := in.Now, in.Location
	if loc == nil {
		loc = time.UTC
	}
	stamp := func(t time.Time) string { return t.In(loc).Format("2006-01-02 15:04 MST") }
	if c.Err != nil {
		detail := "malformed credential"
		if errors.Is(c.Err, ErrInvalidCredential) {
			detail = c.Err.Error()
		}
		return deny(*d, ReasonInvalidCredential, detail), false
	}
	if r, ok := checkCard(d, c, in); !ok {
		return r, false
	}
	if c.Facts == nil {
		return deny(*d, ReasonUnknownCredential, "no such credential in the cache"), false
	}
	u := c.Facts.User
	if u == nil {
		return deny(*d, ReasonUnknownCredential, "the credential's holder is no longer in the site"), false
	}
	d.User = u.Ref()
	cr := c.Facts.Credential
	switch {
	case u.Blocked:
		return deny(*d, ReasonUserBlocked, "the user is blocked in Salto KS"), false
	case u.Subscription == Suspended:
		return deny(*d, ReasonUserSuspended, "the user is suspended (no subscription seat on the site)"), false
	case in.UntrustedClock && timeBound(c.Facts):
		return deny(*d, ReasonClockUnsynced, "the gateway clock is not trusted, and this user or credential has a validity window"), false
	case !u.ExpiresAt.IsZero() && !now.Before(u.ExpiresAt):
		return deny(*d, ReasonExpired, "the user expired at "+stamp(u.ExpiresAt)), false
	case !cr.StartsAt.IsZero() && now.Before(cr.StartsAt):
		return deny(*d, ReasonNotYetValid, "the credential is valid from "+stamp(cr.StartsAt)), false
	case !cr.EndsAt.IsZero() && !now.Before(cr.EndsAt):
		return deny(*d, ReasonExpired, "the credential ended at "+stamp(cr.EndsAt)), false
	case c.Presented.Kind == KindPIN && !u.UsePIN:
		return deny(*d, ReasonPINDisabled, "PIN use is switched off for this user in Salto KS"), false
	}
	return *d, true
}

// timeBound reports whether access through f depends on the date: the user
// expires or the credential has its own window.
func timeBound(f *CredentialFacts) bool {
	return !f.User.ExpiresAt.IsZero() || !f.Credential.StartsAt.IsZero() || !f.Credential.EndsAt.IsZero()
}

// decideAccess applies Salto's access-group semantics for the holder.
func decideAccess(d Decision, in Input, f *CredentialFacts) Decision {
	var covering, unscheduled, untrusted int
	var before, after, outside int
	for _, id := range f.GroupIDs {
		g, ok := in.Groups.Group(id)
		if !ok || !in.Door.CoveredBy(g) {
			continue
		}
		covering++
		if len(g.Schedules) == 0 {
			unscheduled++
			continue
		}
		local := in.Now.In(in.Location)
		for _, s := range g.Schedules {
			if in.UntrustedClock && (!s.AlwaysOn() || timeBound(f)) {
				untrusted++
				continue
			}
			switch s.At(local) {
			case ScheduleMatch:
				d.Granted, d.Reason = true, ReasonGranted
				d.Group = &GroupRef{ID: g.ID, Name: g.Name}
				d.Detail = "access group " + g.Name
				return d
			case ScheduleBefore:
				before++
			case ScheduleAfter:
				after++
			default:
				outside++
			}
		}
	}
	switch {
	case covering == 0:
		return deny(d, ReasonNoAccessToDoor, "the user is in no access group for this door")
	case covering == unscheduled:
		return deny(d, ReasonNoAccessToDoor, "the user's access groups for this door have no time schedule, which grants nothing")
	case untrusted > 0 && before+after+outside == 0:
		return deny(d, ReasonClockUnsynced, "the gateway clock is not trusted, and this access depends on the date or time")
	case outside == 0 && after == 0:
		return deny(d, ReasonNotYetValid, "the access schedule has not started yet")
	case outside == 0 && before == 0:
		return deny(d, ReasonExpired, "the access schedule has ended")
	}
	return deny(d, ReasonOutsideSchedule, "not at this day or time")
}

func deny(d Decision, r Reason, detail string) Decision {
	d.Granted, d.Reason, d.Detail = false, r, detail
	return d
}

func kindNoun(k CredentialKind) string {
	if k == KindPIN {
		return "PIN"
	}
	return "card"
}

// SortedGroupIDs returns ids sorted, so that the granting group is the same on
// every gateway and every run.
func SortedGroupIDs(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
