package agent

import (
	"context"
	"time"
)

// OfficeState is the office mode of a door.
type OfficeState string

// Office mode states. Armed is easy office mode waiting for its first valid
// entry.
const (
	OfficeOff    OfficeState = "off"
	OfficeArmed  OfficeState = "armed"
	OfficeActive OfficeState = "active"
)

type officeState struct {
	mode  OfficeState // "" means off
	until time.Time   // scheduled end, zero for none
}

func (c *Controller) officeMode() OfficeState {
	if c.office.mode == "" {
		return OfficeOff
	}
	return c.office.mode
}

func (c *Controller) setOfficeMode(ctx context.Context, cmd OfficeModeCommand) CommandResult {
	now := c.clock.Now()
	if !cmd.On {
		what := "office mode off"
		if c.officeMode() == OfficeOff {
			what = "office mode was off"
		}
		c.endOffice(ctx, cmd.Command, cmd.detail(what))
		return accepted(what)
	}
	switch {
	case c.lockdown:
		return c.reject(ctx, cmd.Command, CommandLockdown, "office mode is not available during lockdown")
	case !cmd.Until.IsZero() && !cmd.Until.After(now):
		return c.reject(ctx, cmd.Command, CommandInvalid, "office mode end "+cmd.Until.UTC().Format(time.RFC3339)+" is not in the future")
	}
	what := "office mode on: the door stays unlocked"
	if !cmd.Until.IsZero() {
		what += " until " + cmd.Until.UTC().Format(time.RFC3339)
	}
	if c.cfg.EasyOfficeMode && c.officeMode() != OfficeActive {
		c.office = officeState{mode: OfficeArmed, until: cmd.Until}
		c.disarm(timerOffice)
		if !cmd.Until.IsZero() {
			c.arm(timerOffice, cmd.Until.Sub(now))
		}
		what = "easy office mode armed: it starts at the first valid entry"
		if !cmd.Until.IsZero() {
			what += " and ends at " + cmd.Until.UTC().Format(time.RFC3339)
		}
	} else {
		c.startOffice(cmd.Until)
	}
	c.emit(ctx, cmd.stamp(Event{Type: EventOfficeModeOn, Detail: cmd.detail(what)}))
	return accepted(what)
}

// startOffice holds the relay; the strike enforces the scheduled end.
func (c *Controller) startOffice(until time.Time) {
	c.disarm(timerOffice)
	c.office = officeState{mode: OfficeActive, until: until}
	if err := c.strike.set(holdOffice, until); err != nil {
		c.log.Error("relay did not switch on for office mode", "err", err)
	}
}

// officeFirstEntry starts armed easy office mode at a granted credential.
func (c *Controller) officeFirstEntry(ctx context.Context, d Decision) {
	if c.office.mode != OfficeArmed {
		return
	}
	c.startOffice(c.office.until)
	c.emit(ctx, Event{Type: EventOfficeModeStarted, User: d.User, Group: d.Group, Kind: d.Kind, Credential: d.Credential,
		Detail: "easy office mode started by the first valid entry"})
}

// endOffice ends office mode; by is the command that ended it (zero for a
// scheduled end), stamped on the event like the start's.
func (c *Controller) endOffice(ctx context.Context, by Command, detail string) {
	c.office = officeState{}
	c.disarm(timerOffice)
	if err := c.strike.release(holdOffice); err != nil {
		c.log.Error("relay did not relock at the end of office mode", "err", err)
	}
	c.emit(ctx, by.stamp(Event{Type: EventOfficeModeOff, Detail: detail}))
}

// officeArmExpired ends armed easy office mode that saw no entry before its
// scheduled end.
func (c *Controller) officeArmExpired(ctx context.Context) {
	if c.office.mode == OfficeArmed {
		c.endOffice(ctx, Command{}, "scheduled end before any valid entry")
	}
}

// onStrike records relay transitions with the time they happened and ends
// office mode at its scheduled end.
func (c *Controller) onStrike(ctx context.Context, ch strikeChange) {
	if ch.Changed {
		e := Event{Type: EventRelayOff, Time: ch.At}
		if ch.On {
			e.Type = EventRelayOn
		}
		if ch.Expired >= 0 {
			e.Detail = "deadline of " + ch.Expired.reason()
		}
		c.emit(ctx, e)
	}
	if ch.Expired == holdOffice && c.office.mode == OfficeActive {
		c.office = officeState{}
		c.emit(ctx, Event{Type: EventOfficeModeOff, Detail: "scheduled end"})
	}
}
