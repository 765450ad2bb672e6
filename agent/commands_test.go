package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

func cmd(id string) agent.Command { return agent.Command{ID: id, Actor: "ops@example.org"} }

func TestLockdown(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, agent.ModeCardOrPIN).start()
	r.present(adaTag)
	require.True(t, r.relay.On())
	r.keys("11") // half-typed PIN is abandoned by lockdown

	res, err := r.ctl.Lockdown(ctx, agent.LockdownCommand{Command: cmd("c-1"), On: true})
	require.NoError(t, err)
	assert.True(t, res.Accepted)
	r.flush()
	assert.False(t, r.relay.On(), "lockdown relocks at once")
	assert.True(t, r.red.On(), "red LED steady in lockdown")
	on := r.last(agent.EventLockdownOn)
	assert.Contains(t, on.Detail, "command c-1 by ops@example.org")
	st := r.ctl.Status()
	assert.Equal(t, agent.OverrideLockdown, st.Override)

	calls := r.decider.Calls()
	r.present(adaTag)
	r.keys("1111#")
	r.present(agent.KeypadPIN("111111"))
	assert.Equal(t, calls, r.decider.Calls(), "no decision is made in lockdown")
	assert.Equal(t, 3, r.count(agent.EventAccessDenied))
	for _, e := range r.sink.all() {
		if e.Type == agent.EventAccessDenied {
			assert.Equal(t, agent.ReasonDoorLockdown, e.Reason)
		}
	}
	assert.False(t, r.relay.On())

	// Life safety: exit still works.
	r.input(agent.ExitButton, true)
	assert.True(t, r.relay.On())
	assert.Contains(t, r.last(agent.EventExitPressed).Detail, "exit works during lockdown")
	r.input(agent.DoorContact, true)
	assert.Zero(t, r.count(agent.EventForcedOpen))
	r.input(agent.DoorContact, false)
	assert.False(t, r.relay.On())

	// Remote unlock only with the override.
	res, err = r.ctl.Unlock(ctx, agent.RemoteUnlock{Command: cmd("c-2")})
	require.NoError(t, err)
	assert.False(t, res.Accepted)
	assert.Equal(t, agent.CommandLockdown, res.Reason)
	r.flush()
	rej := r.last(agent.EventCommandRejected)
	assert.Equal(t, agent.ReasonDoorLockdown, rej.Reason)
	assert.Contains(t, rej.Detail, "command c-2")
	assert.False(t, r.relay.On())

	res, err = r.ctl.Unlock(ctx, agent.RemoteUnlock{Command: cmd("c-3"), Override: true})
	require.NoError(t, err)
	assert.True(t, res.Accepted)
	r.flush()
	assert.True(t, r.relay.On())
	assert.Contains(t, r.last(agent.EventRemoteUnlock).Detail, "lockdown override")
	r.advance(5 * time.Second)
	assert.False(t, r.relay.On())

	res, err = r.ctl.Lockdown(ctx, agent.LockdownCommand{Command: cmd("c-4")})
	require.NoError(t, err)
	assert.True(t, res.Accepted)
	r.flush()
	assert.False(t, r.red.On())
	assert.Equal(t, agent.OverrideNone, r.ctl.Status().Override)
	r.present(adaTag)
	assert.True(t, r.relay.On())
}

