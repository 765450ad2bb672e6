package mfrc522

import (
	"bytes"
	"context"
	"errors"
	"time"
)

// DefaultPollInterval is how often a Reader looks for cards: 25 polls a
// second. A tap then waits at most 40 ms for the next poll, plus ~5 ms card
// power-up and 3–7 ms of selection, which keeps tap-to-UID under 60 ms at the
// 99th percentile; an empty poll costs two SPI transfers and one timer wake,
// well under 1 % of a Pi core (see docs/hardware.md for the measurements).
const DefaultPollInterval = 40 * time.Millisecond

// ReaderConfig configures a Reader.
type ReaderConfig struct {
	PollInterval time.Duration // 0: DefaultPollInterval
	// Gone is how many consecutive polls must miss a card before it counts
	// as removed and a new tap is reported again; 0: 3 (120 ms at the
	// default rate), so one missed poll does not report a card twice.
	Gone int
	// MaxCards bounds how many cards one poll reads when several are in the
	// field; 0: 2.
	MaxCards int
	// Inspect, if set, runs once per presence on each newly presented
	// card, while it is still selected and before the reader halts it: the
	// place for ISO/IEC 14443-4 work such as reading a card's fingerprint
	// or its DESFire identity (hal/mfrc522/cardcheck). Its result is
	// delivered as Card.Detail; card trouble belongs in that result. An
	// error means the chip failed: the poll ends with it and the chip is
	// re-initialised.
	Inspect func(ctx context.Context, dev *Dev, card Card) (any, error)
}

// Reader polls a Dev and reports each card once per presence.
type Reader struct {
	dev     *Dev
	cfg     ReaderConfig
	present map[string]int // UID → consecutive polls without it
	ready   bool
	backoff time.Duration
}

// NewReader returns a reader polling dev.
func NewReader(dev *Dev, cfg ReaderConfig) *Reader {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Gone <= 0 {
		cfg.Gone = 3
	}
	if cfg.MaxCards <= 0 {
		cfg.MaxCards = 2
	}
	return &Reader{dev: dev, cfg: cfg, present: map[string]int{}}
}

// Back-off after chip errors, so a dead or unplugged reader costs nothing.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// Run polls until ctx ends; it returns nil then. emit receives each newly
// presented card, from Run's goroutine; onErr (may be nil) receives chip
// errors, after which Run re-inits the chip with back-off. Card errors
// (collisions, CRC, a card pulled mid-read) only skip the poll.
func (r *Reader) Run(ctx context.Context, emit func(Card), onErr func(error)) error {
	clock := r.dev.clock
	next := clock.Now()
	for {
		if ctx.Err() != nil {
			return nil
		}
		wait := r.cfg.PollInterval
		cards, err := r.Poll(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if onErr != nil {
				onErr(err)
			}
			r.backoff = min(max(2*r.backoff, minBackoff), maxBackoff)
			wait = r.backoff
			next = clock.Now()
		default:
			r.backoff = 0
			for _, c := range cards {
				emit(c)
			}
		}
		// Polls start on a fixed grid so the rate does not drift with the
		// time spent reading.
		next = next.Add(wait)
		d := next.Sub(clock.Now())
		if d <= 0 {
			next = clock.Now()
			continue
		}
		if err := clock.Sleep(ctx, d); err != nil {
			return nil
		}
	}
}

// Poll runs one polling cycle and returns the cards that arrived since the
// previous cycle. Cards still on the reader are not returned again. A chip
// error is returned; the next Poll re-inits the chip.
func (r *Reader) Poll(ctx context.Context) ([]Card, error) {
	if !r.ready {
		if err := r.dev.Init(ctx); err != nil {
			return nil, err
		}
		r.ready = true
	}
	seen, partial, err := r.scan(ctx)
	if err != nil {
		r.ready = false
		return nil, err
	}
	var fresh []Card
	for _, c := range seen {
		k := string(c.UID)
		if _, ok := r.present[k]; !ok {
			fresh = append(fresh, c)
		}
	}
	// A cycle cut short by a card error says nothing about absent cards.
	for k := range r.present {
		if partial {
			break
		}
		r.present[k]++
		if r.present[k] >= r.cfg.Gone {
			delete(r.present, k)
		}
	}
	for _, c := range seen {
		r.present[string(c.UID)] = 0
	}
	return fresh, nil
}

// scan reads every card in the field: WUPA wakes all of them (also cards
// halted on an earlier poll, which is how we see they are still there); each
// selected card is halted so the next REQA reaches the others. partial is
// true when a card error cut the cycle short.
func (r *Reader) scan(ctx context.Context) (cards []Card, partial bool, err error) {
	for i := 0; i < r.cfg.MaxCards; i++ {
		atqa, err := r.dev.Request(ctx, i == 0)
		if err == nil {
			var c Card
			c, err = r.dev.Select(ctx, atqa)
			if err == nil && !containsUID(cards, c.UID) {
				if _, seen := r.present[string(c.UID)]; !seen && r.cfg.Inspect != nil {
					c.Detail, err = r.cfg.Inspect(ctx, r.dev, c)
				}
				if err == nil {
					cards = append(cards, c)
				}
			}
			if err == nil {
				err = r.dev.HaltCard(ctx)
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrNoCard):
			return cards, false, nil
		case isCardError(err):
			r.dev.log.Debug("mfrc522 card error", "err", err)
			return cards, true, nil
		default:
			return nil, false, err
		}
	}
	return cards, false, nil
}

func containsUID(cards []Card, uid []byte) bool {
	for _, c := range cards {
		if bytes.Equal(c.UID, uid) {
			return true
		}
	}
	return false
}

func isCardError(err error) bool {
	return errors.Is(err, ErrCollision) || errors.Is(err, ErrCRC) ||
		errors.Is(err, ErrBCC) || errors.Is(err, ErrProtocol)
}
