package agent

import (
	"strings"
	"time"
)

// SubscriptionState is Salto's per-user seat state.
type SubscriptionState string

// Salto subscription states. A suspended user holds no seat and is refused at
// every lock.
const (
	Subscribed SubscriptionState = "subscribed"
	Suspended  SubscriptionState = "suspended"
)

// User is a Salto site user. Salto gives every user two ids: the site-user id
// (used by /users endpoints) and the platform user id (used by access-group
// membership). Both are kept because the API mixes them.
type User struct {
	ID           string // site-user id
	PlatformID   string // platform user id (user.id)
	FirstName    string
	LastName     string
	Alias        string
	Email        string
	TagNumber    string // Salto 8-digit tag number, "" when the user has no tag
	Blocked      bool
	Subscription SubscriptionState
	ExpiresAt    time.Time // zero: never expires
	UsePIN       bool      // Salto use_pin; PIN credentials of a user without it are refused
}

// Name is the display name: "First Last", else the alias, else the id.
func (u User) Name() string {
	if n := strings.TrimSpace(u.FirstName + " " + u.LastName); n != "" {
		return n
	}
	if u.Alias != "" {
		return u.Alias
	}
	return u.ID
}

// Ref is the short identification carried in decisions and events.
func (u User) Ref() *UserRef {
	return &UserRef{ID: u.ID, PlatformID: u.PlatformID, Name: u.Name()}
}

// UserRef identifies a user in a decision or an event.
type UserRef struct {
	ID         string `json:"id"`
	PlatformID string `json:"platform_id,omitempty"`
	Name       string `json:"name,omitempty"`
}