func TestRemoteUnlock(t *testing.T) {
	ctx := context.Background()
	t.Run("pulse", func(t *testing.T) {
		r := newRig(t, agent.ModeCard).start()
		res, err := r.ctl.Unlock(ctx, agent.RemoteUnlock{Command: cmd("c-1")})
		require.NoError(t, err)
		assert.Equal(t, agent.CommandResult{Accepted: true, Reason: agent.CommandAccepted, Detail: "unlocked for 5s"}, res)
		r.flush()
		r.input(agent.DoorContact, true)
		r.input(agent.DoorContact, false)
		assert.False(t, r.relay.On(), "a pulse relocks when the door closes")
		e := r.last(agent.EventRemoteUnlock)
		assert.Equal(t, "command c-1 by ops@example.org: unlocked for 5s", e.Detail)
		assert.Equal(t, "c-1", e.CommandID)
		assert.Equal(t, "ops@example.org", e.Actor)
	})
	t.Run("for a duration", func(t *testing.T) {
		r := newRig(t, agent.ModeCard).start()
		res, err := r.ctl.Unlock(ctx, agent.RemoteUnlock{Command: cmd("c-1"), Duration: time.Hour})
		require.NoError(t, err)
		require.True(t, res.Accepted)
		r.flush()
		st := r.ctl.Status()
		assert.Equal(t, agent.OverrideUnlocked, st.Override)
		assert.Equal(t, t0.Add(time.Hour), st.UnlockedUntil)
		r.input(agent.DoorContact, true)
		r.advance(40 * time.Minute)
		assert.Zero(t, r.count(agent.EventHeldOpen), "no held-open alarm while held unlocked")
		r.input(agent.DoorContact, false)
		assert.True(t, r.relay.On(), "closing does not end an unlock-for-duration")
		r.advance(20*time.Minute - time.Nanosecond)
		assert.True(t, r.relay.On())
		r.advance(time.Nanosecond)
		assert.False(t, r.relay.On())
		assert.Equal(t, "deadline of remote unlock", r.last(agent.EventRelayOff).Detail)
		assert.Zero(t, r.count(agent.EventForcedOpen))
	})
	t.Run("held-open timing starts when the unlock ends", func(t *testing.T) {
		r := newRig(t, agent.ModeCard).start()
		_, err := r.ctl.Unlock(ctx, agent.RemoteUnlock{Command: cmd("c-1"), Duration: time.Minute})
		require.NoError(t, err)
		r.flush()
		r.input(agent.DoorContact, true)
		r.advance(time.Minute)
		r.advance(30*time.Second - time.Nanosecond)
		assert.Zero(t, r.count(agent.EventHeldOpen))
		r.advance(time.Nanosecond)
		assert.Equal(t, 1, r.count(agent.EventHeldOpen))
	})
	t.Run("invalid durations", func(t *testing.T) {
		r := newRig(t, agent.ModeCard).start()
		for _, d := range []time.Duration{-time.Second, 13 * time.Hour} {
			res, err := r.ctl.Unlock(ctx, agent.RemoteUnlock{Command: cmd("c-x"), Duration: d})
			require.NoError(t, err)
			assert.Equal(t, agent.CommandInvalid, res.Reason)
		}
		r.flush()
		assert.Equal(t, 2, r.count(agent.EventCommandRejected))
		assert.Equal(t, agent.Reason(agent.CommandInvalid), r.last(agent.EventCommandRejected).Reason, "the refusal is the event's reason")
		assert.False(t, r.relay.On())
	})
}

