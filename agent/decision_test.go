package agent_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
)

func TestDecide(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	tue10 := time.Date(2026, 11, 24, 10, 0, 0, 0, berlin)
	sat10 := time.Date(2026, 11, 28, 10, 0, 0, 0, berlin)
	front := agent.Door{ID: "front", Mode: agent.ModeCardOrPIN, LockIDs: []string{agenttest.LockFront}}
	frontCard := agent.Door{ID: "front", Mode: agent.ModeCard, LockIDs: []string{agenttest.LockFront}}
	frontPIN := agent.Door{ID: "front", Mode: agent.ModePIN, LockIDs: []string{agenttest.LockFront}}
	studio := agent.Door{ID: "studio", Mode: agent.ModeCardAndPIN, LockIDs: []string{agenttest.LockFront}}
	labByGroup := agent.Door{ID: "lab", Mode: agent.ModeCard, GroupIDs: []string{agenttest.GroupLab}}
	labByLock := agent.Door{ID: "lab2", Mode: agent.ModeCard, LockIDs: []string{agenttest.LockLab}}

	tag := agent.CardTagNumber
	pin := agent.KeypadPIN
	tests := []struct {
		name   string
		door   agent.Door
		at     time.Time
		creds  []agent.Presented
		reason agent.Reason
		user   string
		group  string
	}{
		{"tag, resident", front, tue10, []agent.Presented{tag("00000001")}, agent.ReasonGranted, "u-ada", agenttest.GroupAll},
		{"tag without leading zeros", front, tue10, []agent.Presented{tag("1")}, agent.ReasonGranted, "u-ada", agenttest.GroupAll},
		{"enrolled UID", front, tue10, []agent.Presented{agent.CardUID([]byte{0x04, 0xA1, 0xB2, 0xC3})}, agent.ReasonGranted, "u-ada", agenttest.GroupAll},
		{"PIN", front, tue10, []agent.Presented{pin("111111")}, agent.ReasonGranted, "u-ada", agenttest.GroupAll},
		{"Wiegand", front, tue10, []agent.Presented{agent.CardWiegand(agent.Wiegand{Format: "H10301", Facility: 12, Card: 3456})}, agent.ReasonGranted, "u-bob", agenttest.GroupFlex},
		{"flex on saturday", front, sat10, []agent.Presented{tag("00000002")}, agent.ReasonOutsideSchedule, "u-bob", ""},
		{"door mapped by group, group without locks", labByGroup, sat10, []agent.Presented{tag("00000002")}, agent.ReasonNoAccessToDoor, "u-bob", ""},
		{"door mapped by lock", labByLock, sat10, []agent.Presented{tag("00000001")}, agent.ReasonGranted, "u-ada", agenttest.GroupAll},
		{"not in a group for this lock", labByLock, tue10, []agent.Presented{tag("00000002")}, agent.ReasonNoAccessToDoor, "u-bob", ""},
		{"unknown tag", front, tue10, []agent.Presented{tag("12345678")}, agent.ReasonUnknownCredential, "", ""},
		{"unknown PIN", front, tue10, []agent.Presented{pin("123456")}, agent.ReasonUnknownCredential, "", ""},
		{"unknown UID", front, tue10, []agent.Presented{agent.CardUID([]byte{1, 2, 3, 4, 5, 6, 7})}, agent.ReasonUnknownCredential, "", ""},
		{"blocked", front, tue10, []agent.Presented{tag("00000003")}, agent.ReasonUserBlocked, "u-carol", ""},
		{"suspended", front, tue10, []agent.Presented{tag("00000004")}, agent.ReasonUserSuspended, "u-dave", ""},
		{"user expired", front, tue10, []agent.Presented{tag("00000005")}, agent.ReasonExpired, "u-erin", ""},
		{"group without schedule", front, tue10, []agent.Presented{tag("00000006")}, agent.ReasonNoAccessToDoor, "u-frank", ""},
		{"no groups", front, tue10, []agent.Presented{tag("00000008")}, agent.ReasonNoAccessToDoor, "u-hank", ""},
		{"day pass: credential not yet valid", front, time.Date(2026, 11, 23, 7, 59, 59, 0, berlin), []agent.Presented{pin("777777")}, agent.ReasonNotYetValid, "u-gina", ""},
		{"day pass granted", front, time.Date(2026, 11, 23, 8, 0, 0, 0, berlin), []agent.Presented{pin("777777")}, agent.ReasonGranted, "u-gina", agenttest.GroupPass},
		{"day pass: credential ends (exclusive)", front, time.Date(2026, 11, 23, 18, 0, 0, 0, berlin), []agent.Presented{pin("777777")}, agent.ReasonExpired, "u-gina", ""},
		{"PIN use switched off", front, tue10, []agent.Presented{pin("999999")}, agent.ReasonPINDisabled, "u-ivy", ""},
		{"PIN at a card door", frontCard, tue10, []agent.Presented{pin("111111")}, agent.ReasonWrongCredentialType, "", ""},
		{"card at a PIN door", frontPIN, tue10, []agent.Presented{tag("00000001")}, agent.ReasonWrongCredentialType, "", ""},
		{"PIN at a PIN door", frontPIN, tue10, []agent.Presented{pin("111111")}, agent.ReasonGranted, "u-ada", agenttest.GroupAll},
		{"short PIN", front, tue10, []agent.Presented{pin("1234")}, agent.ReasonInvalidCredential, "", ""},
		{"PIN with letters", front, tue10, []agent.Presented{pin("12345a")}, agent.ReasonInvalidCredential, "", ""},
		{"5-byte UID", front, tue10, []agent.Presented{agent.CardUID([]byte{1, 2, 3, 4, 5})}, agent.ReasonInvalidCredential, "", ""},
		{"no credential", front, tue10, nil, agent.ReasonInvalidCredential, "", ""},
		{"two credentials at a card_or_pin door", front, tue10, []agent.Presented{tag("1"), pin("111111")}, agent.ReasonInvalidCredential, "", ""},
		{"card_and_pin: card alone", studio, tue10, []agent.Presented{tag("00000001")}, agent.ReasonSecondFactorRequired, "u-ada", ""},
		{"card_and_pin: PIN alone", studio, tue10, []agent.Presented{pin("111111")}, agent.ReasonSecondFactorRequired, "", ""},
		{"card_and_pin: both", studio, tue10, []agent.Presented{tag("00000001"), pin("111111")}, agent.ReasonGranted, "u-ada", agenttest.GroupAll},
		{"card_and_pin: PIN first then card", studio, tue10, []agent.Presented{pin("111111"), tag("00000001")}, agent.ReasonGranted, "u-ada", agenttest.GroupAll},
		{"card_and_pin: other user's PIN", studio, tue10, []agent.Presented{tag("00000001"), pin("222222")}, agent.ReasonCredentialMismatch, "", ""},
		{"card_and_pin: wrong PIN", studio, tue10, []agent.Presented{tag("00000001"), pin("123456")}, agent.ReasonUnknownCredential, "u-ada", ""},
		{"card_and_pin: card alone outside schedule", studio, sat10, []agent.Presented{tag("00000002")}, agent.ReasonOutsideSchedule, "u-bob", ""},
		{"card_and_pin: blocked card", studio, tue10, []agent.Presented{tag("00000003"), pin("111111")}, agent.ReasonUserBlocked, "u-carol", ""},
		{"card_and_pin: two cards", studio, tue10, []agent.Presented{tag("1"), tag("2")}, agent.ReasonInvalidCredential, "", ""},
	}
	cache := agenttest.NewCache(agenttest.Site())
	dc := &agent.Decider{Cache: cache, PINKey: agenttest.PINKey()}
	seen := map[agent.Reason]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := dc.Decide(context.Background(), tt.door, tt.at, tt.creds...)
			require.NoError(t, err)
			assert.Equal(t, tt.reason, d.Reason, d.Detail)
			assert.Equal(t, tt.reason == agent.ReasonGranted, d.Granted)
			assert.Equal(t, tt.door.ID, d.Door)
			if tt.user != "" {
				require.NotNil(t, d.User, d.Detail)
				assert.Equal(t, tt.user, d.User.ID)
			}
			if tt.group != "" {
				require.NotNil(t, d.Group)
				assert.Equal(t, tt.group, d.Group.ID)
			} else {
				assert.Nil(t, d.Group)
			}
			assert.NotEmpty(t, d.Detail)
			for _, p := range []string{"111111", "222222", "777777", "999999", "123456"} {
				assert.NotContains(t, d.Detail+d.Credential, p, "PIN leaked")
			}
			seen[d.Reason] = true
		})
	}

	t.Run("cache failure fails secure", func(t *testing.T) {
		broken := agenttest.NewCache(agenttest.Site())
		broken.Fail(errors.New("disk I/O error"))
		d, err := (&agent.Decider{Cache: broken, PINKey: agenttest.PINKey()}).Decide(context.Background(), front, tue10, tag("1"))
		require.Error(t, err)
		assert.False(t, d.Granted)
		assert.Equal(t, agent.ReasonCacheUnavailable, d.Reason)
		seen[d.Reason] = true
	})
	t.Run("stale cache policy", func(t *testing.T) {
		synced := tue10.Add(-25 * time.Hour)
		stale := &agent.Decider{Cache: cache, PINKey: agenttest.PINKey(), StaleAfter: 24 * time.Hour, SyncedAt: func() time.Time { return synced }}
		d, err := stale.Decide(context.Background(), front, tue10, tag("1"))
		require.NoError(t, err)
		assert.Equal(t, agent.ReasonCacheStale, d.Reason)
		assert.False(t, d.Granted)
		seen[d.Reason] = true
		synced = tue10.Add(-23 * time.Hour)
		d, err = stale.Decide(context.Background(), front, tue10, tag("1"))
		require.NoError(t, err)
		assert.True(t, d.Granted)
	})
	t.Run("untrusted clock: only access that does not depend on the time", func(t *testing.T) {
		untrusted := &agent.Decider{Cache: cache, PINKey: agenttest.PINKey(), UntrustedClock: func() bool { return true }}
		for _, tt := range []struct {
			name   string
			p      agent.Presented
			reason agent.Reason
		}{
			{"resident with an always-schedule", tag("00000001"), agent.ReasonGranted},
			{"flex schedule depends on the time", tag("00000002"), agent.ReasonClockUnsynced},
			{"credential with a window", pin("777777"), agent.ReasonClockUnsynced},
			{"expired user", tag("00000005"), agent.ReasonClockUnsynced},
			{"blocked stays blocked", tag("00000003"), agent.ReasonUserBlocked},
			{"unscheduled group still grants nothing", tag("00000006"), agent.ReasonNoAccessToDoor},
		} {
			d, err := untrusted.Decide(context.Background(), front, tue10, tt.p)
			require.NoError(t, err)
			assert.Equal(t, tt.reason, d.Reason, tt.name)
			seen[d.Reason] = true
		}
	})
	t.Run("every decision reason the decider produces is covered", func(t *testing.T) {
		// The door controller produces locked_out and door_lockdown; the
		// card reasons have their own test (TestDecideCards).
		for _, r := range agent.Reasons {
			switch r {
			case agent.ReasonLockedOut, agent.ReasonDoorLockdown:
				continue
			}
			if slices.Contains(cardReasons, r) {
				continue
			}
			assert.True(t, seen[r], "no test produced %s", r)
		}
	})
}

