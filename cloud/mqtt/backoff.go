package mqtt

import (
	"context"
	"time"

	"github.com/portier-io/portier/agent"
)

// backoff is a capped exponential delay with "equal jitter": each delay is
// half the step plus a random share of the other half, so gateways that lost
// the broker together do not come back in lockstep.
type backoff struct {
	min, max time.Duration
	jitter   func() float64
	n        int
}

func (b *backoff) reset() { b.n = 0 }

func (b *backoff) next() time.Duration {
	d := b.min
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	if b.n < 32 {
		b.n++
	}
	half := d / 2
	return half + time.Duration(b.jitter()*float64(d-half))
}

// sleep waits d on clock, or until ctx ends.
func sleep(ctx context.Context, clock agent.Clock, d time.Duration) error {
	done := make(chan struct{})
	t := clock.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}

// tick calls f every d on clock until ctx ends.
func tick(ctx context.Context, clock agent.Clock, d time.Duration, f func()) {
	for sleep(ctx, clock, d) == nil {
		f()
	}
}