func TestOfficeMode(t *testing.T) {
	ctx := context.Background()
	t.Run("on and off", func(t *testing.T) {
		r := newRig(t, agent.ModeCard).start()
		res, err := r.ctl.OfficeMode(ctx, agent.OfficeModeCommand{Command: cmd("c-1"), On: true})
		require.NoError(t, err)
		require.True(t, res.Accepted)
		r.flush()
		assert.True(t, r.relay.On())
		assert.Equal(t, agent.OfficeActive, r.ctl.Status().OfficeMode)
		assert.Equal(t, agent.OverrideOffice, r.ctl.Status().Override)
		r.input(agent.DoorContact, true)
		r.advance(8 * time.Hour)
		r.input(agent.DoorContact, false)
		assert.True(t, r.relay.On(), "office mode holds through door cycles")
		assert.Zero(t, r.count(agent.EventHeldOpen))
		assert.Zero(t, r.count(agent.EventForcedOpen))

		r.present(adaTag) // a grant during office mode does not end it
		r.advance(time.Minute)
		assert.True(t, r.relay.On())

		_, err = r.ctl.OfficeMode(ctx, agent.OfficeModeCommand{Command: cmd("c-2")})
		require.NoError(t, err)
		r.flush()
		assert.False(t, r.relay.On())
		assert.Equal(t, agent.OfficeOff, r.ctl.Status().OfficeMode)
		off := r.last(agent.EventOfficeModeOff)
		assert.Contains(t, off.Detail, "command c-2")
		// Issue 15: an end caused by a command carries it, like the start.
		assert.Equal(t, "c-2", off.CommandID)
		assert.Equal(t, "ops@example.org", off.Actor)
	})
	t.Run("scheduled end", func(t *testing.T) {
		r := newRig(t, agent.ModeCard).start()
		until := t0.Add(8 * time.Hour)
		_, err := r.ctl.OfficeMode(ctx, agent.OfficeModeCommand{Command: cmd("c-1"), On: true, Until: until})
		require.NoError(t, err)
		r.flush()
		r.clock.AdvanceTo(until)
		r.flush()
		assert.False(t, r.relay.On())
		assert.Equal(t, until, r.relay.History()[2].At)
		off := r.last(agent.EventOfficeModeOff)
		assert.Equal(t, "scheduled end", off.Detail)
		assert.Empty(t, off.CommandID, "a scheduled end is no command's doing")
		assert.Equal(t, agent.OfficeOff, r.ctl.Status().OfficeMode)
	})
	t.Run("easy office mode starts at the first valid entry", func(t *testing.T) {
		r := newRig(t, agent.ModeCard, func(c *agent.ControllerConfig) { c.EasyOfficeMode = true }).start()
		until := t0.Add(8 * time.Hour)
		res, err := r.ctl.OfficeMode(ctx, agent.OfficeModeCommand{Command: cmd("c-1"), On: true, Until: until})
		require.NoError(t, err)
		assert.Contains(t, res.Detail, "armed")
		r.flush()
		assert.False(t, r.relay.On())
		assert.Equal(t, agent.OfficeArmed, r.ctl.Status().OfficeMode)
		assert.Equal(t, agent.OverrideOfficeArmed, r.ctl.Status().Override)
		r.input(agent.DoorContact, true)
		assert.Equal(t, 1, r.count(agent.EventForcedOpen), "armed is still locked")
		r.input(agent.DoorContact, false)

		r.present(hankTag) // denied: does not start it
		assert.Equal(t, agent.OfficeArmed, r.ctl.Status().OfficeMode)
		r.advance(time.Hour)
		r.present(adaTag)
		started := r.last(agent.EventOfficeModeStarted)
		assert.Equal(t, "u-ada", started.User.ID)
		r.advance(time.Hour)
		assert.True(t, r.relay.On(), "held after the access time")
		r.clock.AdvanceTo(until)
		r.flush()
		assert.False(t, r.relay.On())
		assert.Equal(t, agent.OfficeOff, r.ctl.Status().OfficeMode)
	})
	t.Run("easy office mode without an entry ends at its schedule", func(t *testing.T) {
		r := newRig(t, agent.ModeCard, func(c *agent.ControllerConfig) { c.EasyOfficeMode = true }).start()
		_, err := r.ctl.OfficeMode(ctx, agent.OfficeModeCommand{Command: cmd("c-1"), On: true, Until: t0.Add(time.Hour)})
		require.NoError(t, err)
		r.advance(time.Hour)
		assert.Equal(t, agent.OfficeOff, r.ctl.Status().OfficeMode)
		assert.Equal(t, "scheduled end before any valid entry", r.last(agent.EventOfficeModeOff).Detail)
		r.present(adaTag)
		r.advance(5 * time.Second)
		assert.False(t, r.relay.On())
	})
	t.Run("lockdown ends office mode and refuses it", func(t *testing.T) {
		r := newRig(t, agent.ModeCard).start()
		_, err := r.ctl.OfficeMode(ctx, agent.OfficeModeCommand{Command: cmd("c-1"), On: true})
		require.NoError(t, err)
		_, err = r.ctl.Lockdown(ctx, agent.LockdownCommand{Command: cmd("c-2"), On: true})
		require.NoError(t, err)
		r.flush()
		assert.False(t, r.relay.On())
		off := r.last(agent.EventOfficeModeOff)
		assert.Equal(t, "ended by lockdown", off.Detail)
		assert.Equal(t, "c-2", off.CommandID, "the lockdown command ended it")
		assert.Equal(t, "ops@example.org", off.Actor)
		res, err := r.ctl.OfficeMode(ctx, agent.OfficeModeCommand{Command: cmd("c-3"), On: true})
		require.NoError(t, err)
		assert.Equal(t, agent.CommandLockdown, res.Reason)
		r.flush()
		assert.False(t, r.relay.On())
	})
	t.Run("lockdown without office mode reports no office mode end", func(t *testing.T) {
		r := newRig(t, agent.ModeCard).start()
		_, err := r.ctl.Lockdown(ctx, agent.LockdownCommand{Command: cmd("c-1"), On: true})
		require.NoError(t, err)
		r.flush()
		assert.Zero(t, r.count(agent.EventOfficeModeOff))
	})
	t.Run("an end in the past is refused", func(t *testing.T) {
		r := newRig(t, agent.ModeCard).start()
		res, err := r.ctl.OfficeMode(ctx, agent.OfficeModeCommand{Command: cmd("c-1"), On: true, Until: t0})
		require.NoError(t, err)
		assert.Equal(t, agent.CommandInvalid, res.Reason)
	})
}

func TestCommandWaitsForContext(t *testing.T) {
	r := newRig(t, agent.ModeCard) // never started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.ctl.Unlock(ctx, agent.RemoteUnlock{})
	assert.ErrorIs(t, err, context.Canceled)
}
