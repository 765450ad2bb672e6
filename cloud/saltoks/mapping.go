package saltoks

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portier-io/portier/agent"
)

// The mapping from Salto objects to agent types. It is the only one: the sync
// (cloud/saltoks/sitesync) and the snapshot-file import
// (cloud/saltoks/sitefile) both build their snapshot with a Mapper, so the
// same site data lands as the same cache whichever way it arrives.
//
// Policy (docs/saltoks.md, "One mapping"):
//
//   - Every id is written in canonical form (CanonicalID): Salto's ids are
//     GUIDs and compare without regard to case.
//   - An empty or missing subscription_state reads as subscribed. Salto always
//     sends the field (subscribed | suspended, measured); suspended is a state
//     Salto sets and states explicitly (no seat at creation, an unsubscribe),
//     and the snapshot format has always defaulted to subscribed. Reading a
//     missing field as suspended would lock a whole site out over a missing
//     field, while the security-relevant refusal (blocked) is its own field.
//   - A value the mapping cannot use is read the one way that can only deny
//     access, and reported as a Problem: an unknown subscription_state as
//     suspended; a tag number that is not 1–8 digits as no tag credential (the
//     user stays, with their other credentials); a tag number two users hold
//     as nobody's; an unreadable expires_at or a user without ids leaves the
//     user out; an unusable time schedule, a group lock the site lacks and a
//     group member who is not a site user are left out.
//   - The two callers differ only in who can act on a problem. The sync
//     applies the snapshot and reports each problem as a warning: the gateway
//     cannot fix Salto's data, and refusing the site would keep every other
//     change out. The import refuses a file with problems, naming each one:
//     the operator holds the file and can fix it, and nothing lands that the
//     operator did not see. So no data is ever read two ways.

// Problem is Salto data the mapping could not take as it is. Its Effect says
// how the data was read instead; it can only deny access, never grant it.
type Problem struct {
	List   string // "users", "locks" or "access_groups"
	Index  int    // position in the list it came from; -1 when it has none (paged API answers)
	ID     string // the object's id, when it has one
	Name   string // an access group's customer_reference (snapshot-file errors name groups by it)
	Field  string // where inside the object, e.g. "time_schedules[2]"; "" for the whole object
	Msg    string // what is wrong
	Effect string // how it was read instead
}

// At is where the problem is in a snapshot file, e.g. `users[3] (9b7f…)` or
// `access_groups[0] (Residents).time_schedules[1]`.
func (p Problem) At() string {
	at := p.List
	if p.Index >= 0 {
		at += fmt.Sprintf("[%d]", p.Index)
	}
	switch {
	case p.List == "access_groups" && p.Name != "":
		at += " (" + p.Name + ")"
	case p.ID != "":
		at += " (" + p.ID + ")"
	}
	if p.Field != "" {
		at += "." + p.Field
	}
	return at
}

// String is the problem as a sync warning: the object, what is wrong and how
// it was read.
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.ID == "":
		b.WriteString(strings.ReplaceAll(p.List, "_", " ")) // a problem of the list, e.g. a shared tag
	case p.List == "users":
		b.WriteString("user")
	case p.List == "access_groups":
		b.WriteString("access group")
	default:
		b.WriteString(strings.TrimSuffix(p.List, "s"))
	}
	if p.ID != "" {
		b.WriteString(" " + p.ID)
	}
	if p.Name != "" {
		b.WriteString(" (" + p.Name + ")")
	}
	if p.Field != "" {
		b.WriteString(" " + p.Field)
	}
	b.WriteString(": " + p.Msg)
	if p.Effect != "" {
		b.WriteString(" (" + p.Effect + ")")
	}
	return b.String()
}

// Effects of problems.
const (
	effectUserLeftOut = "user left out: they cannot open any door"
	effectNoTag       = "the user keeps no tag credential"
	effectSuspended   = "read as suspended: the user opens no door"
	effectSharedTag   = "it opens nothing until that is fixed in Salto"
	effectLeftOut     = "left out"
)

// Mapper turns one site's Salto objects into agent types and collects the
// problems it met. It is safe for concurrent use, so a sync can map users and
// access groups as their pages arrive.
type Mapper struct {
	site agent.Site
	loc  *time.Location

	mu       sync.Mutex
	problems []Problem
	groupAt  map[string]groupRef // canonical group id → where it came from
}

type groupRef struct {
	index int
	id    string
	name  string
}

