package agent_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

// doorRig returns a rig's fake hardware and the configuration of its door,
// renamed to id, for agent.NewDoors.
func doorRig(t *testing.T, id string, mode agent.DoorMode, opts ...func(*agent.ControllerConfig)) (*rig, agent.ControllerConfig) {
	t.Helper()
	var cfg agent.ControllerConfig
	opts = append(opts, func(c *agent.ControllerConfig) {
		c.Door.ID, c.Door.Name = id, id
		cfg = *c
	})
	return newRig(t, mode, opts...), cfg
}

// runDoors runs doors until the test ends and waits until every loop is up.
func runDoors(t *testing.T, doors *agent.Doors) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- doors.Run(ctx) }()
	require.NoError(t, doors.Healthy(context.Background()))
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			cancel()
			err, stopped = <-errc, true
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestDoors(t *testing.T) {
	front, frontCfg := doorRig(t, "front", agent.ModeCard)
	back, backCfg := doorRig(t, "back", agent.ModeCardOrPIN)
	doors, err := agent.NewDoors(frontCfg, backCfg)
	require.NoError(t, err)
	assert.Equal(t, []string{"front", "back"}, doors.DoorIDs(), "config order")

	ctl, err := doors.Get("back")
	require.NoError(t, err)
	assert.Equal(t, "back", ctl.Status().Door)
	_, err = doors.Get("cellar")
	assert.ErrorIs(t, err, agent.ErrUnknownDoor)
	assert.EqualError(t, err, `no door "cellar" (doors: front, back)`)

	stop := runDoors(t, doors)
	s, ok := doors.DoorStatus("back")
	require.True(t, ok)
	assert.Equal(t, "back", s.Door, "the id is filled in")
	assert.True(t, s.Running)
	_, ok = doors.DoorStatus("cellar")
	assert.False(t, ok)
	st := doors.Statuses()
	require.Len(t, st, 2)
	assert.Equal(t, "front", st[0].Door)
	assert.Equal(t, "back", st[1].Door)

	// Commands reach the door they name, and only that one.
	ctx := context.Background()
	r, err := doors.Unlock(ctx, "front", agent.RemoteUnlock{Command: cmd("c1")})
	require.NoError(t, err)
	assert.True(t, r.Accepted)
	r, err = doors.Lockdown(ctx, "back", agent.LockdownCommand{Command: cmd("c2"), On: true})
	require.NoError(t, err)
	assert.True(t, r.Accepted)
	r, err = doors.OfficeMode(ctx, "front", agent.OfficeModeCommand{Command: cmd("c3"), On: true})
	require.NoError(t, err)
	assert.True(t, r.Accepted)
	r, results, err := doors.ArmEnrolment(ctx, "front", agent.EnrolCommand{Command: cmd("c4"), TagNumber: "2"})
	require.NoError(t, err)
	require.True(t, r.Accepted)
	require.NoError(t, doors.Healthy(ctx))
	require.NoError(t, ctl.Present(adaUID)) // ctl is back's: enrolment is armed at front
	fctl, err := doors.Get("front")
	require.NoError(t, err)
	require.NoError(t, fctl.Present(adaUID))
	assert.Equal(t, agent.EnrolEnrolled, (<-results).Outcome)
	require.NoError(t, doors.Healthy(ctx))

	commands := func(sink *sink) []string {
		var out []string
		for _, e := range sink.all() {
			if e.CommandID != "" {
				out = append(out, string(e.Type)+" "+e.Door+" "+e.CommandID)
			}
		}
		return out
	}
	assert.Equal(t, []string{"remote_unlock front c1", "office_mode_on front c3", "enrolment_armed front c4", "enrolled front c4"}, commands(front.sink))
	assert.Equal(t, []string{"lockdown_on back c2"}, commands(back.sink))
	assert.Equal(t, agent.EventAccessDenied, back.last(agent.EventAccessDenied).Type, "back decided its tap: in lockdown")

	_, err = doors.Unlock(ctx, "cellar", agent.RemoteUnlock{Command: cmd("c5")})
	assert.ErrorIs(t, err, agent.ErrUnknownDoor)
	_, err = doors.Lockdown(ctx, "cellar", agent.LockdownCommand{Command: cmd("c6")})
	assert.ErrorIs(t, err, agent.ErrUnknownDoor)
	_, err = doors.OfficeMode(ctx, "cellar", agent.OfficeModeCommand{Command: cmd("c7")})
	assert.ErrorIs(t, err, agent.ErrUnknownDoor)
	_, _, err = doors.ArmEnrolment(ctx, "cellar", agent.EnrolCommand{Command: cmd("c8"), TagNumber: "1"})
	assert.ErrorIs(t, err, agent.ErrUnknownDoor)

	require.NoError(t, stop(), "Run returns nil when its context ends")
	assert.False(t, front.relay.On(), "every relay is off once Run returned")
	assert.False(t, back.relay.On())
	err = doors.Healthy(ctx)
	assert.ErrorIs(t, err, agent.ErrControllerStopped)
	assert.ErrorContains(t, err, "door front")
	assert.ErrorContains(t, err, "door back")
}

// brokenOutput cannot be switched.
type brokenOutput struct{}

func (brokenOutput) Set(bool) error { return errors.New("gpio gone") }

func TestDoorsRunStopsEveryDoorWhenOneFails(t *testing.T) {
	ok, okCfg := doorRig(t, "front", agent.ModeCard)
	_, badCfg := doorRig(t, "back", agent.ModeCard, func(c *agent.ControllerConfig) { c.Relay = brokenOutput{} })
	doors, err := agent.NewDoors(okCfg, badCfg)
	require.NoError(t, err)
	err = doors.Run(context.Background()) // returns without a cancel: back fails
	require.Error(t, err)
	assert.ErrorContains(t, err, `door "back"`)
	assert.ErrorContains(t, err, "gpio gone")
	front, err := doors.Get("front")
	require.NoError(t, err)
	<-front.Done()
	assert.False(t, ok.relay.On())
}

func TestNewDoorsRefuses(t *testing.T) {
	_, front := doorRig(t, "front", agent.ModeCard)
	_, again := doorRig(t, "front", agent.ModePIN)
	_, err := agent.NewDoors(front, again)
	assert.EqualError(t, err, `door "front" is configured twice`)

	_, norelay := doorRig(t, "side", agent.ModeCard, func(c *agent.ControllerConfig) { c.Relay = nil })
	_, err = agent.NewDoors(front, norelay)
	assert.EqualError(t, err, `door "side": no relay output`)

	doors, err := agent.NewDoors()
	require.NoError(t, err)
	assert.Empty(t, doors.DoorIDs())
	assert.NoError(t, doors.Run(context.Background()), "no doors: nothing to run")
}
