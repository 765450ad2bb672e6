package agenttest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent/agenttest"
)

func TestClockFiresInDeadlineOrder(t *testing.T) {
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	c := agenttest.NewClock(start)
	var got []string
	var at []time.Duration
	rec := func(name string) func() {
		return func() { got = append(got, name); at = append(at, c.Now().Sub(start)) }
	}
	c.AfterFunc(3*time.Second, rec("c"))
	c.AfterFunc(time.Second, rec("a"))
	c.AfterFunc(time.Second, rec("b")) // same deadline: arming order
	stopped := c.AfterFunc(2*time.Second, rec("never"))
	c.AfterFunc(2*time.Second, func() {
		got = append(got, "chain")
		c.AfterFunc(500*time.Millisecond, rec("chained"))
	})
	assert.True(t, stopped.Stop())
	assert.False(t, stopped.Stop())

	c.Advance(2500 * time.Millisecond)
	assert.Equal(t, []string{"a", "b", "chain", "chained"}, got)
	assert.Equal(t, []time.Duration{time.Second, time.Second, 2500 * time.Millisecond}, at)
	assert.Equal(t, start.Add(2500*time.Millisecond), c.Now())
	assert.Equal(t, []time.Time{start.Add(3 * time.Second)}, c.Pending())

	c.Advance(time.Second)
	assert.Equal(t, []string{"a", "b", "chain", "chained", "c"}, got)
	assert.Empty(t, c.Pending())
}

func TestClockWaitArmed(t *testing.T) {
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	c := agenttest.NewClock(start)
	fired := make(chan struct{})
	go c.AfterFunc(time.Minute, func() { close(fired) })
	require.NoError(t, c.WaitArmed(context.Background(), start.Add(time.Minute)))
	c.Advance(time.Minute)
	<-fired

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, c.WaitArmed(ctx, start.Add(time.Hour)), context.Canceled)
}
