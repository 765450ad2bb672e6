package agent_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
)

func TestGrantEnergisesRelayUntilDeadline(t *testing.T) {
	r := newRig(t, agent.ModeCardOrPIN).start()
	r.present(adaTag)
	assert.True(t, r.relay.On())
	assert.True(t, r.green.On(), "green follows the relay")
	assert.False(t, r.ctl.Status().Locked)
	assert.Equal(t, t0.Add(5*time.Second), r.ctl.Status().UnlockedUntil)

	r.advance(5*time.Second - time.Nanosecond)
	assert.True(t, r.relay.On(), "still inside the access time")
	r.advance(time.Nanosecond)
	assert.False(t, r.relay.On())
	assert.False(t, r.green.On())
	assert.True(t, r.ctl.Status().Locked)
	assert.Equal(t, []level{{t0, false}, {t0, true}, {t0.Add(5 * time.Second), false}}, r.relay.History())

	assert.Equal(t, []agent.EventType{agent.EventAccessGranted, agent.EventRelayOn, agent.EventRelayOff}, r.types())
	g := r.last(agent.EventAccessGranted)
	assert.Equal(t, "front", g.Door)
	assert.Equal(t, agent.ReasonGranted, g.Reason)
	assert.Equal(t, "u-ada", g.User.ID)
	assert.Equal(t, agenttest.GroupAll, g.Group.ID)
	assert.Equal(t, "tag:…001", g.Credential)
	assert.Equal(t, t0.Add(5*time.Second), r.last(agent.EventRelayOff).Time)
	assert.Equal(t, agent.EventRelayOff, r.ctl.Status().LastEvent.Type)
}

func TestSecondGrantExtendsFromItsOwnTime(t *testing.T) {
	r := newRig(t, agent.ModeCardOrPIN).start()
	r.present(adaTag)
	r.advance(3 * time.Second)
	r.present(adaUID)
	r.advance(3 * time.Second)
	assert.True(t, r.relay.On(), "the second grant runs its own 5 s")
	r.advance(2 * time.Second)
	assert.False(t, r.relay.On())
	assert.Equal(t, t0.Add(8*time.Second), r.relay.History()[2].At)
}

func TestDeniedGivesFeedbackAndNoRelay(t *testing.T) {
	r := newRig(t, agent.ModeCardOrPIN).start()
	r.present(hankTag)
	assert.False(t, r.relay.On())
	assert.True(t, r.red.On())
	assert.True(t, r.buzzer.On())
	r.advance(time.Second)
	assert.False(t, r.red.On(), "deny pattern lasts 1 s")
	assert.False(t, r.buzzer.On())
	d := r.last(agent.EventAccessDenied)
	assert.Equal(t, agent.ReasonNoAccessToDoor, d.Reason)
	assert.Equal(t, []agent.EventType{agent.EventAccessDenied}, r.types())
}

func TestEarlyRelockWhenDoorCloses(t *testing.T) {
	r := newRig(t, agent.ModeCardOrPIN).start()
	r.present(adaTag)
	r.advance(time.Second)
	r.input(agent.DoorContact, true)
	assert.True(t, r.relay.On(), "opening does not relock")
	assert.True(t, r.ctl.Status().DoorOpen)
	r.advance(time.Second)
	r.input(agent.DoorContact, false)
	assert.False(t, r.relay.On())
	assert.Equal(t, t0.Add(2*time.Second), r.relay.History()[2].At)
	assert.Equal(t, []agent.EventType{agent.EventAccessGranted, agent.EventRelayOn, agent.EventDoorOpened, agent.EventDoorClosed, agent.EventRelayOff}, r.types())
	assert.Equal(t, "opened: grant or exit", r.last(agent.EventDoorOpened).Detail)

	r.advance(10 * time.Second)
	assert.Len(t, r.relay.History(), 3, "the voided deadline does not switch anything")
}

