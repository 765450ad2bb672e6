package mqtt

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/portier-io/portier/agent"
)

// Refused commands are recorded one by one only up to a burst per cause and
// interval; the rest of the interval's refusals of that cause become one
// commands_refused event with their count and a sample of their ids. A
// flood of junk commands (no signing key is needed to send them) so costs a
// handful of events: it cannot queue thousands of events ahead of a door's,
// nor push the last door events out of the bounded local history.
// While a flood lasts (refusals of a cause in the interval after a
// summary), every refusal of that cause goes into the summary: one event per
// cause and interval. After a quiet interval the burst is allowed again.

// Defaults of the refusal summaries.
const (
	DefaultRefusalInterval = time.Minute
	DefaultRefusalBurst    = 10
)

// refusalSample is how many ids a summary names.
const refusalSample = 5

type refusals struct {
	clock    agent.Clock
	interval time.Duration
	burst    int
	record   func(agent.Event) // records a summary (outside the lock)

	mu     sync.Mutex
	causes map[string]*refusalCause
}

// refusalCause is the current interval of one cause.
type refusalCause struct {
	start, end time.Time // the open window; end is zero when none is open
	left       int       // refusals still recorded one by one in it
	count      int       // refusals summed up in it
	sample     []string
	quietAt    time.Time // a window opened before this gets no burst (a flood goes on)
	timer      agent.Timer
}

func newRefusals(clock agent.Clock, interval time.Duration, burst int, record func(agent.Event)) *refusals {
	return &refusals{clock: clock, interval: interval, burst: max(burst, 0), record: record, causes: map[string]*refusalCause{}}
}

// admit counts a refusal of cause (the rejection type) for the command id
// ("" when unreadable): true means record it on its own, false that it is
// summed up in the cause's next commands_refused event.
func (r *refusals) admit(cause, id string) bool {
	r.mu.Lock()
	now := r.clock.Now()
	c := r.causes[cause]
	if c == nil {
		c = &refusalCause{}
		r.causes[cause] = c
	}
	var late *agent.Event
	if c.end.IsZero() || !now.Before(c.end) {
		late = r.closeLocked(cause, c) // its timer has not run yet
		c.start, c.end, c.left = now, now.Add(r.interval), r.burst
		if now.Before(c.quietAt) {
			c.left = 0
		}
	}
	own := c.left > 0
	if own {
		c.left--
	} else {
		c.count++
		if id != "" && len(c.sample) < refusalSample {
			c.sample = append(c.sample, id)
		}
		if c.timer == nil {
			c.timer = r.clock.AfterFunc(c.end.Sub(now), func() { r.close(cause) })
		}
	}
	r.mu.Unlock()
	if late != nil {
		r.record(*late)
	}
	return own
}

// close ends cause's window at its end (the timer).
func (r *refusals) close(cause string) {
	r.mu.Lock()
	e := r.closeLocked(cause, r.causes[cause])
	r.mu.Unlock()
	if e != nil {
		r.record(*e)
	}
}

// closeLocked ends c's window and returns its summary, nil when it summed
// nothing up.
func (r *refusals) closeLocked(cause string, c *refusalCause) *agent.Event {
	if c == nil || c.end.IsZero() {
		return nil
	}
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	defer func() { c.end, c.count, c.sample = time.Time{}, 0, nil }()
	if c.count == 0 {
		return nil
	}
	c.quietAt = c.end.Add(r.interval)
	detail := fmt.Sprintf("%d more commands refused (%s) between %s and %s", c.count, cause,
		c.start.UTC().Format(time.RFC3339), c.end.UTC().Format(time.RFC3339))
	if len(c.sample) > 0 {
		detail += "; ids include " + strings.Join(c.sample, ", ")
	}
	return &agent.Event{Time: c.end, Type: agent.EventCommandsRefused, Reason: agent.Reason(cause), Count: c.count, SampleIDs: c.sample, Detail: detail}
}

// flush records every open window's summary now (at shutdown).
func (r *refusals) flush() {
	r.mu.Lock()
	var out []agent.Event
	for cause, c := range r.causes {
		if e := r.closeLocked(cause, c); e != nil {
			out = append(out, *e)
		}
	}
	r.mu.Unlock()
	for _, e := range out {
		r.record(e)
	}
}

// recordRefusals records a summary and logs it.
func (l *Link) recordRefusals(e agent.Event) {
	l.log.Warn("mqtt: commands refused (summary)", "type", string(e.Reason), "count", e.Count, "sample_ids", e.SampleIDs)
	if err := l.cfg.Events.Record(context.WithoutCancel(l.runCtx), e); err != nil {
		l.log.Error("mqtt: refusal summary not recorded", "err", err)
	}
}
