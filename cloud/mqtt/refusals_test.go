package mqtt

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
)

func TestRefusalSummaries(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := agenttest.NewClock(t0)
	var mu sync.Mutex
	var summaries []agent.Event
	r := newRefusals(clock, time.Minute, 3, func(e agent.Event) {
		mu.Lock()
		summaries = append(summaries, e)
		mu.Unlock()
	})
	got := func() []agent.Event {
		mu.Lock()
		defer mu.Unlock()
		out := summaries
		summaries = nil
		return out
	}
	admit := func(cause string, n int, from int) (own int) {
		for i := range n {
			if r.admit(cause, fmt.Sprintf("%s-%d", cause, from+i)) {
				own++
			}
		}
		return own
	}

	// The first three of a cause are recorded on their own, the rest summed
	// up when the interval ends; each cause counts for itself.
	assert.Equal(t, 3, admit("malformed", 1000, 0))
	assert.Equal(t, 1, admit("expired", 1, 0))
	assert.False(t, r.admit("malformed", ""), "an unreadable id is counted too")
	assert.Empty(t, got(), "nothing until the interval ends")
	clock.Advance(time.Minute)
	s := got()
	if assert.Len(t, s, 1, "a summary for the cause that overflowed only") {
		assert.Equal(t, agent.EventCommandsRefused, s[0].Type)
		assert.Equal(t, agent.Reason("malformed"), s[0].Reason)
		assert.Equal(t, 998, s[0].Count)
		assert.Equal(t, []string{"malformed-3", "malformed-4", "malformed-5", "malformed-6", "malformed-7"}, s[0].SampleIDs)
		assert.Equal(t, t0.Add(time.Minute), s[0].Time)
		assert.Contains(t, s[0].Detail, "998 more commands refused (malformed) between 2026-11-21T12:00:00Z and 2026-11-21T12:01:00Z; ids include malformed-3")
	}

	// The flood goes on: no burst while it lasts, one summary per interval.
	clock.Advance(10 * time.Second)
	assert.Zero(t, admit("malformed", 50, 2000))
	clock.Advance(time.Minute)
	s = got()
	if assert.Len(t, s, 1) {
		assert.Equal(t, 50, s[0].Count)
	}

	// After a quiet interval the burst is back; what is open at the end is
	// recorded by flush.
	clock.Advance(3 * time.Minute)
	assert.Equal(t, 3, admit("malformed", 4, 3000))
	r.flush()
	s = got()
	if assert.Len(t, s, 1) {
		assert.Equal(t, 1, s[0].Count)
	}
	clock.Advance(time.Hour)
	assert.Empty(t, got(), "flush closed the window and its timer")
}
