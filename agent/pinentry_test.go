package agent_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

func TestPINEntry(t *testing.T) {
	tests := []struct {
		name   string
		mode   agent.DoorMode
		keys   string
		reason agent.Reason // "" means no decision at all
	}{
		{"PIN and #", agent.ModePIN, "111111#", agent.ReasonGranted},
		{"card_or_pin takes a PIN", agent.ModeCardOrPIN, "111111#", agent.ReasonGranted},
		{"star clears", agent.ModePIN, "98*111111#", agent.ReasonGranted},
		{"wrong PIN", agent.ModePIN, "123456#", agent.ReasonUnknownCredential},
		{"too short", agent.ModePIN, "111#", agent.ReasonInvalidCredential},
		{"too long is not truncated", agent.ModePIN, "11111111111#", agent.ReasonInvalidCredential},
		{"# alone does nothing", agent.ModePIN, "#", ""},
		{"no # no decision", agent.ModePIN, "111111", ""},
		{"letters are ignored", agent.ModePIN, "11A11D11#", agent.ReasonGranted},
		{"PIN disabled for the user", agent.ModePIN, "999999#", agent.ReasonPINDisabled},
		{"keys ignored at a card door", agent.ModeCard, "111111#", ""},
		{"card_and_pin: PIN without card", agent.ModeCardAndPIN, "111111#", agent.ReasonSecondFactorRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.mode).start()
			r.keys(tt.keys)
			if tt.reason == "" {
				assert.Empty(t, r.types())
				assert.False(t, r.relay.On())
				return
			}
			ev := r.sink.all()[1]
			assert.Equal(t, tt.reason, ev.Reason)
			assert.Equal(t, tt.reason == agent.ReasonGranted, r.relay.On())
			if tt.mode != agent.ModeCardAndPIN {
				assert.Equal(t, agent.KindPIN, ev.Kind)
				assert.Equal(t, "pin:******", ev.Credential)
			}
		})
	}
}

func TestPINKeyFeedbackBlinksGreen(t *testing.T) {
	r := newRig(t, agent.ModePIN).start()
	r.keys("1")
	assert.True(t, r.green.On())
	r.advance(100 * time.Millisecond)
	assert.False(t, r.green.On())
}

func TestPINInterKeyTimeoutClears(t *testing.T) {
	r := newRig(t, agent.ModePIN).start()
	r.keys("111")
	r.advance(10*time.Second - time.Millisecond)
	r.keys("111#") // in time: six digits
	assert.Equal(t, agent.ReasonGranted, r.last(agent.EventAccessGranted).Reason)

	r.keys("111")
	r.advance(10 * time.Second)
	r.keys("111#") // the first three were cleared
	assert.Equal(t, agent.ReasonInvalidCredential, r.last(agent.EventAccessDenied).Reason)
	assert.Equal(t, 1, r.count(agent.EventAccessDenied), "a timeout is not an attempt")
}

func TestPresentedPINIsSubmitted(t *testing.T) {
	r := newRig(t, agent.ModeCardOrPIN).start()
	r.present(agent.KeypadPIN("111111"))
	assert.True(t, r.relay.On())
}

func TestCardAndPIN(t *testing.T) {
	t.Run("card then PIN of the same user", func(t *testing.T) {
		r := newRig(t, agent.ModeCardAndPIN).start()
		r.present(adaTag)
		assert.False(t, r.relay.On())
		w := r.last(agent.EventAwaitingPIN)
		assert.Equal(t, "u-ada", w.User.ID)
		r.advance(14 * time.Second)
		r.keys("111111#")
		assert.True(t, r.relay.On())
		g := r.last(agent.EventAccessGranted)
		assert.Equal(t, "u-ada", g.User.ID)
		assert.Equal(t, "tag:…001", g.Credential)
		assert.Equal(t, []agent.EventType{agent.EventAwaitingPIN, agent.EventAccessGranted, agent.EventRelayOn}, r.types())
	})
	t.Run("window expires", func(t *testing.T) {
		r := newRig(t, agent.ModeCardAndPIN, func(c *agent.ControllerConfig) { c.TwoFactorWindow = 5 * time.Second }).start()
		r.present(adaTag)
		r.keys("111")
		r.advance(5 * time.Second)
		d := r.last(agent.EventAccessDenied)
		assert.Equal(t, agent.ReasonSecondFactorRequired, d.Reason)
		assert.Equal(t, "u-ada", d.User.ID)
		assert.Contains(t, d.Detail, "no PIN within 5s")
		r.keys("111111#")
		assert.Equal(t, agent.ReasonSecondFactorRequired, r.last(agent.EventAccessDenied).Reason, "the card is forgotten")
		r.present(adaTag)
		r.keys("111")
		r.advance(5 * time.Second)
		r.present(adaTag)
		r.keys("111#")
		assert.Equal(t, agent.ReasonInvalidCredential, r.last(agent.EventAccessDenied).Reason, "a new card starts the PIN over")
		assert.False(t, r.relay.On())
	})
	t.Run("PIN of someone else", func(t *testing.T) {
		r := newRig(t, agent.ModeCardAndPIN).start()
		r.present(adaTag)
		r.keys("222222#")
		assert.Equal(t, agent.ReasonCredentialMismatch, r.last(agent.EventAccessDenied).Reason)
		assert.False(t, r.relay.On())
	})
	t.Run("a denied card waits for nothing", func(t *testing.T) {
		r := newRig(t, agent.ModeCardAndPIN).start()
		r.present(hankTag)
		assert.Equal(t, []agent.EventType{agent.EventAccessDenied}, r.types())
		assert.Empty(t, r.clock.Pending()[1:], "only the deny feedback timer")
	})
	t.Run("a second card replaces the first", func(t *testing.T) {
		r := newRig(t, agent.ModeCardAndPIN).start()
		r.present(adaTag)
		r.present(bobTag)
		r.keys("111111#")
		assert.Equal(t, agent.ReasonCredentialMismatch, r.last(agent.EventAccessDenied).Reason)
	})
}

