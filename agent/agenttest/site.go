package agenttest

import (
	"time"

	"github.com/portier-io/portier/agent"
)

// PINKey returns the fixed PIN key the test site's PINs are hashed with.
func PINKey() agent.PINKey { return agent.PINKey("0123456789abcdef0123456789abcdef") }

// Site ids of the test site.
const (
	LockFront = "lock-front"
	LockLab   = "lock-lab"
	GroupAll  = "g-all"
	GroupFlex = "g-flex"
	GroupLab  = "g-lab"
	GroupNone = "g-noschedule"
	GroupPass = "g-daypass"
)

// Site is a small site covering every decision path, in Europe/Berlin:
//
//	ada     resident (always, front+lab), tag 00000001, PIN 111111, UID 04A1B2C3
//	bob     flex (weekdays 08–20, front), tag 00000002, PIN 222222
//	carol   blocked, in all
//	dave    suspended, in all
//	erin    expired 2026-01-01, in all
//	frank   in a group without schedule (front), tag 00000006
//	gina    day pass 2026-11-23 (front), PIN 777777 valid 2026-11-23 08:00–18:00
//	hank    no groups, tag 00000008
//	ivy     in all, use_pin false, PIN 999999
func Site() *agent.Snapshot {
	always := agent.Always("s-always")
	var week [7]bool
	for d := time.Monday; d <= time.Friday; d++ {
		week[d] = true
	}
	flex := agent.Schedule{ID: "s-flex", Days: week, Start: 8 * 3600, End: 20 * 3600}
	pass := agent.Always("s-pass")
	pass.StartDate = agent.Civil(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	pass.EndDate = agent.Civil(time.Date(2026, 11, 23, 23, 59, 59, 0, time.UTC))
	user := func(id, tag string) agent.User {
		return agent.User{ID: "u-" + id, PlatformID: "p-" + id, FirstName: id, TagNumber: tag, Subscription: agent.Subscribed, UsePIN: true}
	}
	users := []agent.User{
		user("ada", "00000001"), user("bob", "00000002"), user("carol", "00000003"), user("dave", "00000004"),
		user("erin", "00000005"), user("frank", "00000006"), user("gina", ""), user("hank", "00000008"), user("ivy", ""),
	}
	users[2].Blocked = true
	users[3].Subscription = agent.Suspended
	users[4].ExpiresAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	users[8].UsePIN = false
	pinKey := PINKey()
	berlin, _ := time.LoadLocation("Europe/Berlin")
	s := &agent.Snapshot{
		Site:  agent.Site{ID: "site-1", Name: "Test site", TimeZone: "Europe/Berlin"},
		Locks: []agent.Lock{{ID: LockFront, Name: "Front"}, {ID: LockLab, Name: "Lab"}},
		Users: users,
		Groups: []agent.AccessGroup{
			{ID: GroupAll, Name: "Residents", Members: []string{"p-ada", "p-carol", "p-dave", "p-erin", "p-ivy"}, Locks: []string{LockFront, LockLab}, Schedules: []agent.Schedule{always}},
			{ID: GroupFlex, Name: "Flex", Members: []string{"p-bob"}, Locks: []string{LockFront}, Schedules: []agent.Schedule{flex}},
			{ID: GroupNone, Name: "Unscheduled", Members: []string{"p-frank"}, Locks: []string{LockFront}},
			{ID: GroupPass, Name: "Day pass", Members: []string{"p-gina"}, Locks: []string{LockFront}, Schedules: []agent.Schedule{pass}},
			{ID: GroupLab, Name: "Lab crew", Members: []string{"p-bob"}},
		},
		Enrolments: []agent.Enrolment{{Key: "uid:04A1B2C3", TagNumber: "00000001"}},
	}
	tags, err := agent.TagCredentials(users)
	if err != nil {
		panic(err)
	}
	s.Credentials = append(tags,
		agent.Credential{Key: pinKey.Key("111111"), Kind: agent.KindPIN, Origin: agent.OriginLocal, UserID: "u-ada"},
		agent.Credential{Key: pinKey.Key("222222"), Kind: agent.KindPIN, Origin: agent.OriginLocal, UserID: "u-bob"},
		agent.Credential{Key: pinKey.Key("777777"), Kind: agent.KindPIN, Origin: agent.OriginLocal, UserID: "u-gina",
			StartsAt: time.Date(2026, 11, 23, 8, 0, 0, 0, berlin), EndsAt: time.Date(2026, 11, 23, 18, 0, 0, 0, berlin)},
		agent.Credential{Key: pinKey.Key("999999"), Kind: agent.KindPIN, Origin: agent.OriginLocal, UserID: "u-ivy"},
		agent.Credential{Key: "wg:H10301:12:3456", Kind: agent.KindWiegand, Origin: agent.OriginLocal, UserID: "u-bob"},
	)
	return s
}
