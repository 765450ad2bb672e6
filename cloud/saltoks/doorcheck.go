package saltoks

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/portier-io/portier/agent"
)

// UnknownID is a Salto lock or access group a door is mapped to that the site
// does not have: the door opens for nobody through it.
type UnknownID struct {
	Door  string  // the door's id
	Kind  string  // "lock" or "access group"
	ID    string  // the configured id
	Close []Match // what the site has that looks like it, best first
}

// Match is a site object close to an unknown id.
type Match struct {
	ID   string
	Name string // Salto's customer_reference
}

// String says which door names what and, when there are any, the close
// matches the site has.
func (u UnknownID) String() string {
	key := "salto_locks"
	if u.Kind == KindAccessGroup {
		key = "salto_access_groups"
	}
	s := fmt.Sprintf("door %q: %s %s (%s) is not on the Salto KS site, so it opens the door for nobody", u.Door, u.Kind, u.ID, key)
	if len(u.Close) > 0 {
		s += "; the site has " + u.Matches()
	}
	return s
}

// Matches lists the close matches as `"Front door" (7c1e…), "…" (…)`.
func (u UnknownID) Matches() string {
	parts := make([]string, len(u.Close))
	for i, m := range u.Close {
		parts[i] = fmt.Sprintf("%q (%s)", m.Name, m.ID)
	}
	return strings.Join(parts, ", ")
}

// Kinds of UnknownID.
const (
	KindLock        = "lock"
	KindAccessGroup = "access group"
)

// maxMatches bounds the close matches named per unknown id.
const maxMatches = 3

// CheckDoors checks every lock and access group the doors are mapped to
// against the site's lists and returns the ones the site lacks, each with the
// site's closest locks or groups: ids a few typing slips away or sharing a
// long prefix, and objects whose name is like the configured value or the
// door's name. Ids compare without regard to case.
func CheckDoors(doors []agent.Door, locks []Lock, groups []AccessGroup) []UnknownID {
	lockObjs := make([]Match, len(locks))
	for i, l := range locks {
		lockObjs[i] = Match{ID: CanonicalID(l.ID), Name: l.CustomerReference}
	}
	groupObjs := make([]Match, len(groups))
	for i, g := range groups {
		groupObjs[i] = Match{ID: CanonicalID(g.ID), Name: g.CustomerReference}
	}
	var out []UnknownID
	for _, d := range doors {
		for _, set := range []struct {
			kind string
			ids  []string
			objs []Match
		}{{KindLock, d.LockIDs, lockObjs}, {KindAccessGroup, d.GroupIDs, groupObjs}} {
			for _, id := range set.ids {
				want := CanonicalID(id)
				if slices.ContainsFunc(set.objs, func(m Match) bool { return m.ID == want }) {
					continue
				}
				out = append(out, UnknownID{Door: d.ID, Kind: set.kind, ID: want, Close: closeMatches(want, d, set.objs)})
			}
		}
	}
	return out
}

// closeMatches ranks the site's objects by how much they look like want:
// first by id (edit distance, then shared prefix), then by name.
func closeMatches(want string, d agent.Door, objs []Match) []Match {
	type scored struct {
		m     Match
		score int // lower is closer
	}
	w := strings.ToLower(want)
	names := []string{w, strings.ToLower(d.Name), strings.ToLower(d.ID)}
	var found []scored
	for _, o := range objs {
		best := -1
		// An id a few slips away (a GUID has 36 characters: up to 4 typed
		// wrong, left out or swapped).
		if dist := levenshtein(w, o.ID, 5); dist <= 4 {
			best = dist
		} else if p := commonPrefix(w, o.ID); p >= 8 {
			best = 10 + 36 - p
		}
		if o.Name != "" {
			n := strings.ToLower(o.Name)
			for _, q := range names {
				if q == "" {
					continue
				}
				score := -1
				switch {
				case q == n:
					score = 50
				case len(q) >= 3 && (strings.Contains(n, q) || strings.Contains(q, n)):
					score = 60
				default:
					if dist := levenshtein(q, n, 3); dist <= max(1, min(3, len(q)/4)) {
						score = 70 + dist
					}
				}
				if score >= 0 && (best < 0 || score < best) {
					best = score
				}
			}
		}
		if best >= 0 {
			found = append(found, scored{o, best})
		}
	}
	slices.SortStableFunc(found, func(a, b scored) int {
		return cmp.Or(cmp.Compare(a.score, b.score), cmp.Compare(a.m.ID, b.m.ID))
	})
	out := make([]Match, 0, min(len(found), maxMatches))
	for _, f := range found[:min(len(found), maxMatches)] {
		out = append(out, f.m)
	}
	return out
}

// levenshtein is the edit distance of a and b, or limit+1 once it is known to
// exceed limit (comparing against a thousand ids stays cheap).
func levenshtein(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > limit {
			return limit + 1
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
