package mqtt

import (
	"context"
	"fmt"

	"github.com/portier-io/portier/agent"
)

// DoorController is what the link needs of one door; *agent.Controller
// implements it.
type DoorController interface {
	Status() agent.DoorStatus
	Unlock(ctx context.Context, cmd agent.RemoteUnlock) (agent.CommandResult, error)
	Lockdown(ctx context.Context, cmd agent.LockdownCommand) (agent.CommandResult, error)
	OfficeMode(ctx context.Context, cmd agent.OfficeModeCommand) (agent.CommandResult, error)
	ArmEnrolment(ctx context.Context, cmd agent.EnrolCommand) (agent.CommandResult, <-chan agent.EnrolResult, error)
}

var _ DoorController = (*agent.Controller)(nil)

// DoorMap implements Doors over the gateway's door controllers, in the
// order they were added. Add every door before the link runs.
type DoorMap struct {
	ids  []string
	ctrl map[string]DoorController
}

// NewDoorMap returns an empty door map.
func NewDoorMap() *DoorMap { return &DoorMap{ctrl: map[string]DoorController{}} }

// Add registers the controller of door id.
func (m *DoorMap) Add(id string, c DoorController) {
	if _, ok := m.ctrl[id]; !ok {
		m.ids = append(m.ids, id)
	}
	m.ctrl[id] = c
}

// DoorIDs lists the doors.
func (m *DoorMap) DoorIDs() []string { return append([]string(nil), m.ids...) }

// DoorStatus returns a door's status; the door id is always set.
func (m *DoorMap) DoorStatus(door string) (agent.DoorStatus, bool) {
	c, ok := m.ctrl[door]
	if !ok {
		return agent.DoorStatus{}, false
	}
	s := c.Status()
	s.Door = door // a controller that has not run yet reports no id
	return s, true
}

func (m *DoorMap) get(door string) (DoorController, error) {
	c, ok := m.ctrl[door]
	if !ok {
		return nil, fmt.Errorf("no door %q", door)
	}
	return c, nil
}

// Unlock runs a remote unlock at door.
func (m *DoorMap) Unlock(ctx context.Context, door string, cmd agent.RemoteUnlock) (agent.CommandResult, error) {
	c, err := m.get(door)
	if err != nil {
		return agent.CommandResult{}, err
	}
	return c.Unlock(ctx, cmd)
}

// Lockdown turns lockdown on or off at door.
func (m *DoorMap) Lockdown(ctx context.Context, door string, cmd agent.LockdownCommand) (agent.CommandResult, error) {
	c, err := m.get(door)
	if err != nil {
		return agent.CommandResult{}, err
	}
	return c.Lockdown(ctx, cmd)
}

// OfficeMode turns office mode on or off at door.
func (m *DoorMap) OfficeMode(ctx context.Context, door string, cmd agent.OfficeModeCommand) (agent.CommandResult, error) {
	c, err := m.get(door)
	if err != nil {
		return agent.CommandResult{}, err
	}
	return c.OfficeMode(ctx, cmd)
}

// ArmEnrolment arms enrolment at door.
func (m *DoorMap) ArmEnrolment(ctx context.Context, door string, cmd agent.EnrolCommand) (agent.CommandResult, <-chan agent.EnrolResult, error) {
	c, err := m.get(door)
	if err != nil {
		return agent.CommandResult{}, nil, err
	}
	return c.ArmEnrolment(ctx, cmd)
}