func TestRelayDeadlineHoldsWhileEventSinkBlocks(t *testing.T) {
	r := newRig(t, agent.ModeCardOrPIN).start()
	r.sink.hold()
	require.NoError(t, r.ctl.Present(adaTag))
	r.relay.waitFor(t, true)
	<-r.sink.blocked // the loop is stuck recording access_granted

	r.clock.Advance(5 * time.Second)
	assert.False(t, r.relay.On(), "the pulse ended at its deadline with the loop stalled")
	assert.Equal(t, t0.Add(5*time.Second), r.relay.History()[2].At)
	assert.True(t, r.ctl.Status().Locked)

	r.sink.release()
	r.flush()
	assert.Equal(t, []agent.EventType{agent.EventAccessGranted, agent.EventRelayOn, agent.EventRelayOff}, r.types())
}

func TestRelayDeadlineHoldsWhileDeciderStalls(t *testing.T) {
	r := newRig(t, agent.ModeCardOrPIN).start()
	r.present(adaTag)
	r.decider.stall()
	require.NoError(t, r.ctl.Present(bobTag))
	<-r.decider.entered // the loop is stuck in the cache

	r.clock.Advance(5 * time.Second)
	assert.False(t, r.relay.On())
	assert.Equal(t, t0.Add(5*time.Second), r.relay.History()[2].At)

	r.decider.release()
	r.flush()
	assert.Equal(t, 2, r.count(agent.EventAccessGranted))
}

func TestSafeStateBeforeAnythingIsHandled(t *testing.T) {
	r := newRig(t, agent.ModeCardOrPIN)
	// An energised relay inherited from a crashed run, and a card queued
	// before Run.
	r.relay.on, r.green.on = true, true
	require.NoError(t, r.ctl.Present(adaTag))
	r.start()
	h := r.relay.History()
	require.GreaterOrEqual(t, len(h), 2)
	assert.Equal(t, level{t0, false}, h[0], "safe state first")
	assert.Equal(t, level{t0, true}, h[1], "then the grant")
	for _, o := range []*fakeOutput{r.green, r.red, r.buzzer} {
		assert.False(t, o.History()[0].On, "every feedback output starts off")
	}
	assert.Equal(t, agent.EventControllerStarted, r.sink.all()[0].Type)
}

func TestSafeStateOnCancel(t *testing.T) {
	r := newRig(t, agent.ModeCardOrPIN).start()
	r.present(adaTag)
	r.input(agent.DoorContact, true)
	r.present(hankTag) // red + buzzer overlay active
	require.True(t, r.relay.On())
	require.NoError(t, r.stop())
	<-r.ctl.Done()
	for name, o := range map[string]*fakeOutput{"relay": r.relay, "green": r.green, "red": r.red, "buzzer": r.buzzer} {
		assert.False(t, o.On(), name)
	}
	st := r.ctl.Status()
	assert.True(t, st.Locked)
	assert.False(t, st.Running)
	assert.ErrorIs(t, r.ctl.Present(adaTag), agent.ErrControllerStopped)
	_, err := r.ctl.Unlock(context.Background(), agent.RemoteUnlock{})
	assert.ErrorIs(t, err, agent.ErrControllerStopped)
	assert.ErrorIs(t, r.ctl.Flush(context.Background()), agent.ErrControllerStopped)

	before := len(r.relay.History())
	r.clock.Advance(time.Hour)
	assert.Len(t, r.relay.History(), before, "no timer fires after shutdown")
}

func TestSafeStateOnCancelWhileSinkBlocks(t *testing.T) {
	r := newRig(t, agent.ModeCardOrPIN).start()
	r.sink.hold()
	require.NoError(t, r.ctl.Present(adaTag))
	r.relay.waitFor(t, true)
	<-r.sink.blocked
	require.NoError(t, r.stop())
	assert.False(t, r.relay.On())
}