func TestDecideScheduleEndVersusStart(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	site := agenttest.Site()
	// Give the day-pass holder two windows: one past, one future → outside_schedule.
	for i := range site.Groups {
		if site.Groups[i].ID == agenttest.GroupPass {
			later := site.Groups[i].Schedules[0]
			later.ID = "s-later"
			later.StartDate += 7 * 86400
			later.EndDate += 7 * 86400
			site.Groups[i].Schedules = append(site.Groups[i].Schedules, later)
		}
	}
	site.Credentials = append(site.Credentials, agent.Credential{Key: "tag:00000042", Kind: agent.KindTagNumber, Origin: agent.OriginLocal, UserID: "u-gina"})
	require.NoError(t, site.Validate())
	dc := &agent.Decider{Cache: agenttest.NewCache(site), PINKey: agenttest.PINKey()}
	front := agent.Door{ID: "front", Mode: agent.ModeCard, LockIDs: []string{agenttest.LockFront}}
	for _, tt := range []struct {
		at   time.Time
		want agent.Reason
	}{
		{time.Date(2026, 11, 22, 12, 0, 0, 0, berlin), agent.ReasonNotYetValid},
		{time.Date(2026, 11, 23, 12, 0, 0, 0, berlin), agent.ReasonGranted},
		{time.Date(2026, 11, 26, 12, 0, 0, 0, berlin), agent.ReasonOutsideSchedule},
		{time.Date(2026, 11, 30, 12, 0, 0, 0, berlin), agent.ReasonGranted},
		{time.Date(2026, 12, 2, 12, 0, 0, 0, berlin), agent.ReasonExpired},
	} {
		d, err := dc.Decide(context.Background(), front, tt.at, agent.CardTagNumber("42"))
		require.NoError(t, err)
		assert.Equal(t, tt.want, d.Reason, tt.at.String())
	}
}

func TestDoorValidate(t *testing.T) {
	assert.ErrorContains(t, agent.Door{Mode: agent.ModeCard, LockIDs: []string{"x"}}.Validate(), "no id")
	assert.ErrorContains(t, agent.Door{ID: "a", Mode: "magic", LockIDs: []string{"x"}}.Validate(), `mode "magic"`)
	assert.ErrorContains(t, agent.Door{ID: "a", Mode: agent.ModeCard}.Validate(), "nobody could open it")
	assert.NoError(t, agent.Door{ID: "a", Mode: agent.ModePIN, GroupIDs: []string{"g"}}.Validate())
}

func TestAccessEvent(t *testing.T) {
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	e := agent.AccessEvent(agent.Decision{Granted: true, Reason: agent.ReasonGranted, Door: "front", Credential: "pin:******", Kind: agent.KindPIN}, at)
	assert.Equal(t, agent.EventAccessGranted, e.Type)
	assert.Equal(t, "pin:******", e.Credential)
	e = agent.AccessEvent(agent.Decision{Reason: agent.ReasonUserBlocked, Door: "front"}, at)
	assert.Equal(t, agent.EventAccessDenied, e.Type)
	assert.Equal(t, agent.ReasonUserBlocked, e.Reason)
}