func TestWrongPINLockout(t *testing.T) {
	r := newRig(t, agent.ModePIN).start()
	wrong := func(n int) {
		for range n {
			r.keys("123456#")
			r.advance(time.Second)
		}
	}
	wrong(4)
	assert.Zero(t, r.count(agent.EventLockoutStarted))
	wrong(1)
	require.Equal(t, 1, r.count(agent.EventLockoutStarted))
	st := r.ctl.Status()
	assert.Equal(t, t0.Add(4*time.Second).Add(time.Minute), st.LockedOutUntil)
	assert.True(t, r.red.On(), "red while locked out")

	calls := r.decider.Calls()
	r.keys("111111#")
	assert.Equal(t, agent.ReasonLockedOut, r.last(agent.EventAccessDenied).Reason)
	assert.Equal(t, calls, r.decider.Calls(), "the cache is not consulted while locked out")
	assert.False(t, r.relay.On())

	r.advance(time.Minute - time.Second - time.Nanosecond)
	assert.Zero(t, r.count(agent.EventLockoutEnded))
	r.advance(time.Nanosecond)
	assert.Equal(t, 1, r.count(agent.EventLockoutEnded))
	assert.True(t, r.ctl.Status().LockedOutUntil.IsZero())
	assert.False(t, r.red.On())
	r.keys("111111#")
	assert.True(t, r.relay.On())

	// A repeat doubles the lockout.
	r.advance(5 * time.Second)
	wrong(5)
	require.Equal(t, 2, r.count(agent.EventLockoutStarted))
	started := r.last(agent.EventLockoutStarted)
	assert.Equal(t, started.Time.Add(2*time.Minute), r.ctl.Status().LockedOutUntil)
	assert.Contains(t, started.Detail, "blocked for 2m0s")
	r.advance(2 * time.Minute)
	assert.Equal(t, 2, r.count(agent.EventLockoutEnded))

	// After a quiet period the streak starts over.
	r.advance(10 * time.Minute)
	wrong(5)
	started = r.last(agent.EventLockoutStarted)
	assert.Equal(t, started.Time.Add(time.Minute), r.ctl.Status().LockedOutUntil)
}

func TestLockoutCapsAndCountsOnlyWithinWindow(t *testing.T) {
	r := newRig(t, agent.ModePIN, func(c *agent.ControllerConfig) {
		c.Lockout = agent.LockoutPolicy{MaxFailures: 2, Window: 10 * time.Second, Duration: time.Minute, MaxDuration: 3 * time.Minute}
	}).start()
	r.keys("123456#")
	r.advance(10 * time.Second)
	r.keys("123456#")
	assert.Zero(t, r.count(agent.EventLockoutStarted), "the first failure left the window")
	var lengths []time.Duration
	for range 4 {
		r.keys("123456#")
		until := r.ctl.Status().LockedOutUntil
		require.False(t, until.IsZero())
		lengths = append(lengths, until.Sub(r.clock.Now()))
		r.clock.AdvanceTo(until)
		r.flush()
		r.keys("123456#")
	}
	assert.Equal(t, []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute, 3 * time.Minute}, lengths)
}

func TestLockoutBlocksPINsNotCards(t *testing.T) {
	r := newRig(t, agent.ModeCardOrPIN).start()
	for range 5 {
		r.keys("123456#")
	}
	require.Equal(t, 1, r.count(agent.EventLockoutStarted))
	r.present(adaTag)
	assert.True(t, r.relay.On(), "cards still open during a PIN lockout")
}

func TestMismatchCountsTowardsLockout(t *testing.T) {
	r := newRig(t, agent.ModeCardAndPIN).start()
	for range 5 {
		r.present(adaTag)
		r.keys("222222#")
	}
	assert.Equal(t, 1, r.count(agent.EventLockoutStarted))
}
