package agent

import (
	"context"
	"fmt"
	"time"
)

// Command identifies a remote or local command: its id (recorded in every
// event it causes) and who sent it. Expiry, duplicates and signatures are
// checked by the receiver before a command reaches a door.
type Command struct {
	ID    string
	Actor string
}

// stamp marks an event as caused by this command.
func (c Command) stamp(e Event) Event {
	e.CommandID, e.Actor = c.ID, c.Actor
	return e
}

func (c Command) detail(what string) string {
	return fmt.Sprintf("command %s by %s: %s", orDash(c.ID), orDash(c.Actor), what)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// RemoteUnlock unlocks the door. A zero Duration is a pulse of the access
// time that relocks early when the door closes, like a grant; a positive
// Duration holds the door unlocked until it has passed, whatever the door
// contact does. During lockdown it needs Override.
type RemoteUnlock struct {
	Command
	Duration time.Duration
	Override bool
}

// LockdownCommand turns lockdown on or off.
type LockdownCommand struct {
	Command
	On bool
}

// OfficeModeCommand turns office mode on or off. Until, when set, is its
// scheduled end.
type OfficeModeCommand struct {
	Command
	On    bool
	Until time.Time
}

// EnrolCommand arms enrolment: the next card presented at the door is stored
// as carrying TagNumber.
type EnrolCommand struct {
	Command
	TagNumber string
}

// CancelEnrolment ends the enrolment armed by the EnrolCommand with the same
// ID, when whoever armed it stopped waiting (portier enroll ended by Ctrl-C
// or its timeout): the next card tapped must not be stored under a tag
// number nobody watches for.
type CancelEnrolment struct {
	Command
}

// CommandReason says why a command was or was not carried out.
type CommandReason string

// Command outcomes.
const (
	CommandAccepted    CommandReason = "accepted"
	CommandLockdown    CommandReason = "door_lockdown"   // refused: the door is in lockdown
	CommandInvalid     CommandReason = "invalid_command" // refused: bad arguments
	CommandUnsupported CommandReason = "unsupported"     // refused: the door cannot do it (no enrolment store)
)

// CommandResult is a door's answer to a command.
type CommandResult struct {
	Accepted bool          `json:"accepted"`
	Reason   CommandReason `json:"reason"`
	Detail   string        `json:"detail,omitempty"`
}

// Unlock runs a remote unlock.
func (c *Controller) Unlock(ctx context.Context, cmd RemoteUnlock) (CommandResult, error) {
	r, err := c.command(ctx, cmd)
	return r.res, err
}

// Lockdown turns lockdown on or off.
func (c *Controller) Lockdown(ctx context.Context, cmd LockdownCommand) (CommandResult, error) {
	r, err := c.command(ctx, cmd)
	return r.res, err
}

// OfficeMode turns office mode on or off.
func (c *Controller) OfficeMode(ctx context.Context, cmd OfficeModeCommand) (CommandResult, error) {
	r, err := c.command(ctx, cmd)
	return r.res, err
}

// ArmEnrolment arms "enrol the next tap". When accepted, the channel delivers
// exactly one EnrolResult (enrolled, failed, expired, replaced or stopped).
func (c *Controller) ArmEnrolment(ctx context.Context, cmd EnrolCommand) (CommandResult, <-chan EnrolResult, error) {
	r, err := c.command(ctx, cmd)
	return r.res, r.enrol, err
}

// CancelEnrolment ends the enrolment cmd.ID armed, if it is still armed.
func (c *Controller) CancelEnrolment(ctx context.Context, cmd CancelEnrolment) (CommandResult, error) {
	r, err := c.command(ctx, cmd)
	return r.res, err
}

// command hands cmd to the loop and waits for its answer. The error is only
// about delivery (ctx ended, controller stopped); a refusal is a result.
func (c *Controller) command(ctx context.Context, cmd any) (commandReply, error) {
	reply := make(chan commandReply, 1)
	if err := c.post(commandMsg{cmd, reply}, false); err != nil {
		return commandReply{}, err
	}
	select {
	case r := <-reply:
		return r, nil
	case <-c.done:
		return commandReply{}, ErrControllerStopped
	case <-ctx.Done():
		return commandReply{}, ctx.Err()
	}
}

func (c *Controller) onCommand(ctx context.Context, cmd any) commandReply {
	switch cmd := cmd.(type) {
	case RemoteUnlock:
		return commandReply{res: c.remoteUnlock(ctx, cmd)}
	case LockdownCommand:
		return commandReply{res: c.setLockdown(ctx, cmd)}
	case OfficeModeCommand:
		return commandReply{res: c.setOfficeMode(ctx, cmd)}
	case EnrolCommand:
		return c.armEnrolment(ctx, cmd)
	case CancelEnrolment:
		return commandReply{res: c.cancelEnrolment(ctx, cmd)}
	}
	return commandReply{res: CommandResult{Reason: CommandInvalid, Detail: fmt.Sprintf("unknown command %T", cmd)}}
}

// reject records a refused command and answers it.
func (c *Controller) reject(ctx context.Context, cmd Command, why CommandReason, detail string) CommandResult {
	// The refusal is the event's reason (door_lockdown, invalid_command,
	// unsupported), as for refusals before a command reaches a door.
	c.emit(ctx, cmd.stamp(Event{Type: EventCommandRejected, Reason: Reason(why), Detail: cmd.detail(detail)}))
	return CommandResult{Reason: why, Detail: detail}
}

func accepted(detail string) CommandResult {
	return CommandResult{Accepted: true, Reason: CommandAccepted, Detail: detail}
}

func (c *Controller) remoteUnlock(ctx context.Context, cmd RemoteUnlock) CommandResult {
	switch {
	case cmd.Duration < 0 || cmd.Duration > c.cfg.MaxUnlock:
		return c.reject(ctx, cmd.Command, CommandInvalid, fmt.Sprintf("unlock duration %s is outside 0–%s", cmd.Duration, c.cfg.MaxUnlock))
	case c.lockdown && !cmd.Override:
		return c.reject(ctx, cmd.Command, CommandLockdown, "remote unlock during lockdown needs the override flag")
	}
	now := c.clock.Now()
	var err error
	var what string
	if cmd.Duration == 0 {
		err = c.strike.set(holdPulse, now.Add(c.cfg.AccessTime))
		c.relockOnClose = c.doorOpen
		what = fmt.Sprintf("unlocked for %s", c.cfg.AccessTime)
	} else {
		until := now.Add(cmd.Duration)
		err = c.strike.set(holdRemote, until)
		what = "unlocked until " + until.UTC().Format(time.RFC3339)
	}
	if c.lockdown {
		what += " (lockdown override)"
	}
	if err != nil {
		c.log.Error("relay did not switch on for a remote unlock", "err", err)
		what += "; relay fault: " + err.Error()
	}
	c.emit(ctx, cmd.stamp(Event{Type: EventRemoteUnlock, Detail: cmd.detail(what)}))
	return accepted(what)
}

// setLockdown: lockdown relocks at once, ends office mode and abandons any
// PIN or card_and_pin entry; only the exit button and overriding remote
// unlocks open the door until it is lifted.
func (c *Controller) setLockdown(ctx context.Context, cmd LockdownCommand) CommandResult {
	if !cmd.On {
		what := "lockdown lifted"
		if !c.lockdown {
			what = "the door was not in lockdown"
		}
		c.lockdown = false
		c.emit(ctx, cmd.stamp(Event{Type: EventLockdownOff, Detail: cmd.detail(what)}))
		return accepted(what)
	}
	what := "lockdown on: everything is denied, exit still works"
	if c.lockdown {
		what = "the door was already in lockdown"
	}
	c.lockdown = true
	c.clearPIN()
	c.clearTwoFactor()
	if err := c.strike.releaseAll(); err != nil {
		c.log.Error("relay did not relock for lockdown", "err", err)
		what += "; relay fault: " + err.Error()
	}
	c.relockOnClose = false
	c.emit(ctx, cmd.stamp(Event{Type: EventLockdownOn, Detail: cmd.detail(what)}))
	if c.officeMode() != OfficeOff {
		c.endOffice(ctx, cmd.Command, "ended by lockdown")
	}
	return accepted(what)
}
