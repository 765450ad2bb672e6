package agenttest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/portier-io/portier/agent"
)

// Clock is a fake agent.Clock. Time moves only when a test calls Advance,
// which runs the due AfterFunc callbacks in the test's goroutine, in deadline
// order (ties in arming order), with Now returning each timer's deadline while
// its callback runs. Runs are therefore deterministic and need no sleeps.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	seq     uint64
	pending []*fakeTimer
	armed   chan struct{} // closed and replaced whenever a timer is armed
}

var _ agent.Clock = (*Clock)(nil)

type fakeTimer struct {
	c    *Clock
	when time.Time
	seq  uint64
	f    func()
}

// NewClock returns a fake clock reading start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, armed: make(chan struct{})}
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arms f to run when the clock reaches Now()+d. A d <= 0 timer is
// due at once and runs on the next Advance (also Advance(0)).
func (c *Clock) AfterFunc(d time.Duration, f func()) agent.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, when: c.now.Add(max(d, 0)), seq: c.seq, f: f}
	c.pending = append(c.pending, t)
	close(c.armed)
	c.armed = make(chan struct{})
	return t
}

// Stop removes the timer if it has not fired.
func (t *fakeTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.pending, t)
	if i < 0 {
		return false
	}
	c.pending = slices.Delete(c.pending, i, i+1)
	return true
}

// Advance moves the clock forward by d, firing every timer that falls due on
// the way, including timers armed by the callbacks themselves.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(max(d, 0))
	c.mu.Unlock()
	for {
		c.mu.Lock()
		t := c.nextDue(target)
		if t == nil {
			c.now = target
			c.mu.Unlock()
			return
		}
		c.pending = slices.DeleteFunc(c.pending, func(p *fakeTimer) bool { return p == t })
		if t.when.After(c.now) {
			c.now = t.when
		}
		c.mu.Unlock()
		t.f()
	}
}

// AdvanceTo advances the clock to at (no-op when at is not later than Now).
func (c *Clock) AdvanceTo(at time.Time) { c.Advance(at.Sub(c.Now())) }

func (c *Clock) nextDue(target time.Time) *fakeTimer {
	var next *fakeTimer
	for _, t := range c.pending {
		if t.when.After(target) {
			continue
		}
		if next == nil || t.when.Before(next.when) || t.when.Equal(next.when) && t.seq < next.seq {
			next = t
		}
	}
	return next
}

// Pending returns the deadlines of the armed timers, earliest first.
func (c *Clock) Pending() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, 0, len(c.pending))
	for _, t := range c.pending {
		out = append(out, t.when)
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// WaitArmed blocks until a timer is armed whose deadline is at, for tests
// where another goroutine arms it; it returns ctx's error if ctx ends first.
func (c *Clock) WaitArmed(ctx context.Context, at time.Time) error {
	for {
		c.mu.Lock()
		found := slices.ContainsFunc(c.pending, func(t *fakeTimer) bool { return t.when.Equal(at) })
		armed := c.armed
		c.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-armed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
