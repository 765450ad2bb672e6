package mqtt_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
)

// oneDoor adapts fakeDoors' door to a DoorController.
type oneDoor struct {
	d  *fakeDoors
	id string
}

func (o oneDoor) Status() agent.DoorStatus {
	s, _ := o.d.DoorStatus(o.id)
	s.Door = ""
	return s
}
func (o oneDoor) Unlock(ctx context.Context, c agent.RemoteUnlock) (agent.CommandResult, error) {
	return o.d.Unlock(ctx, o.id, c)
}
func (o oneDoor) Lockdown(ctx context.Context, c agent.LockdownCommand) (agent.CommandResult, error) {
	return o.d.Lockdown(ctx, o.id, c)
}
func (o oneDoor) OfficeMode(ctx context.Context, c agent.OfficeModeCommand) (agent.CommandResult, error) {
	return o.d.OfficeMode(ctx, o.id, c)
}
func (o oneDoor) ArmEnrolment(ctx context.Context, c agent.EnrolCommand) (agent.CommandResult, <-chan agent.EnrolResult, error) {
	return o.d.ArmEnrolment(ctx, o.id, c)
}

func TestDoorMap(t *testing.T) {
	f := newFakeDoors("front", "back")
	m := mqtt.NewDoorMap()
	m.Add("front", oneDoor{f, "front"})
	m.Add("back", oneDoor{f, "back"})
	assert.Equal(t, []string{"front", "back"}, m.DoorIDs())
	s, ok := m.DoorStatus("back")
	require.True(t, ok)
	assert.Equal(t, "back", s.Door, "the id is filled in")
	_, ok = m.DoorStatus("cellar")
	assert.False(t, ok)

	ctx := context.Background()
	r, err := m.Unlock(ctx, "front", agent.RemoteUnlock{Command: agent.Command{ID: "c1"}})
	require.NoError(t, err)
	assert.True(t, r.Accepted)
	_, err = m.Lockdown(ctx, "back", agent.LockdownCommand{Command: agent.Command{ID: "c2"}, On: true})
	require.NoError(t, err)
	_, err = m.OfficeMode(ctx, "front", agent.OfficeModeCommand{Command: agent.Command{ID: "c3"}})
	require.NoError(t, err)
	_, ch, err := m.ArmEnrolment(ctx, "front", agent.EnrolCommand{Command: agent.Command{ID: "c4"}, TagNumber: "1"})
	require.NoError(t, err)
	assert.Equal(t, agent.EnrolEnrolled, (<-ch).Outcome)
	_, err = m.Unlock(ctx, "cellar", agent.RemoteUnlock{})
	assert.Error(t, err)
	assert.Equal(t, []string{"unlock front c1", "lockdown back true c2", "office_mode front false c3", "enroll front 1"}, f.Calls())
}
