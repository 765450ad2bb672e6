package agent

import "time"

// Clock is the time source of the door runtime. It is injected so that every
// timing rule (relay deadlines, PIN timeouts, alarms, lockouts) can be tested
// with a fake clock and no sleeps.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or, for a fake clock, in the
	// goroutine that advances time) once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not started; it reports whether it did.
	Stop() bool
}

// SystemClock is the wall clock of the process.
type SystemClock struct{}

var _ Clock = SystemClock{}

// NewSystemClock returns the wall clock.
func NewSystemClock() SystemClock { return SystemClock{} }

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
