package simtime_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/portier-io/portier/hal/simtime"
)

func TestClock(t *testing.T) {
	c := simtime.New()
	start := c.Now()
	assert.NoError(t, c.Sleep(context.Background(), time.Second))
	assert.Equal(t, time.Second, c.Since(start))
	c.Advance(-time.Hour)
	assert.Equal(t, time.Second, c.Since(start), "never backwards")
	c.AdvanceTo(start)
	assert.Equal(t, time.Second, c.Since(start), "AdvanceTo the past is ignored")
	c.AdvanceTo(start.Add(time.Minute))
	assert.Equal(t, time.Minute, c.Since(start))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, c.Sleep(ctx, time.Hour), context.Canceled)
	assert.Equal(t, time.Minute, c.Since(start), "a cancelled sleep does not advance")
}
