package agent

import (
	"context"
	"fmt"
	"time"
)

// LockoutPolicy blocks PIN entry at a door after repeated wrong PINs. Each
// lockout in a streak lasts twice the previous one, up to MaxDuration; a
// streak ends after ResetAfter without a new lockout.
type LockoutPolicy struct {
	MaxFailures int           // wrong PINs that start a lockout; default 5
	Window      time.Duration // ... within this window; default 60 s
	Duration    time.Duration // first lockout; default 60 s
	MaxDuration time.Duration // cap; default 15 min
	ResetAfter  time.Duration // quiet time after a lockout that resets the streak; default 10 min
}

func (p LockoutPolicy) withDefaults() LockoutPolicy {
	if p.MaxFailures == 0 {
		p.MaxFailures = 5
	}
	if p.Window == 0 {
		p.Window = time.Minute
	}
	if p.Duration == 0 {
		p.Duration = time.Minute
	}
	if p.MaxDuration == 0 {
		p.MaxDuration = 15 * time.Minute
	}
	if p.ResetAfter == 0 {
		p.ResetAfter = 10 * time.Minute
	}
	return p
}

func (p LockoutPolicy) validate() error {
	if p.MaxFailures < 1 || p.Window < 0 || p.Duration < 0 || p.MaxDuration < p.Duration || p.ResetAfter < 0 {
		return fmt.Errorf("lockout policy: want at least one failure, non-negative times and a cap not below the first lockout")
	}
	return nil
}

// duration is the length of lockout number level (0 = first in a streak).
func (p LockoutPolicy) duration(level int) time.Duration {
	d := p.Duration
	for range level {
		if d >= p.MaxDuration/2 {
			return p.MaxDuration
		}
		d *= 2
	}
	return min(d, p.MaxDuration)
}

type lockoutState struct {
	failures []time.Time // wrong PINs inside the window
	level    int         // lockouts so far in this streak
	until    time.Time   // zero when not locked out
	lastEnd  time.Time
}

// succeeded forgets the failures (not the streak) after a correct PIN.
func (l *lockoutState) succeeded() { l.failures = l.failures[:0] }

func (c *Controller) lockedOut() bool { return !c.lockout.until.IsZero() }

func (c *Controller) pinFailed(ctx context.Context) {
	p, l, now := c.cfg.Lockout, &c.lockout, c.clock.Now()
	kept := l.failures[:0]
	for _, t := range l.failures {
		if now.Sub(t) < p.Window {
			kept = append(kept, t)
		}
	}
	l.failures = append(kept, now)
	if len(l.failures) < p.MaxFailures {
		return
	}
	if !l.lastEnd.IsZero() && now.Sub(l.lastEnd) >= p.ResetAfter {
		l.level = 0
	}
	d := p.duration(l.level)
	l.level++
	l.until = now.Add(d)
	l.failures = l.failures[:0]
	c.arm(timerLockout, d)
	c.clearPIN()
	c.clearTwoFactor()
	c.show(fbLockedOut)
	c.emit(ctx, Event{Type: EventLockoutStarted, Reason: ReasonLockedOut,
		Detail: fmt.Sprintf("%d wrong PINs within %s: PIN entry blocked for %s (lockout %d in a row)", p.MaxFailures, p.Window, d, l.level)})
}

func (c *Controller) lockoutOver(ctx context.Context) {
	c.lockout.until = time.Time{}
	c.lockout.lastEnd = c.clock.Now()
	c.emit(ctx, Event{Type: EventLockoutEnded, Detail: "PIN entry allowed again"})
}
