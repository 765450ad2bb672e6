package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// The EventSpool is the one way events reach the outbox. It does two jobs:
//
// Group commit. Record only queues the event and returns: a door never waits
// for storage. Run writes whatever is waiting in one transaction (one fsync),
// so on a card whose fsync takes milliseconds a burst of taps, alarms or
// refused commands costs one sync per batch instead of one per event. An
// event counts as recorded once its batch committed, never earlier: Sync
// waits for that, and everything that reads the outbox (the MQTT sender,
// `portier events`) sees committed rows only.
//
// Outages. An event the outbox refuses (disk full, I/O error, a database
// locked for longer than its busy timeout) must not vanish: access decisions
// are audit records. Refused events stay queued, in order, and Run retries
// them with backoff until the outbox takes them again.

// ErrSpoolFull is returned by EventSpool.Record when the spool already holds
// its limit and the event cannot wait for room (the outbox fails, or the
// caller gave up): that event is lost (and counted).
var ErrSpoolFull = errors.New("event spool full")

// BatchEventSink is an EventSink that can also write several events in one
// transaction (all or none); the spool writes each batch with it — one
// storage sync per batch instead of per event.
type BatchEventSink interface {
	EventSink
	RecordAll(ctx context.Context, events []Event) error
}

// MaxBatch is how many events one transaction takes at most: a bound on the
// transaction's size, far above what waits at a gateway's pace.
const MaxBatch = 4096

// EventSpoolConfig configures an EventSpool.
type EventSpoolConfig struct {
	Store  EventSink // the outbox; a BatchEventSink is written in batches
	Clock  Clock
	Logger *slog.Logger
	// Limit is how many events wait in memory at most; default 10,000 (a
	// few MB). At the limit Record waits for room while the outbox works,
	// and loses the event while it fails.
	Limit int
	// RetryMin and RetryMax bound the retry backoff; default 1 s and 30 s.
	RetryMin, RetryMax time.Duration
}

// spooled is an event waiting for the outbox; n numbers the events Record
// took (alarms the spool adds itself have n == 0).
type spooled struct {
	e Event
	n uint64
}

// EventSpool is an EventSink that writes events to the outbox in batches and
// never loses one to a transient outbox failure while the process runs. Run
// does the writing.
type EventSpool struct {
	cfg  EventSpoolConfig
	wake chan struct{}
	wmu  sync.Mutex // one writer at a time (Run or Flush)

	mu        sync.Mutex
	queue     []spooled
	next      uint64        // n of the newest queued event
	done      uint64        // every event with n <= done is written
	committed chan struct{} // closed (and replaced) after each write
	since     time.Time     // first failure of the current outage
	lastErr   error
	dropped   int // lost at the limit
	retry     Backoff
	batches   int // transactions written, for figures
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
	return &EventSpool{cfg: cfg, wake: make(chan struct{}, 1), committed: make(chan struct{}), retry: Backoff{Min: cfg.RetryMin, Max: cfg.RetryMax}}
}

// Record queues e for the outbox and returns at once; Run writes it with
// whatever else is waiting. It counts as recorded once that batch committed
// (Sync waits for it). At the limit Record waits for room while the outbox
// works (it is only slower than the events come); it returns an error only
// when the event is lost: the outbox fails, or ctx ended while waiting.
func (s *EventSpool) Record(ctx context.Context, e Event) error {
	s.mu.Lock()
	for len(s.queue) >= s.cfg.Limit {
		if !s.since.IsZero() || ctx.Err() != nil {
			s.dropped++
			defer s.mu.Unlock()
			if s.lastErr == nil {
				return fmt.Errorf("%w: %d events wait for the outbox: %v", ErrSpoolFull, len(s.queue), ctx.Err())
			}
			return fmt.Errorf("%w: %d events held, the outbox fails: %v", ErrSpoolFull, len(s.queue), s.lastErr)
		}
		room := s.committed
		s.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
		}
		s.mu.Lock()
	}
	s.next++
	s.queue = append(s.queue, spooled{e: e, n: s.next})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}: // Run writes it, now or after its backoff
	default:
	}
	return nil
}

