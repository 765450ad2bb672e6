package sqlite

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portier-io/portier/agent"
)

// The users.facts column: a user's decision facts as fields separated by
// \x1f, group ids separated by \x1e. Packing them into one column lets the
// decision read credential and holder in one statement with a scalar subquery.
// Measured on the 1M-credential benchmark site (p50): primary-key read of the
// credential alone 3.7 µs; with this column 4.9 µs; with a LEFT JOIN over
// separate user columns 8.5 µs, and 13 µs once membership came from its own
// table. The format is private to this package.
const (
	factsVersion = "1"
	fieldSep     = "\x1f"
	groupSep     = "\x1e"
)

// encodeFacts packs u and its sorted group ids.
func encodeFacts(u agent.User, groups []string) string {
	expires := ""
	if !u.ExpiresAt.IsZero() {
		expires = strconv.FormatInt(u.ExpiresAt.Unix(), 10)
	}
	return strings.Join([]string{
		factsVersion, u.PlatformID, u.FirstName, u.LastName, u.Alias, u.Email, u.TagNumber,
		boolField(u.Blocked), string(u.Subscription), expires, boolField(u.UsePIN),
		strings.Join(groups, groupSep),
	}, fieldSep)
}

func boolField(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

var errFacts = errors.New("sqlite: malformed user facts")

// decodeFacts unpacks a users.facts value for the user with site-user id.
func decodeFacts(id, s string) (*agent.User, []string, error) {
	f := strings.Split(s, fieldSep)
	if len(f) != 12 || f[0] != factsVersion {
		return nil, nil, errFacts
	}
	u := &agent.User{
		ID: id, PlatformID: f[1], FirstName: f[2], LastName: f[3], Alias: f[4], Email: f[5], TagNumber: f[6],
		Blocked: f[7] == "1", Subscription: agent.SubscriptionState(f[8]), UsePIN: f[10] == "1",
	}
	if f[9] != "" {
		sec, err := strconv.ParseInt(f[9], 10, 64)
		if err != nil {
			return nil, nil, errFacts
		}
		u.ExpiresAt = time.Unix(sec, 0).UTC()
	}
	var groups []string
	if f[11] != "" {
		groups = strings.Split(f[11], groupSep)
	}
	return u, groups, nil
}

// groupsByMember inverts Salto's group → members lists into member (platform
// id) → sorted group ids.
func groupsByMember(groups []agent.AccessGroup) map[string][]string {
	out := map[string][]string{}
	for _, g := range groups {
		for _, m := range g.Members {
			out[m] = append(out[m], g.ID)
		}
	}
	for m, ids := range out {
		slices.Sort(ids)
		out[m] = slices.Compact(ids)
	}
	return out
}
