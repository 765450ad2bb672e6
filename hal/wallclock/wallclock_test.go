package wallclock_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/portier-io/portier/hal/wallclock"
)

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// An hour-long sleep on a cancelled context returns at once with its error.
	assert.ErrorIs(t, wallclock.Clock{}.Sleep(ctx, time.Hour), context.Canceled)
	assert.NoError(t, wallclock.Clock{}.Sleep(context.Background(), 0))
	assert.False(t, wallclock.Clock{}.Now().IsZero())
}
