package agent

import (
	"context"
	"fmt"
	"strings"
)

func (c *Controller) onInput(ctx context.Context, in DoorInput, active bool) {
	switch in {
	case DoorContact:
		if active == c.doorOpen {
			return // a repeated level is not a change
		}
		if active {
			c.doorOpened(ctx)
		} else {
			c.doorClosed(ctx)
		}
	case ExitButton:
		if active {
			c.exitPressed(ctx)
		}
	case Tamper:
		c.setTamper(ctx, "", active)
	default:
		c.log.Warn("unknown door input ignored", "input", string(in))
	}
}

// doorOpened classifies an opening: authorised while the relay is energised
// (or was within OpenGrace, since the contact is slower than the relay),
// forced otherwise.
func (c *Controller) doorOpened(ctx context.Context) {
	c.doorOpen = true
	st, now := c.strike.state(), c.clock.Now()
	var why []string
	for k, active := range st.Active {
		if active {
			why = append(why, holdKind(k).reason())
		}
	}
	authorised := st.On || !st.LastOff.IsZero() && now.Sub(st.LastOff) <= c.cfg.OpenGrace
	if !st.On && authorised {
		why = append(why, "relay had just relocked")
	}
	if st.Active[holdPulse] {
		c.relockOnClose = true
	}
	detail := "opened while locked"
	if authorised {
		detail = "opened: " + strings.Join(why, ", ")
	}
	c.emit(ctx, Event{Type: EventDoorOpened, Detail: detail})
	if !authorised {
		c.forced = true
		c.emit(ctx, Event{Type: EventForcedOpen, Detail: "the door opened without a grant, an exit press or an unlock"})
	}
}

func (c *Controller) doorClosed(ctx context.Context) {
	c.doorOpen = false
	c.emit(ctx, Event{Type: EventDoorClosed})
	if c.relockOnClose {
		// Relock early: the person is through, the rest of the pulse
		// would only let a second one in.
		c.relockOnClose = false
		if err := c.strike.release(holdPulse); err != nil {
			c.log.Error("relay did not relock on door close", "err", err)
		}
	}
	c.disarm(timerPreAlarm)
	c.disarm(timerHeldOpen)
	if c.forced {
		c.forced = false
		c.emit(ctx, Event{Type: EventForcedOpenCleared, Detail: "the door closed"})
	}
	if c.preAlarm || c.heldAlarm {
		c.preAlarm, c.heldAlarm = false, false
		c.emit(ctx, Event{Type: EventHeldOpenCleared, Detail: "the door closed"})
	}
}

// exitPressed unlocks for the access time, also during lockdown: an exit must
// always let people out (life safety).
func (c *Controller) exitPressed(ctx context.Context) {
	if err := c.strike.set(holdPulse, c.clock.Now().Add(c.cfg.AccessTime)); err != nil {
		c.log.Error("relay did not switch on for an exit press", "err", err)
	}
	c.relockOnClose = c.doorOpen
	detail := fmt.Sprintf("unlocked for %s", c.cfg.AccessTime)
	if c.lockdown {
		detail += " (exit works during lockdown)"
	}
	c.emit(ctx, Event{Type: EventExitPressed, Detail: detail})
}

// reconcileHeld runs the held-open timers while the door is open and not
// intentionally held unlocked (remote unlock, office mode).
func (c *Controller) reconcileHeld() {
	if c.strike == nil {
		return
	}
	st := c.strike.state()
	held := st.Active[holdRemote] || st.Active[holdOffice]
	switch {
	case !c.doorOpen || held:
		c.disarm(timerPreAlarm)
		c.disarm(timerHeldOpen)
	case !c.armed(timerHeldOpen) && !c.heldAlarm:
		if c.cfg.PreAlarmAfter > 0 && !c.preAlarm {
			c.arm(timerPreAlarm, c.cfg.PreAlarmAfter)
		}
		c.arm(timerHeldOpen, c.cfg.HeldOpenTime)
	}
}

func (c *Controller) preAlarmDue(ctx context.Context) {
	c.preAlarm = true
	c.show(fbPreAlarm)
	c.emit(ctx, Event{Type: EventHeldOpenPreAlarm, Detail: fmt.Sprintf("open for %s; held-open alarm at %s", c.cfg.PreAlarmAfter, c.cfg.HeldOpenTime)})
}

func (c *Controller) heldOpenDue(ctx context.Context) {
	c.heldAlarm = true
	c.emit(ctx, Event{Type: EventHeldOpen, Detail: fmt.Sprintf("open for longer than %s", c.cfg.HeldOpenTime)})
}

func (k holdKind) reason() string {
	switch k {
	case holdPulse:
		return "grant or exit"
	case holdRemote:
		return "remote unlock"
	case holdOffice:
		return "office mode"
	}
	return k.String()
}
