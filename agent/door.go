package agent

import (
	"fmt"
	"slices"
)

// DoorMode says which credentials open a door.
type DoorMode string

// Door modes.
const (
	ModeCard       DoorMode = "card"         // a card or tag alone
	ModePIN        DoorMode = "pin"          // a PIN alone
	ModeCardOrPIN  DoorMode = "card_or_pin"  // either
	ModeCardAndPIN DoorMode = "card_and_pin" // a card, then the PIN of the same user
)

// DoorModes lists the valid modes, for help texts and validation.
var DoorModes = []DoorMode{ModeCard, ModePIN, ModeCardOrPIN, ModeCardAndPIN}

// Accepts reports whether a credential of kind k may be presented at a door in
// this mode (alone or as one of two factors).
func (m DoorMode) Accepts(k CredentialKind) bool {
	switch m {
	case ModeCard:
		return k.IsCard()
	case ModePIN:
		return k == KindPIN
	case ModeCardOrPIN, ModeCardAndPIN:
		return k.Valid()
	}
	return false
}

// Door is one door the gateway controls. It is not a Salto lock: it is mapped
// to the Salto lock ids and/or access group ids whose members may open it.
type Door struct {
	ID       string
	Name     string
	Mode     DoorMode
	LockIDs  []string // Salto locks whose access groups open this door
	GroupIDs []string // Salto access groups that open this door
	// CardMode is what a card must prove here ("": CardModeUID).
	CardMode CardMode
	// Unfingerprinted is the policy for known cards without a recorded
	// fingerprint at a uid door ("": FingerprintLearn).
	Unfingerprinted FingerprintPolicy
}

// Validate checks the door is usable.
func (d Door) Validate() error {
	if d.ID == "" {
		return fmt.Errorf("door has no id")
	}
	if !slices.Contains(DoorModes, d.Mode) {
		return fmt.Errorf("door %q: mode %q is not one of %v", d.ID, d.Mode, DoorModes)
	}
	if d.CardMode != "" && !slices.Contains(CardModes, d.CardMode) {
		return fmt.Errorf("door %q: card mode %q is not one of %v", d.ID, d.CardMode, CardModes)
	}
	if d.Unfingerprinted != "" && !slices.Contains(FingerprintPolicies, d.Unfingerprinted) {
		return fmt.Errorf("door %q: fingerprint policy %q is not one of %v", d.ID, d.Unfingerprinted, FingerprintPolicies)
	}
	if len(d.LockIDs) == 0 && len(d.GroupIDs) == 0 {
		return fmt.Errorf("door %q is mapped to no Salto lock and no access group, so nobody could open it", d.ID)
	}
	return nil
}

// RequiresDESFire reports whether only a DESFire card proving the site's
// key opens this door.
func (d Door) RequiresDESFire() bool { return d.CardMode == CardModeDESFire }

// CoveredBy reports whether membership of g grants access to this door: the
// group is mapped to the door, or holds one of the door's locks.
func (d Door) CoveredBy(g *AccessGroup) bool {
	if slices.Contains(d.GroupIDs, g.ID) {
		return true
	}
	for _, l := range d.LockIDs {
		if slices.Contains(g.Locks, l) {
			return true
		}
	}
	return false
}