// Sync returns once every event recorded before the call is in the outbox,
// or with ctx's error.
func (s *EventSpool) Sync(ctx context.Context) error {
	s.mu.Lock()
	target := s.next
	for s.done < target {
		c := s.committed
		s.mu.Unlock()
		select {
		case <-c:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
	return nil
}

// failedLocked starts an outage (or extends one) after the store refused
// the batch at the head of the queue: the first failure puts the alarm
// ahead of the held events.
func (s *EventSpool) failedLocked(err error) {
	s.lastErr = err
	if !s.since.IsZero() {
		return
	}
	s.since = s.cfg.Clock.Now()
	s.retry.Reset()
	s.cfg.Logger.Error("the outbox refuses events: holding them in memory until it works again", "err", err, "limit", s.cfg.Limit)
	s.queue = append([]spooled{{e: Event{Time: s.since, Type: EventStoreFailed, Detail: err.Error()}}}, s.queue...)
}

// Held reports how many events wait in memory because the outbox refused
// them (zero while it works: events then wait only for the next batch) and
// how many were lost at the limit.
func (s *EventSpool) Held() (held, dropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.since.IsZero() {
		held = len(s.queue)
	}
	return held, s.dropped
}

// Batches reports how many transactions the spool has written.
func (s *EventSpool) Batches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches
}

// Run writes queued events whenever there are some, retrying with backoff
// while the outbox fails, until ctx ends. Call Flush after the event
// sources have stopped.
func (s *EventSpool) Run(ctx context.Context) error {
	for {
		s.mu.Lock()
		idle := len(s.queue) == 0
		s.mu.Unlock()
		if idle {
			select {
			case <-ctx.Done():
				return nil
			case <-s.wake:
				continue
			}
		}
		ok, wait := s.flush(ctx, true)
		if ctx.Err() != nil {
			// The flush gave up because we are stopping; what is queued
			// stays queued for whoever drains it on the way out.
			return nil
		}
		if ok {
			continue
		}
		// Still failing: wait for the backoff (or for the end).
		if Sleep(ctx, s.cfg.Clock, wait) != nil {
			return nil
		}
	}
}

// Flush tries once to write every queued event (for shutdown, after the
// event sources stopped); what the outbox still refuses is reported as lost.
func (s *EventSpool) Flush(ctx context.Context) error {
	if ok, _ := s.flush(ctx, false); ok {
		return nil
	}
	s.mu.Lock()
	held, dropped, lastErr := len(s.queue), s.dropped, s.lastErr
	s.mu.Unlock()
	s.cfg.Logger.Error("events lost at shutdown: the outbox still refuses them", "lost", held, "dropped_earlier", dropped)
	return fmt.Errorf("%d held events could not be written: %v", held, lastErr)
}

// flush writes queued events oldest first, a batch per transaction, until
// none is left (true), or the outbox refuses a batch (false, and how long to
// wait before the next attempt; the batch stays at the head). When ctx ends
// it stops between batches: with yield (Run) that is success, the rest is
// Flush's; without (Flush) it is failure. Ending an outage, it writes the
// recovery alarm last.
func (s *EventSpool) flush(ctx context.Context, yield bool) (bool, time.Duration) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	batch := make([]Event, 0, min(len(s.queue), MaxBatch))
	for {
		if len(s.queue) == 0 {
			if s.since.IsZero() {
				return true, 0
			}
			s.queue = append(s.queue, spooled{e: s.recovery()})
		}
		if err := ctx.Err(); err != nil {
			if !yield {
				s.lastErr = err
			}
			return yield, 0
		}
		// Only the writer takes events from the head (here, under wmu), so
		// the head stays put while the lock is released. A store that
		// cannot write all or none takes one event at a time.
		n := 1
		if _, ok := s.cfg.Store.(BatchEventSink); ok {
			n = MaxBatch
		}
		head := s.queue[:min(len(s.queue), n)]
		batch = batch[:0]
		for _, q := range head {
			batch = append(batch, q.e)
		}
		s.mu.Unlock()
		// A started transaction is finished even when ctx ends: cancelling
		// a commit could leave it unclear whether the batch landed.
		err := s.write(context.WithoutCancel(ctx), batch)
		s.mu.Lock()
		if err != nil {
			if s.since.IsZero() {
				s.failedLocked(err)
			} else {
				s.lastErr = err
			}
			return false, s.retry.Next()
		}
		for _, q := range head {
			s.done = max(s.done, q.n)
		}
		clear(s.queue[:len(head)]) // let the GC have them
		s.queue = s.queue[len(head):]
		if len(s.queue) == 0 {
			s.queue = nil // the backing array of a burst goes too
		}
		s.batches++
		close(s.committed)
		s.committed = make(chan struct{})
	}
}

// write stores one batch: in one transaction, or a single event.
func (s *EventSpool) write(ctx context.Context, batch []Event) error {
	if bs, ok := s.cfg.Store.(BatchEventSink); ok {
		return bs.RecordAll(ctx, batch)
	}
	return s.cfg.Store.Record(ctx, batch[0])
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
