package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// An event that the outbox refuses (disk full, I/O error, a database locked
// for longer than its busy timeout) must not vanish: access decisions are
// audit records. The EventSpool sits between the runtime and the outbox and
// holds refused events in memory, in order, until the outbox takes them
// again. Doors never wait for it: while it holds events, Record only queues.

// ErrSpoolFull is returned by EventSpool.Record when the outbox fails and
// the spool already holds its limit: that event is lost (and counted).
var ErrSpoolFull = errors.New("event spool full")

// BatchEventSink is an EventSink that can also write several events in one
// transaction (all or none); the spool uses it to write held events back in
// batches — one storage sync per batch instead of per event.
type BatchEventSink interface {
	EventSink
	RecordAll(ctx context.Context, events []Event) error
}

// flushBatch is how many held events one write takes back to a BatchEventSink.
const flushBatch = 256

// EventSpoolConfig configures an EventSpool.
type EventSpoolConfig struct {
	Store  EventSink // the outbox; a BatchEventSink is written in batches
	Clock  Clock
	Logger *slog.Logger
	// Limit is how many events are held at most; default 10,000 (a few MB).
	Limit int
	// RetryMin and RetryMax bound the retry backoff; default 1 s and 30 s.
	RetryMin, RetryMax time.Duration
}

// EventSpool is an EventSink that never loses an event to a transient outbox
// failure while the process runs. Run retries the held events.
type EventSpool struct {
	cfg  EventSpoolConfig
	wake chan struct{}

	mu       sync.Mutex
	held     []Event
	since    time.Time // first failure of the current outage
	lastErr  error
	dropped  int // lost at the limit since the outage began
	retry    Backoff
	flushing bool // Run is writing held events: Record must not overtake them
}

// NewEventSpool returns a spool in front of cfg.Store.
func NewEventSpool(cfg EventSpoolConfig) *EventSpool {
	if cfg.Limit <= 0 {
		cfg.Limit = 10_000
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(30*time.Second, cfg.RetryMin)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &EventSpool{cfg: cfg, wake: make(chan struct{}, 1), retry: Backoff{Min: cfg.RetryMin, Max: cfg.RetryMax}}
}

// Record writes e to the outbox, or holds it when the outbox fails or
// already-held events are waiting (so events keep their order). It returns
// an error only when the event is lost: the outbox fails and the spool is
// full.
func (s *EventSpool) Record(ctx context.Context, e Event) error {
	s.mu.Lock()
	if len(s.held) == 0 && !s.flushing {
		s.mu.Unlock()
		err := s.cfg.Store.Record(ctx, e)
		if err == nil {
			return nil
		}
		s.mu.Lock()
		if ctx.Err() == nil { // the caller giving up is no outbox failure: hold e, raise nothing
			s.failedLocked(err)
		}
	}
	defer s.mu.Unlock()
	if len(s.held) >= s.cfg.Limit {
		s.dropped++
		return fmt.Errorf("%w: %d events held, the outbox fails: %v", ErrSpoolFull, len(s.held), s.lastErr)
	}
	s.held = append(s.held, e)
	select {
	case s.wake <- struct{}{}: // Run writes it, now or after its backoff
	default:
	}
	return nil
}

// failedLocked starts an outage (or extends one) after the store refused an
// event: the first failure queues the alarm ahead of the held events.
func (s *EventSpool) failedLocked(err error) {
	s.lastErr = err
	if !s.since.IsZero() {
		return
	}
	s.since = s.cfg.Clock.Now()
	s.retry.Reset()
	s.cfg.Logger.Error("the outbox refuses events: holding them in memory until it works again", "err", err, "limit", s.cfg.Limit)
	s.held = append(s.held, Event{Time: s.since, Type: EventStoreFailed, Detail: err.Error()})
}

// Held reports how many events wait in memory and how many were lost at
// the limit in the current outage.
func (s *EventSpool) Held() (held, dropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held), s.dropped
}

// Run writes held events whenever there are some, retrying with backoff
// while the outbox fails, until ctx ends. Call Flush after the event
// sources have stopped.
func (s *EventSpool) Run(ctx context.Context) error {
	for {
		s.mu.Lock()
		idle := len(s.held) == 0
		s.mu.Unlock()
		if idle {
			select {
			case <-ctx.Done():
				return nil
			case <-s.wake:
				continue
			}
		}
		ok, wait := s.flush(ctx)
		if ok {
			continue
		}
		// Still failing: wait for the backoff (or for the end).
		if Sleep(ctx, s.cfg.Clock, wait) != nil {
			return nil
		}
	}
}

// Flush tries once to write every held event (for shutdown, after the event
// sources stopped); what the outbox still refuses is reported as lost.
func (s *EventSpool) Flush(ctx context.Context) error {
	if ok, _ := s.flush(ctx); ok {
		return nil
	}
	held, dropped := s.Held()
	s.cfg.Logger.Error("events lost at shutdown: the outbox still refuses them", "lost", held, "dropped_earlier", dropped)
	return fmt.Errorf("%d held events could not be written: %v", held, s.lastError())
}

func (s *EventSpool) lastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// flush writes held events oldest first until none is left (true) or the
// outbox refuses one (false, and how long to wait before the next attempt;
// the event stays at the head). Ending an outage, it writes the recovery
// alarm last.
func (s *EventSpool) flush(ctx context.Context) (bool, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushing = true
	defer func() { s.flushing = false }()
	for {
		if len(s.held) == 0 {
			if s.since.IsZero() {
				return true, 0
			}
			s.held = append(s.held, s.recovery())
		}
		// Held events only ever leave from the head (here), so the batch
		// stays valid while the lock is released.
		batch := s.held[:min(len(s.held), flushBatch)]
		s.mu.Unlock()
		var err error
		if bs, ok := s.cfg.Store.(BatchEventSink); ok && len(batch) > 1 {
			err = bs.RecordAll(ctx, batch)
		} else {
			batch = batch[:1]
			err = s.cfg.Store.Record(ctx, batch[0])
		}
		s.mu.Lock()
		if err != nil {
			if s.since.IsZero() && ctx.Err() == nil {
				// The first refusal came with a cancelled context; this one
				// is the outbox's: the outage starts now.
				s.failedLocked(err)
			} else {
				s.lastErr = err
			}
			return false, s.retry.Next()
		}
		clear(s.held[:len(batch)]) // let the GC have them
		s.held = s.held[len(batch):]
		if len(s.held) == 0 {
			s.held = nil // the backing array of an outage goes too
		}
	}
}

// recovery ends the outage: the alarm that says so, with its length and
// what was lost.
func (s *EventSpool) recovery() Event {
	now := s.cfg.Clock.Now()
	outage := now.Sub(s.since).Round(time.Second)
	detail := fmt.Sprintf("the outbox refused events for %s; every held event was written", outage)
	if s.dropped > 0 {
		detail = fmt.Sprintf("the outbox refused events for %s; %d events were lost at the spool limit of %d", outage, s.dropped, s.cfg.Limit)
	}
	s.cfg.Logger.Info("the outbox works again", "outage", outage, "lost", s.dropped)
	s.since, s.dropped, s.lastErr = time.Time{}, 0, nil
	return Event{Time: now, Type: EventStoreRecovered, Detail: detail}
}
