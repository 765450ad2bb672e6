package agent

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// A Raspberry Pi has no real-time clock: after a power cut it boots at the
// last time systemd saved, or at 1970, until NTP answers. The ClockGuard
// decides whether the clock can be trusted for time-bound access.

// ClockPolicy says what decisions do while the clock is untrusted.
type ClockPolicy string

// Clock policies.
const (
	// ClockTrust keeps deciding by the system clock and only reports it.
	ClockTrust ClockPolicy = "trust"
	// ClockDenyScheduled refuses access that depends on the date or time
	// (ReasonClockUnsynced) while the clock is untrusted; always-access keeps
	// working.
	ClockDenyScheduled ClockPolicy = "deny_scheduled"
)

// LastGoodTimeStore persists the last time the clock was known to be right.
type LastGoodTimeStore interface {
	LastGoodTime(ctx context.Context) (time.Time, error)
	SetLastGoodTime(ctx context.Context, t time.Time) error
}

// ClockGuardConfig configures a ClockGuard.
type ClockGuardConfig struct {
	Now func() time.Time
	// Synchronised reports whether the kernel says the clock is
	// synchronised (NTP). Nil: always.
	Synchronised func() (bool, error)
	Store        LastGoodTimeStore
	Events       EventSink
	Logger       *slog.Logger
	// Tolerance is how far behind the last good time the clock may be before
	// it counts as gone backwards; default 2 minutes.
	Tolerance time.Duration
	// SaveEvery bounds how often the last good time is written (SD-card
	// wear); default 10 minutes.
	SaveEvery time.Duration
}

// ClockGuard tracks whether the clock is trusted: synchronised, and not
// behind the last good time it persisted.
type ClockGuard struct {
	cfg       ClockGuardConfig
	untrusted atomic.Bool
	reason    atomic.Pointer[string]
	lastGood  time.Time
	lastSave  time.Time
}

// NewClockGuard returns a guard; call Check before the first decision.
func NewClockGuard(cfg ClockGuardConfig) *ClockGuard {
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = 2 * time.Minute
	}
	if cfg.SaveEvery <= 0 {
		cfg.SaveEvery = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &ClockGuard{cfg: cfg}
	empty := ""
	g.reason.Store(&empty)
	return g
}

// Untrusted reports whether the clock is currently not trusted.
func (g *ClockGuard) Untrusted() bool { return g.untrusted.Load() }

// Reason says why the clock is untrusted ("" when trusted).
func (g *ClockGuard) Reason() string { return *g.reason.Load() }

// Check re-evaluates the clock, records a clock_unsynced or clock_synced
// event on a change, and saves the last good time when due. Call it at start
// and periodically (Run does).
func (g *ClockGuard) Check(ctx context.Context) error {
	now := g.cfg.Now()
	if g.lastGood.IsZero() && g.cfg.Store != nil {
		t, err := g.cfg.Store.LastGoodTime(ctx)
		if err != nil {
			return err
		}
		g.lastGood = t
	}
	reason := ""
	if g.cfg.Synchronised != nil {
		ok, err := g.cfg.Synchronised()
		switch {
		case err != nil:
			reason = "the clock's synchronisation state cannot be read: " + err.Error()
		case !ok:
			reason = "the system clock is not synchronised (no NTP yet)"
		}
	}
	if reason == "" && !g.lastGood.IsZero() && now.Before(g.lastGood.Add(-g.cfg.Tolerance)) {
		reason = "the clock (" + now.UTC().Format(time.RFC3339) + ") is behind the last known good time " + g.lastGood.UTC().Format(time.RFC3339)
	}
	was := g.untrusted.Load()
	g.untrusted.Store(reason != "")
	g.reason.Store(&reason)
	switch {
	case reason != "" && !was:
		g.cfg.Logger.Warn("clock untrusted", "reason", reason)
		g.record(ctx, Event{Time: now, Type: EventClockUnsynced, Detail: reason})
	case reason == "" && was:
		g.cfg.Logger.Info("clock trusted again")
		g.record(ctx, Event{Time: now, Type: EventClockSynced, Detail: "the clock is synchronised again"})
	}
	if reason == "" && now.After(g.lastGood) && (g.lastSave.IsZero() || now.Sub(g.lastSave) >= g.cfg.SaveEvery) {
		return g.Save(ctx)
	}
	return nil
}

// Save persists the current time as the last good time if the clock is
// trusted (also called at shutdown).
func (g *ClockGuard) Save(ctx context.Context) error {
	if g.untrusted.Load() || g.cfg.Store == nil {
		return nil
	}
	now := g.cfg.Now()
	if err := g.cfg.Store.SetLastGoodTime(ctx, now); err != nil {
		return err
	}
	g.lastGood, g.lastSave = now, now
	return nil
}

func (g *ClockGuard) record(ctx context.Context, e Event) {
	if g.cfg.Events == nil {
		return
	}
	if err := g.cfg.Events.Record(ctx, e); err != nil {
		g.cfg.Logger.Error("record clock event", "err", err)
	}
}

// Run checks the clock every interval until ctx ends, then saves the last
// good time once more.
func (g *ClockGuard) Run(ctx context.Context, every time.Duration, clock Clock) error {
	for Sleep(ctx, clock, every) == nil {
		if err := g.Check(ctx); err != nil {
			g.cfg.Logger.Error("clock check", "err", err)
		}
	}
	return g.Save(context.WithoutCancel(ctx))
}
