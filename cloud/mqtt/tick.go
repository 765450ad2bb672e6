package mqtt

import (
	"context"
	"time"

	"github.com/portier-io/portier/agent"
)

// tick calls f every d on clock until ctx ends.
func tick(ctx context.Context, clock agent.Clock, d time.Duration, f func()) {
	for agent.Sleep(ctx, clock, d) == nil {
		f()
	}
}
