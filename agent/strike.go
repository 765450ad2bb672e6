package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// holdKind is one reason for the relay to be energised. The relay is on while
// any hold is active.
type holdKind int

const (
	holdPulse  holdKind = iota // a grant or exit press: bounded, relocks early when the door closes
	holdRemote                 // remote unlock for a duration: bounded, ignores the door contact
	holdOffice                 // office mode: until turned off or its scheduled end
	numHolds
)

func (k holdKind) String() string {
	switch k {
	case holdPulse:
		return "pulse"
	case holdRemote:
		return "remote"
	case holdOffice:
		return "office"
	}
	return fmt.Sprintf("holdKind(%d)", int(k))
}

// strikeChange reports a relay transition or a hold that ran out.
type strikeChange struct {
	At      time.Time
	On      bool     // relay state after the change
	Changed bool     // the relay switched
	Expired holdKind // the hold whose deadline passed; -1 for none
}

// strike owns the relay. Deadlines are enforced by its own clock timers under
// its own mutex, never by the controller loop: a controller stuck in the
// outbox, the cache or anything else cannot extend a pulse.
type strike struct {
	mu      sync.Mutex
	relay   Output
	clock   Clock
	log     *slog.Logger
	holds   [numHolds]hold
	on      bool
	lastOff time.Time
	report  func(strikeChange) // must not block: it only queues
}

type hold struct {
	active bool
	until  time.Time // zero: no deadline (office mode without an end)
	timer  Timer
	gen    uint64
}

func newStrike(relay Output, clock Clock, log *slog.Logger, report func(strikeChange)) *strike {
	return &strike{relay: relay, clock: clock, log: log, report: report}
}

// safe drops every hold and drives the relay off, whatever state it believes
// the relay is in (the process may have inherited an energised relay).
func (s *strike) safe() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.holds {
		s.clearHold(holdKind(k))
	}
	err := s.relay.Set(false)
	wasOn := s.on
	s.on = false
	if wasOn {
		now := s.clock.Now()
		s.lastOff = now
		s.report(strikeChange{At: now, On: false, Changed: true, Expired: -1})
	}
	if err != nil {
		return fmt.Errorf("relay off: %w", err)
	}
	return nil
}

// set starts or replaces hold k until the deadline (zero: none).
func (s *strike) set(k holdKind, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearHold(k)
	now := s.clock.Now()
	h := &s.holds[k]
	h.active, h.until = true, until
	if !until.IsZero() {
		gen := h.gen
		// Armed before the relay switches on, so there is never an
		// energised relay without a deadline.
		h.timer = s.clock.AfterFunc(until.Sub(now), func() { s.expire(k, gen) })
	}
	return s.apply(now, -1)
}

// release ends hold k early (door closed, command, lockdown).
func (s *strike) release(k holdKind) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.holds[k].active {
		return nil
	}
	s.clearHold(k)
	return s.apply(s.clock.Now(), -1)
}

// releaseAll ends every hold (lockdown).
func (s *strike) releaseAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.holds {
		s.clearHold(holdKind(k))
	}
	return s.apply(s.clock.Now(), -1)
}

func (s *strike) expire(k holdKind, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := &s.holds[k]
	if !h.active || h.gen != gen {
		return // released or replaced after the timer fired
	}
	s.clearHold(k)
	if err := s.apply(s.clock.Now(), k); err != nil {
		s.log.Error("relay did not switch off at its deadline", "hold", k.String(), "err", err)
	}
}

// clearHold deactivates hold k; the generation bump voids a timer callback
// that is already running.
func (s *strike) clearHold(k holdKind) {
	h := &s.holds[k]
	if h.timer != nil {
		h.timer.Stop()
	}
	h.active, h.until, h.timer = false, time.Time{}, nil
	h.gen++
}

// apply drives the relay to what the holds ask for.
func (s *strike) apply(now time.Time, expired holdKind) error {
	want := false
	for _, h := range s.holds {
		want = want || h.active
	}
	if want == s.on {
		if expired >= 0 {
			s.report(strikeChange{At: now, On: s.on, Expired: expired})
		}
		return nil
	}
	err := s.relay.Set(want)
	if err != nil && want {
		// Could not energise: make sure the relay is not left half-driven
		// and drop the holds, since nothing is unlocked.
		for k := range s.holds {
			s.clearHold(holdKind(k))
		}
		err = errors.Join(err, s.relay.Set(false))
		want = false
		if !s.on {
			return fmt.Errorf("relay on: %w", err)
		}
	}
	s.on = want
	if !want {
		s.lastOff = now
	}
	s.report(strikeChange{At: now, On: want, Changed: true, Expired: expired})
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	return nil
}

// strikeState is a consistent view of the strike.
type strikeState struct {
	On      bool
	LastOff time.Time
	Active  [numHolds]bool
	Until   [numHolds]time.Time
}

func (s *strike) state() strikeState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := strikeState{On: s.on, LastOff: s.lastOff}
	for k, h := range s.holds {
		st.Active[k], st.Until[k] = h.active, h.until
	}
	return st
}
