package agent

import (
	"math/rand/v2"
	"time"
)

// Backoff is the delay between retries of anything that fails and tries
// again (a broker connection, a Salto KS request, a sync, the outbox, a
// device loop): Min, 2·Min, 4·Min, … up to Max, starting over after Reset.
// Jitter, when set, turns each step into the delay actually waited, so that
// gateways that failed together do not retry in lockstep.
//
// A Backoff is not safe for concurrent use; each retry loop owns its own.
type Backoff struct {
	Min, Max time.Duration
	Jitter   func(step time.Duration) time.Duration // nil: wait the step itself
	n        int
}

// Next returns the delay before the next attempt, and grows the step.
func (b *Backoff) Next() time.Duration {
	step := b.Min
	for i := 0; i < b.n && step < b.Max; i++ {
		if step > b.Max/2 {
			step = b.Max
			break
		}
		step *= 2
	}
	step = min(step, b.Max)
	if b.n < 64 {
		b.n++
	}
	if b.Jitter == nil {
		return step
	}
	return b.Jitter(step)
}

// Reset starts over at Min (after a success).
func (b *Backoff) Reset() { b.n = 0 }

// EqualJitter waits half the step plus a random share of the other half:
// spread out, but never much shorter than the step. rnd returns a number in
// [0, 1); nil uses math/rand.
func EqualJitter(rnd func() float64) func(time.Duration) time.Duration {
	if rnd == nil {
		rnd = rand.Float64
	}
	return func(step time.Duration) time.Duration {
		half := step / 2
		return half + time.Duration(rnd()*float64(step-half))
	}
}
