package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// ErrUnknownDoor is what a lookup or a command for a door id the gateway
// does not have fails with (as an *UnknownDoorError).
var ErrUnknownDoor = errors.New("unknown door")

// UnknownDoorError names the door that is not there and the doors that are.
type UnknownDoorError struct {
	Door  string
	Doors []string
}

func (e *UnknownDoorError) Error() string {
	return fmt.Sprintf("no door %q (doors: %s)", e.Door, strings.Join(e.Doors, ", "))
}

// Is makes errors.Is(err, ErrUnknownDoor) true.
func (e *UnknownDoorError) Is(target error) bool { return target == ErrUnknownDoor }

// Doors is the gateway's set of doors: one Controller per configured door,
// in config order. The daemon runs them, the hardware's events and the
// operators' commands (control socket, MQTT) reach a door through it. The set
// is fixed by NewDoors, so every method is safe for concurrent use.
type Doors struct {
	ids  []string
	byID map[string]*Controller
}

// NewDoors builds the controller of each door, in order. Every configuration
// is validated first (the errors name the door) and door ids must be unique.
func NewDoors(cfgs ...ControllerConfig) (*Doors, error) {
	d := &Doors{byID: make(map[string]*Controller, len(cfgs))}
	for _, cfg := range cfgs {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		id := cfg.Door.ID
		if _, dup := d.byID[id]; dup {
			return nil, fmt.Errorf("door %q is configured twice", id)
		}
		d.ids = append(d.ids, id)
		d.byID[id] = NewController(cfg)
	}
	return d, nil
}

// DoorIDs lists the door ids in config order.
func (d *Doors) DoorIDs() []string { return append([]string(nil), d.ids...) }

// Get returns the controller of door id, or an *UnknownDoorError.
func (d *Doors) Get(id string) (*Controller, error) {
	c, ok := d.byID[id]
	if !ok {
		return nil, &UnknownDoorError{Door: id, Doors: d.DoorIDs()}
	}
	return c, nil
}

// DoorStatus returns one door's status; false when there is no such door.
func (d *Doors) DoorStatus(id string) (DoorStatus, bool) {
	c, ok := d.byID[id]
	if !ok {
		return DoorStatus{}, false
	}
	s := c.Status()
	s.Door = id
	return s, true
}

// Statuses returns every door's status in config order.
func (d *Doors) Statuses() []DoorStatus {
	out := make([]DoorStatus, 0, len(d.ids))
	for _, id := range d.ids {
		s, _ := d.DoorStatus(id)
		out = append(out, s)
	}
	return out
}

// Unlock runs a remote unlock at door. As with the Controller's commands, a
// refusal is a result; the error says the command did not reach the door.
func (d *Doors) Unlock(ctx context.Context, door string, cmd RemoteUnlock) (CommandResult, error) {
	c, err := d.Get(door)
	if err != nil {
		return CommandResult{}, err
	}
	return c.Unlock(ctx, cmd)
}

// Lockdown turns lockdown on or off at door.
func (d *Doors) Lockdown(ctx context.Context, door string, cmd LockdownCommand) (CommandResult, error) {
	c, err := d.Get(door)
	if err != nil {
		return CommandResult{}, err
	}
	return c.Lockdown(ctx, cmd)
}

// OfficeMode turns office mode on or off at door.
func (d *Doors) OfficeMode(ctx context.Context, door string, cmd OfficeModeCommand) (CommandResult, error) {
	c, err := d.Get(door)
	if err != nil {
		return CommandResult{}, err
	}
	return c.OfficeMode(ctx, cmd)
}

// ArmEnrolment arms "enrol the next tap" at door.
func (d *Doors) ArmEnrolment(ctx context.Context, door string, cmd EnrolCommand) (CommandResult, <-chan EnrolResult, error) {
	c, err := d.Get(door)
	if err != nil {
		return CommandResult{}, nil, err
	}
	return c.ArmEnrolment(ctx, cmd)
}

// CancelEnrolment ends the enrolment cmd.ID armed at door, if it still is.
func (d *Doors) CancelEnrolment(ctx context.Context, door string, cmd CancelEnrolment) (CommandResult, error) {
	c, err := d.Get(door)
	if err != nil {
		return CommandResult{}, err
	}
	return c.CancelEnrolment(ctx, cmd)
}

// Run runs every door until ctx ends or one of them fails, which stops the
// others: a gateway does not go on with a door it cannot operate safely. It
// returns once every controller has returned (every relay is off), with the
// first failure, or nil when ctx ended.
func (d *Doors) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, id := range d.ids {
		wg.Add(1)
		go func(c *Controller) {
			defer wg.Done()
			if err := c.Run(ctx); err != nil {
				once.Do(func() { first = err })
				cancel()
			}
		}(d.byID[id])
	}
	wg.Wait()
	return first
}

// Healthy waits until every door's loop has handled what was queued before
// the call (see Controller.Flush): the daemon's readiness and watchdog check.
// It reports every door that did not answer before ctx ended.
func (d *Doors) Healthy(ctx context.Context) error {
	var errs []error
	for _, id := range d.ids {
		if err := d.byID[id].Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("door %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}