// NewMapper starts the mapping of site s. The site must name a time zone:
// schedules evaluated in the wrong zone would open doors at the wrong hours.
func NewMapper(s Site) (*Mapper, error) {
	site := agent.Site{ID: CanonicalID(s.ID), UID: s.SiteUID, Name: s.CustomerReference, TimeZone: s.TimeZone}
	loc, err := site.Location()
	if err != nil {
		return nil, err
	}
	return &Mapper{site: site, loc: loc, groupAt: map[string]groupRef{}}, nil
}

// Site is the mapped site.
func (m *Mapper) Site() agent.Site { return m.site }

// Location is the site's time zone.
func (m *Mapper) Location() *time.Location { return m.loc }

func (m *Mapper) report(p Problem) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.problems = append(m.problems, p)
}

// Problems returns what the mapping met so far, in the order it met it.
func (m *Mapper) Problems() []Problem {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.problems)
}

// Lock maps a lock.
func (m *Mapper) Lock(l Lock) agent.Lock {
	return agent.Lock{ID: CanonicalID(l.ID), Name: l.CustomerReference}
}

// User maps a site user; index is its position in a snapshot file's list (-1
// for users read from the API). ok is false when the user is left out.
func (m *Mapper) User(index int, su SiteUser) (u agent.User, ok bool) {
	u = agent.User{ID: CanonicalID(su.ID), PlatformID: CanonicalID(su.User.ID), FirstName: su.User.FirstName,
		LastName: su.User.LastName, Alias: su.Alias, Blocked: su.Blocked, UsePIN: su.UsePIN == nil || *su.UsePIN}
	problem := func(msg, effect string) {
		m.report(Problem{List: "users", Index: index, ID: u.ID, Msg: msg, Effect: effect})
	}
	switch {
	case u.ID == "":
		problem("id (site-user id) is empty", effectUserLeftOut)
		return u, false
	case u.PlatformID == "":
		problem("user.id (platform user id) is empty", effectUserLeftOut)
		return u, false
	}
	if su.User.Email != nil {
		u.Email = *su.User.Email
	}
	switch st := agent.SubscriptionState(su.SubscriptionState); st {
	case "":
		u.Subscription = agent.Subscribed
	case agent.Subscribed, agent.Suspended:
		u.Subscription = st
	default:
		u.Subscription = agent.Suspended
		problem(fmt.Sprintf("subscription_state %q is not subscribed or suspended", clip(su.SubscriptionState, 40)), effectSuspended)
	}
	if su.User.TagNumber != nil && *su.User.TagNumber != "" {
		// The error names no digits: a tag number is a credential.
		if n, err := agent.NormalizeTagNumber(*su.User.TagNumber); err != nil {
			problem("user.tag_number: "+err.Error(), effectNoTag)
		} else {
			u.TagNumber = n
		}
	}
	if su.ExpiresAt != nil && *su.ExpiresAt != "" {
		t, err := ParseInstant(*su.ExpiresAt, m.loc)
		if err != nil {
			problem("expires_at: "+err.Error(), effectUserLeftOut)
			return u, false
		}
		u.ExpiresAt = t
	}
	return u, true
}

// Group maps an access group with its members (platform user ids), locks and
// time schedules; index is its position in a snapshot file's list (-1 for
// groups read from the API).
func (m *Mapper) Group(index int, g AccessGroup, members, locks []string, schedules []TimeSchedule) agent.AccessGroup {
	ag := agent.AccessGroup{ID: CanonicalID(g.ID), Name: g.CustomerReference}
	m.mu.Lock()
	m.groupAt[ag.ID] = groupRef{index: index, id: ag.ID, name: g.CustomerReference}
	m.mu.Unlock()
	ag.Members = make([]string, len(members))
	for i, p := range members {
		ag.Members[i] = CanonicalID(p)
	}
	ag.Locks = make([]string, len(locks))
	for i, l := range locks {
		ag.Locks[i] = CanonicalID(l)
	}
	for j, ts := range schedules {
		sc, err := m.schedule(ts)
		if err != nil {
			m.report(Problem{List: "access_groups", Index: index, ID: ag.ID, Name: g.CustomerReference,
				Field: fmt.Sprintf("time_schedules[%d]", j), Msg: err.Error(), Effect: "schedule left out"})
			continue
		}
		ag.Schedules = append(ag.Schedules, sc)
	}
	return ag
}

