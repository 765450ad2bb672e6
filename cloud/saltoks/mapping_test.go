package saltoks_test

import (
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
)

func str(s string) *string { return &s }

// TestMapUser pins the mapping's policy for one user (the "one Salto model
// and one mapping" defect: the snapshot import and the sync used to read an
// empty subscription_state and a bad tag number differently).
func TestMapUser(t *testing.T) {
	base := saltoks.SiteUser{ID: "9B7F3A20-0000-4000-8000-000000000001", SubscriptionState: "subscribed",
		User: saltoks.PlatformUser{ID: "3E8C0000-0000-4000-8000-000000000001", FirstName: "Ada", TagNumber: str("2301234")}}
	cases := []struct {
		name    string
		edit    func(*saltoks.SiteUser)
		ok      bool
		check   func(*testing.T, agent.User)
		problem string // "" when none
	}{
		{"ids are canonical, tag padded", nil, true, func(t *testing.T, u agent.User) {
			assert.Equal(t, "9b7f3a20-0000-4000-8000-000000000001", u.ID)
			assert.Equal(t, "3e8c0000-0000-4000-8000-000000000001", u.PlatformID)
			assert.Equal(t, "02301234", u.TagNumber)
			assert.True(t, u.UsePIN, "use_pin absent means true")
		}, ""},
		{"empty subscription_state is subscribed", func(u *saltoks.SiteUser) { u.SubscriptionState = "" }, true,
			func(t *testing.T, u agent.User) { assert.Equal(t, agent.Subscribed, u.Subscription) }, ""},
		{"unknown subscription_state is suspended", func(u *saltoks.SiteUser) { u.SubscriptionState = "paused" }, true,
			func(t *testing.T, u agent.User) { assert.Equal(t, agent.Suspended, u.Subscription) },
			`user 9b7f3a20-0000-4000-8000-000000000001: subscription_state "paused" is not subscribed or suspended (read as suspended: the user opens no door)`},
		{"bad tag number: no tag, user kept", func(u *saltoks.SiteUser) { u.User.TagNumber = str("12ab") }, true,
			func(t *testing.T, u agent.User) { assert.Empty(t, u.TagNumber); assert.Equal(t, "Ada", u.FirstName) },
			"user 9b7f3a20-0000-4000-8000-000000000001: user.tag_number: invalid credential: tag number must be 1–8 digits (the user keeps no tag credential)"},
		{"unreadable expires_at leaves the user out", func(u *saltoks.SiteUser) { u.ExpiresAt = str("soon") }, false, nil,
			`user 9b7f3a20-0000-4000-8000-000000000001: expires_at: "soon" is not a time: want RFC 3339 (2026-11-23T10:00:00+01:00), or 2026-11-23T10:00 or 2026-11-23 in the site's time zone (user left out: they cannot open any door)`},
		{"expires_at without offset is site wall time", func(u *saltoks.SiteUser) { u.ExpiresAt = str("2027-01-01T00:00:00") }, true,
			func(t *testing.T, u agent.User) {
				assert.Equal(t, time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), u.ExpiresAt.UTC())
			}, ""},
		{"no platform id", func(u *saltoks.SiteUser) { u.User.ID = "" }, false, nil,
			"user 9b7f3a20-0000-4000-8000-000000000001: user.id (platform user id) is empty (user left out: they cannot open any door)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := saltoks.NewMapper(saltoks.Site{ID: "S", TimeZone: "Europe/Berlin"})
			require.NoError(t, err)
			su := base
			su.User.TagNumber = str(*base.User.TagNumber)
			if tc.edit != nil {
				tc.edit(&su)
			}
			u, ok := m.User(4, su)
			assert.Equal(t, tc.ok, ok)
			if tc.check != nil {
				tc.check(t, u)
			}
			ps := m.Problems()
			if tc.problem == "" {
				assert.Empty(t, ps)
				return
			}
			require.Len(t, ps, 1)
			assert.Equal(t, tc.problem, ps[0].String())
			assert.Equal(t, "users[4] (9b7f3a20-0000-4000-8000-000000000001)", ps[0].At())
			assert.NotContains(t, ps[0].String(), "12ab", "a tag number is a credential: never in a message")
		})
	}
}

// TestMapFinish: shared tags open nothing, group locks and members the site
// lacks are left out, each reported once.
func TestMapFinish(t *testing.T) {
	m, err := saltoks.NewMapper(saltoks.Site{ID: "S", TimeZone: "UTC"})
	require.NoError(t, err)
	s := &agent.Snapshot{Site: m.Site(), Locks: []agent.Lock{m.Lock(saltoks.Lock{ID: "L1"})}}
	for i, id := range []string{"u1", "u2", "u3"} {
		u, ok := m.User(i, saltoks.SiteUser{ID: id, User: saltoks.PlatformUser{ID: "p" + id[1:], TagNumber: str("7")}})
		require.True(t, ok)
		if id == "u3" {
			u.TagNumber = "00000008"
		}
		s.Users = append(s.Users, u)
	}
	s.Groups = append(s.Groups, m.Group(0, saltoks.AccessGroup{ID: "g1", CustomerReference: "All"},
		[]string{"p1", "p9", "p8"}, []string{"L1", "L9"}, []saltoks.TimeSchedule{{Monday: true, StartTime: "8am", EndTime: "18:00"}}))
	m.Finish(s)
	assert.Equal(t, []string{"p1"}, s.Groups[0].Members)
	assert.Equal(t, []string{"L1"}, s.Groups[0].Locks)
	assert.Empty(t, s.Groups[0].Schedules)
	require.Len(t, s.Credentials, 1, "only u3's tag is unshared")
	assert.Equal(t, "u3", s.Credentials[0].UserID)
	var got []string
	for _, p := range m.Problems() {
		got = append(got, p.At()+": "+p.Msg)
	}
	assert.Equal(t, []string{
		`access_groups[0] (All).time_schedules[0]: start_time: time of day "8am": want HH:MM[:SS]`,
		"users: tag number …007 is held by 2 users (u1, u2)",
		`access_groups[0] (All): lock "L9" is not in locks`,
		`access_groups[0] (All): member "p9" and 1 more are not users' platform ids`,
	}, got)
	assert.Equal(t, "users: tag number …007 is held by 2 users (u1, u2) (it opens nothing until that is fixed in Salto)", m.Problems()[1].String())
	require.NoError(t, s.Validate())
}
