package agent

import (
	"context"
	"time"
)

// timerKind names the controller's timers. Each fires by queueing a
// timeoutMsg; a generation number voids a timer that fired after it was
// disarmed or re-armed.
type timerKind int

const (
	timerPIN timerKind = iota
	timerTwoFactor
	timerPreAlarm
	timerHeldOpen
	timerLockout
	timerEnrol
	timerOffice
	timerFeedback
	numTimers
)

type timerSlot struct {
	t   Timer
	gen uint64
}

func (c *Controller) arm(k timerKind, d time.Duration) {
	c.disarm(k)
	gen := c.timers[k].gen
	c.timers[k].t = c.clock.AfterFunc(d, func() { _ = c.post(timeoutMsg{k, gen}, false) })
}

func (c *Controller) disarm(k timerKind) {
	s := &c.timers[k]
	if s.t != nil {
		s.t.Stop()
		s.t = nil
	}
	s.gen++
}

func (c *Controller) armed(k timerKind) bool { return c.timers[k].t != nil }

func (c *Controller) onTimeout(ctx context.Context, k timerKind) {
	switch k {
	case timerPIN:
		c.clearPIN() // silently: a half-typed PIN is not an attempt
	case timerTwoFactor:
		c.twoFactorExpired(ctx)
	case timerPreAlarm:
		c.preAlarmDue(ctx)
	case timerHeldOpen:
		c.heldOpenDue(ctx)
	case timerLockout:
		c.lockoutOver(ctx)
	case timerEnrol:
		c.enrolmentExpired(ctx)
	case timerOffice:
		c.officeArmExpired(ctx)
	case timerFeedback:
		c.overlay = fbNone
	}
}