// schedule converts a Salto time schedule, reading dates in the site's zone.
func (m *Mapper) schedule(ts TimeSchedule) (agent.Schedule, error) {
	sc := agent.Schedule{ID: CanonicalID(ts.ID)}
	sc.Days[time.Monday], sc.Days[time.Tuesday], sc.Days[time.Wednesday] = ts.Monday, ts.Tuesday, ts.Wednesday
	sc.Days[time.Thursday], sc.Days[time.Friday] = ts.Thursday, ts.Friday
	sc.Days[time.Saturday], sc.Days[time.Sunday] = ts.Saturday, ts.Sunday
	var err error
	if sc.Start, err = agent.ParseTimeOfDay(ts.StartTime); err != nil {
		return sc, fmt.Errorf("start_time: %w", err)
	}
	if sc.End, err = agent.ParseTimeOfDay(ts.EndTime); err != nil {
		return sc, fmt.Errorf("end_time: %w", err)
	}
	if ts.StartDate != nil && *ts.StartDate != "" {
		if sc.StartDate, err = agent.ParseScheduleDate(*ts.StartDate, false, m.loc); err != nil {
			return sc, fmt.Errorf("start_date: %w", err)
		}
	}
	if ts.EndDate != nil && *ts.EndDate != "" {
		if sc.EndDate, err = agent.ParseScheduleDate(*ts.EndDate, true, m.loc); err != nil {
			return sc, fmt.Errorf("end_date: %w", err)
		}
	}
	return sc, sc.Validate()
}

// Finish completes a snapshot whose site, locks, users and groups came from
// this mapper: a tag number held by more than one user is taken from all of
// them, group locks the site lacks and group members who are not site users
// are left out, and the users' tag numbers become the Salto tag credentials
// (replacing s.Credentials).
func (m *Mapper) Finish(s *agent.Snapshot) {
	holders := make(map[string][]string, len(s.Users))
	for _, u := range s.Users {
		if u.TagNumber != "" {
			holders[u.TagNumber] = append(holders[u.TagNumber], u.ID)
		}
	}
	shared := map[string]bool{}
	for n, ids := range holders {
		if len(ids) > 1 {
			shared[n] = true
			m.report(Problem{List: "users", Index: -1, Msg: fmt.Sprintf("tag number …%s is held by %d users (%s)",
				n[len(n)-3:], len(ids), strings.Join(ids, ", ")), Effect: effectSharedTag})
		}
	}
	for i := range s.Users {
		if shared[s.Users[i].TagNumber] {
			s.Users[i].TagNumber = ""
		}
	}
	locks := make(map[string]bool, len(s.Locks))
	for _, l := range s.Locks {
		locks[l.ID] = true
	}
	platform := make(map[string]bool, len(s.Users))
	for _, u := range s.Users {
		platform[u.PlatformID] = true
	}
	for i := range s.Groups {
		g := &s.Groups[i]
		m.mu.Lock()
		ref, ok := m.groupAt[g.ID]
		m.mu.Unlock()
		if !ok {
			ref = groupRef{index: -1, id: g.ID, name: g.Name}
		}
		problem := func(msg string) {
			m.report(Problem{List: "access_groups", Index: ref.index, ID: ref.id, Name: ref.name, Msg: msg, Effect: effectLeftOut})
		}
		g.Locks = slices.DeleteFunc(g.Locks, func(l string) bool {
			if !locks[l] {
				problem(fmt.Sprintf("lock %q is not in locks", l))
				return true
			}
			return false
		})
		var missing []string
		g.Members = slices.DeleteFunc(g.Members, func(p string) bool {
			if !platform[p] {
				missing = append(missing, p)
				return true
			}
			return false
		})
		switch len(missing) {
		case 0:
		case 1:
			problem(fmt.Sprintf("member %q is not a user's platform id", missing[0]))
		default:
			problem(fmt.Sprintf("member %q and %d more are not users' platform ids", missing[0], len(missing)-1))
		}
	}
	// Tag numbers are normalised and unique by now, so this cannot fail.
	tags, err := agent.TagCredentials(s.Users)
	if err != nil {
		panic("saltoks: tag credentials of mapped users: " + err.Error())
	}
	s.Credentials = tags
}

// ParseInstant reads an RFC 3339 time; one without an offset is site wall time
// in loc (Salto's local times, and what an operator types).
func ParseInstant(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 (2026-11-23T10:00:00+01:00), or 2026-11-23T10:00 or 2026-11-23 in the site's time zone", clip(s, 40))
}