func TestRunRefusesBadConfigButStillDrivesRelayOff(t *testing.T) {
	relay := newOutput(agenttest.NewClock(t0))
	relay.on = true
	c := agent.NewController(agent.ControllerConfig{Door: agent.Door{ID: "x", Mode: agent.ModeCard, LockIDs: []string{"l"}}, Relay: relay})
	err := c.Run(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no decider")
	assert.False(t, relay.On())
	<-c.Done()

	for name, cfg := range map[string]agent.ControllerConfig{
		"no relay":      {Door: agent.Door{ID: "x", Mode: agent.ModeCard, LockIDs: []string{"l"}}},
		"bad door":      {Door: agent.Door{ID: "x", Mode: "voice", LockIDs: []string{"l"}}},
		"late prealarm": {Door: agent.Door{ID: "x", Mode: agent.ModeCard, LockIDs: []string{"l"}}, PreAlarmAfter: time.Minute},
		"bad lockout":   {Door: agent.Door{ID: "x", Mode: agent.ModeCard, LockIDs: []string{"l"}}, Lockout: agent.LockoutPolicy{MaxFailures: -1}},
	} {
		cfg.Relay, cfg.Decider, cfg.Events = relay, &agent.Decider{}, newSink()
		if name == "no relay" {
			cfg.Relay = nil
		}
		assert.Error(t, cfg.Validate(), name)
	}
}

func TestRunTwiceIsAnError(t *testing.T) {
	r := newRig(t, agent.ModeCard).start()
	require.NoError(t, r.stop())
	assert.Error(t, r.ctl.Run(context.Background()))
}

func TestInputQueueOverflowIsReported(t *testing.T) {
	r := newRig(t, agent.ModeCardOrPIN, func(c *agent.ControllerConfig) { c.InputQueue = 2 }).start()
	r.sink.hold()
	require.NoError(t, r.ctl.Present(hankTag))
	<-r.sink.blocked
	require.NoError(t, r.ctl.PressKey('1'))
	require.NoError(t, r.ctl.PressKey('2'))
	assert.ErrorIs(t, r.ctl.PressKey('3'), agent.ErrInputQueueFull)
	r.sink.release()
	r.flush()
	e := r.last(agent.EventInputQueueOverflow)
	assert.Contains(t, e.Detail, "1 hardware inputs dropped")
}

func TestCacheFailureDeniesAndKeepsRunning(t *testing.T) {
	cache := agenttest.NewCache(agenttest.Site())
	r := newRig(t, agent.ModeCardOrPIN, func(c *agent.ControllerConfig) {
		c.Decider = &agent.Decider{Cache: cache, PINKey: agenttest.PINKey()}
	}).start()
	cache.Fail(errors.New("disk on fire"))
	r.present(adaTag)
	assert.False(t, r.relay.On())
	assert.Equal(t, agent.ReasonCacheUnavailable, r.last(agent.EventAccessDenied).Reason)
	cache.Fail(nil)
	r.present(adaTag)
	assert.True(t, r.relay.On())
}

// brokenRelay refuses to energise; switching off works.
type brokenRelay struct{ *fakeOutput }

func (b brokenRelay) Set(on bool) error {
	if on {
		return errors.New("coil open")
	}
	return b.fakeOutput.Set(false)
}

func TestRelayFaultOnGrantLeavesTheDoorLocked(t *testing.T) {
	var relay *fakeOutput
	r := newRig(t, agent.ModeCard, func(c *agent.ControllerConfig) {
		relay = newOutput(c.Clock.(*agenttest.Clock))
		c.Relay = brokenRelay{relay}
	}).start()
	r.present(adaTag)
	assert.False(t, relay.On())
	assert.True(t, r.ctl.Status().Locked)
	assert.Contains(t, r.last(agent.EventAccessGranted).Detail, "relay fault: relay on: coil open")
	assert.Zero(t, r.count(agent.EventRelayOn))
	r.input(agent.DoorContact, true)
	assert.Equal(t, 1, r.count(agent.EventForcedOpen), "nothing was unlocked")
}

// deadRelay cannot even be switched off.
type deadRelay struct{}

func (deadRelay) Set(bool) error { return errors.New("gpio gone") }

func TestRunFailsWhenTheRelayCannotReachItsSafeState(t *testing.T) {
	r := newRig(t, agent.ModeCard, func(c *agent.ControllerConfig) { c.Relay = deadRelay{} })
	err := r.ctl.Run(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "safe state")
	<-r.ctl.Done()
	assert.Empty(t, r.sink.all(), "nothing is handled")
}

func TestConcurrentFlushesReturn(t *testing.T) {
	r := newRig(t, agent.ModeCard).start()
	errs := make(chan error, 8)
	for range 8 {
		go func() { errs <- r.ctl.Flush(context.Background()) }()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
}
