package saltokstest

import (
	"fmt"

	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/sitefile"
)

// SiteShape sizes a generated site.
type SiteShape struct {
	Users, Groups, Locks int
	// Suspended, Blocked: every n-th user is suspended / blocked (0: none).
	SuspendedEvery, BlockedEvery int
}

// Generated site ids are deterministic, so tests and benchmarks can name them.
const GeneratedSiteID = "5173e000-0000-4000-8000-000000000001"

// LockID, GroupID, UserID and PlatformID name the i-th generated object.
func LockID(i int) string     { return fmt.Sprintf("10c40000-0000-4000-8000-%012d", i) }
func GroupID(i int) string    { return fmt.Sprintf("a9000000-0000-4000-8000-%012d", i) }
func UserID(i int) string     { return fmt.Sprintf("5e000000-0000-4000-8000-%012d", i) }
func PlatformID(i int) string { return fmt.Sprintf("9a000000-0000-4000-8000-%012d", i) }

// TagNumber is the i-th generated user's tag number.
func TagNumber(i int) string { return fmt.Sprintf("%08d", 2300000+i) }

// Generate builds a synthetic site: user i is in group i%Groups and has tag
// TagNumber(i); group g holds lock g%Locks; every group has one schedule
// (even groups "always", odd groups weekdays 07:00–19:00).
func Generate(s SiteShape) *sitefile.File {
	f := &sitefile.File{Version: sitefile.FormatVersion, Site: saltoks.Site{ID: GeneratedSiteID, SiteUID: "DE0000000001",
		CustomerReference: "Generated site", TimeZone: "Europe/Berlin"}}
	for i := 0; i < s.Locks; i++ {
		f.Locks = append(f.Locks, saltoks.Lock{ID: LockID(i), CustomerReference: fmt.Sprintf("Door %03d", i)})
	}
	for g := 0; g < s.Groups; g++ {
		ag := sitefile.AccessGroup{AccessGroup: saltoks.AccessGroup{ID: GroupID(g), CustomerReference: fmt.Sprintf("Group %04d", g)}}
		if s.Locks > 0 {
			ag.Locks = []string{LockID(g % s.Locks)}
		}
		ts := saltoks.TimeSchedule{ID: fmt.Sprintf("7500000%d-0000-4000-8000-%012d", 0, g), Monday: true, Tuesday: true, Wednesday: true,
			Thursday: true, Friday: true, StartTime: "07:00:00", EndTime: "19:00:00"}
		if g%2 == 0 {
			ts.Saturday, ts.Sunday, ts.StartTime, ts.EndTime = true, true, "00:00:00", "23:59:59"
		}
		ag.TimeSchedules = []saltoks.TimeSchedule{ts}
		f.AccessGroups = append(f.AccessGroups, ag)
	}
	for i := 0; i < s.Users; i++ {
		tag := TagNumber(i)
		u := saltoks.SiteUser{ID: UserID(i), SubscriptionState: "subscribed",
			User: saltoks.PlatformUser{ID: PlatformID(i), FirstName: fmt.Sprintf("User%d", i), LastName: "Generated", TagNumber: &tag}}
		if s.SuspendedEvery > 0 && i%s.SuspendedEvery == s.SuspendedEvery-1 {
			u.SubscriptionState = "suspended"
		}
		if s.BlockedEvery > 0 && i%s.BlockedEvery == s.BlockedEvery-1 {
			u.Blocked = true
		}
		f.Users = append(f.Users, u)
		if s.Groups > 0 {
			g := &f.AccessGroups[i%s.Groups]
			g.Users = append(g.Users, PlatformID(i))
		}
	}
	return f
}
