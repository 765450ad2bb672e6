package agent

import "time"

// AccessCodeStatus is the lifecycle state of an access code, after Seam's
// model: setting (being programmed), set (working), removing (being removed),
// unset (removed, or never finished).
type AccessCodeStatus string

// Access code statuses.
const (
	AccessCodeSetting  AccessCodeStatus = "setting"
	AccessCodeSet      AccessCodeStatus = "set"
	AccessCodeRemoving AccessCodeStatus = "removing"
	AccessCodeUnset    AccessCodeStatus = "unset"
)

// AccessCode is a PIN this gateway programmed for one door: a Salto user (or
// guest) in the door's access group whose Salto-generated PIN is cached as a
// keyed hash. The PIN itself is never stored.
type AccessCode struct {
	ID     string
	Door   string
	Name   string
	Status AccessCodeStatus
	// Step is the last completed step of the running operation, so an
	// interrupted one can be finished or rolled back.
	Step            string
	SaltoUserID     string // site-user id
	SaltoPlatformID string // platform user id (group membership)
	SaltoGroupID    string
	CredentialKey   string    // pin:<hmac> once set
	StartsAt        time.Time // zero: valid at once
	EndsAt          time.Time // zero: ongoing
	CreatedAt       time.Time
	UpdatedAt       time.Time
	Error           string // why it is unset or stuck, "" otherwise
}
