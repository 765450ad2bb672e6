package agent

import (
	"fmt"
	"slices"
	"strings"
)

// Snapshot is everything the gateway knows about one site at one moment: what
// a sync pulls from Salto KS or an import reads from a file. Applying a
// snapshot to the cache is atomic.
type Snapshot struct {
	Site   Site
	Locks  []Lock
	Users  []User
	Groups []AccessGroup
	// Credentials derived from Salto (tag numbers) and, for imports, local
	// credentials (PINs, UIDs) marked OriginLocal.
	Credentials []Credential
	// Enrolments carried by an imported file (UID/Wiegand → tag number).
	Enrolments []Enrolment
}

// Validate checks references inside the snapshot: unique ids, group members
// and locks that exist, credentials that name a user, schedules that can match.
// The error names the offending object.
func (s *Snapshot) Validate() error {
	if s.Site.ID == "" {
		return fmt.Errorf("site: id is empty")
	}
	if _, err := s.Site.Location(); err != nil {
		return fmt.Errorf("site %q: %w", s.Site.ID, err)
	}
	locks := make(map[string]bool, len(s.Locks))
	for i, l := range s.Locks {
		if l.ID == "" {
			return fmt.Errorf("locks[%d]: id is empty", i)
		}
		if locks[l.ID] {
			return fmt.Errorf("locks[%d]: duplicate id %q", i, l.ID)
		}
		locks[l.ID] = true
	}
	users := make(map[string]bool, len(s.Users))
	platform := make(map[string]bool, len(s.Users))
	for i, u := range s.Users {
		switch {
		case u.ID == "":
			return fmt.Errorf("users[%d]: id is empty", i)
		case u.PlatformID == "":
			return fmt.Errorf("users[%d] (%s): user.id (platform user id) is empty", i, u.ID)
		case users[u.ID]:
			return fmt.Errorf("users[%d]: duplicate id %q", i, u.ID)
		case platform[u.PlatformID]:
			return fmt.Errorf("users[%d] (%s): duplicate platform user id %q", i, u.ID, u.PlatformID)
		case u.Subscription != Subscribed && u.Subscription != Suspended:
			return fmt.Errorf("users[%d] (%s): subscription_state %q is not subscribed or suspended", i, u.ID, u.Subscription)
		}
		users[u.ID], platform[u.PlatformID] = true, true
	}
	groups := make(map[string]bool, len(s.Groups))
	for i, g := range s.Groups {
		if g.ID == "" {
			return fmt.Errorf("access_groups[%d]: id is empty", i)
		}
		if groups[g.ID] {
			return fmt.Errorf("access_groups[%d]: duplicate id %q", i, g.ID)
		}
		groups[g.ID] = true
		for _, m := range g.Members {
			if !platform[m] {
				return fmt.Errorf("access_groups[%d] (%s): member %q is not a user's platform id", i, g.Name, m)
			}
		}
		for _, l := range g.Locks {
			if !locks[l] {
				return fmt.Errorf("access_groups[%d] (%s): lock %q is not in locks", i, g.Name, l)
			}
		}
		for j, sc := range g.Schedules {
			if err := sc.Validate(); err != nil {
				return fmt.Errorf("access_groups[%d] (%s).time_schedules[%d]: %w", i, g.Name, j, err)
			}
		}
	}
	keys := make(map[string]bool, len(s.Credentials))
	for i, c := range s.Credentials {
		switch {
		case c.Key == "":
			return fmt.Errorf("credentials[%d]: empty key", i)
		case keys[c.Key]:
			return fmt.Errorf("credentials[%d]: the same %s credential is given twice (user %s)", i, c.Kind, c.UserID)
		case !users[c.UserID]:
			return fmt.Errorf("credentials[%d]: user %q is not in users", i, c.UserID)
		case !c.EndsAt.IsZero() && !c.StartsAt.IsZero() && c.EndsAt.Before(c.StartsAt):
			return fmt.Errorf("credentials[%d] (user %s): ends_at is before starts_at", i, c.UserID)
		}
		keys[c.Key] = true
	}
	for i, e := range s.Enrolments {
		if _, err := NormalizeTagNumber(e.TagNumber); err != nil {
			return fmt.Errorf("enrolments[%d]: %w", i, err)
		}
	}
	return nil
}

// TagCredentials derives one OriginSalto credential per user tag number. Two
// users with the same tag number are an error: a tap could not be attributed.
func TagCredentials(users []User) ([]Credential, error) {
	out := make([]Credential, 0, len(users))
	owner := make(map[string]string, len(users))
	for _, u := range users {
		if u.TagNumber == "" {
			continue
		}
		n, err := NormalizeTagNumber(u.TagNumber)
		if err != nil {
			return nil, fmt.Errorf("user %s: %w", u.ID, err)
		}
		if prev, dup := owner[n]; dup {
			return nil, fmt.Errorf("tag number %s is held by users %s and %s", n, prev, u.ID)
		}
		owner[n] = u.ID
		out = append(out, Credential{Key: TagKey(n), Kind: KindTagNumber, Origin: OriginSalto, UserID: u.ID, TagNumber: n})
	}
	slices.SortFunc(out, func(a, b Credential) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}
