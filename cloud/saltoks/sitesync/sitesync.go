// Package sitesync keeps the gateway's cache in step with Salto KS: it pulls
// what the configured doors need (site, locks, the access groups covering the
// doors with their members, locks and schedules, and the site users), builds
// an agent.Snapshot and applies it atomically. It runs once (SyncOnce) or as a
// periodic loop with jitter and a "sync now" trigger (Run, Trigger), and keeps
// the sync state in the cache's meta table.
package sitesync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
)

// Source is what the engine reads from Salto KS; *saltoks.Client implements it.
type Source interface {
	Site(ctx context.Context, site string) (saltoks.Site, error)
	Locks(ctx context.Context, site string) ([]saltoks.Lock, error)
	AccessGroups(ctx context.Context, site string) ([]saltoks.AccessGroup, error)
	GroupLocks(ctx context.Context, site, group string) ([]saltoks.Lock, error)
	GroupUsers(ctx context.Context, site, group string) ([]string, error)
	GroupSchedules(ctx context.Context, site, group string) ([]saltoks.TimeSchedule, error)
	Users(ctx context.Context, site, filter string, fn func([]saltoks.SiteUser) error) error
}

// MetaStore is the cache's key/value meta table; *sqlite.DB implements it.
type MetaStore interface {
	Meta(ctx context.Context, key string) (string, bool, error)
	SetMeta(ctx context.Context, kv map[string]string) error
}

// Applied is what applying a snapshot changed.
type Applied struct {
	Inserted, Updated, Deleted int64
	Generation                 int64
}

// RowsWritten is every row the apply wrote.
func (a Applied) RowsWritten() int64 { return a.Inserted + a.Updated + a.Deleted }

// ApplyFunc applies a snapshot to the cache atomically (all or nothing) and
// writes only what changed. The wiring adapts sqlite.DB.ApplySnapshot to it.
type ApplyFunc func(ctx context.Context, s *agent.Snapshot) (Applied, error)

// Progress is reported while a sync runs.
type Progress struct {
	Phase string // "site", "groups", "group details", "users", "apply"
	Done  int
	Total int // 0 when unknown
}

// Config configures an Engine.
type Config struct {
	Source Source
	SiteID string
	Doors  []agent.Door
	Meta   MetaStore
	Apply  ApplyFunc

	Interval time.Duration // between periodic syncs; default 15 min
	Jitter   time.Duration // random extra delay up to this; default Interval/10
	// RetryInterval is the first wait after a failed sync (doubling up to
	// Interval); default 1 min.
	RetryInterval time.Duration
	// PullAttempts bounds how often one sync re-reads everything when a list
	// changed while it was paged; default 3.
	PullAttempts int
	// Concurrency is the number of access groups whose details are read
	// side by side; default 32. The requests themselves also wait for the
	// Salto client's in-flight bound (saltoks.Config.MaxInFlight), which is
	// what protects Salto; this only has to be large enough to keep that
	// bound busy while a group waits between its lock list and its members.
	Concurrency int
	// Events, when set, receives a salto_config_mismatch alarm when a door's
	// lock or access group is missing from the site, and
	// salto_config_mismatch_cleared when it is no longer (the daemon wires
	// its event spool here; one-shot syncs leave it nil).
	Events agent.EventSink

	Progress func(Progress) // optional; calls are serialised
	// AfterSync, when set, runs after every sync attempt, once the pulled
	// site is garbage: a long-running process returns that memory to the
	// operating system there.
	AfterSync func()
	Logger    *slog.Logger
	Now       func() time.Time
	// Wait waits d, or until ctx is done or the trigger fires (tests replace it).
	Wait func(ctx context.Context, d time.Duration, trigger <-chan struct{}) error
	// Jitterf returns a random duration in [0, d] (tests make it fixed).
	Jitterf func(d time.Duration) time.Duration
}

// Engine syncs one site into the cache.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	trigger  chan struct{}
	running  sync.Mutex // one sync at a time
	progMu   sync.Mutex
	syncedAt atomic.Int64
}

// Meta keys of the sync state.
const (
	KeyLastAttempt  = "sync.last_attempt"
	KeyLastSuccess  = "sync.last_success"
	KeyLastError    = "sync.last_error"
	KeyLastDuration = "sync.last_duration_ms"
	KeyFailures     = "sync.consecutive_failures"
	KeyUsers        = "sync.users"
	KeyGroups       = "sync.access_groups"
	KeyLocks        = "sync.locks"
	KeyCredentials  = "sync.credentials"
	KeyRowsWritten  = "sync.rows_written"
	KeyWarnings     = "sync.warnings"
	// KeyConfigMismatch is the doors' locks and access groups the site
	// lacked at the last sync (a JSON list of messages), for status.
	KeyConfigMismatch = "sync.config_mismatch"
	// KeyMismatchAlarmed is the mismatches an alarm event was recorded for
	// (a JSON list of door/kind/id keys): alarms go out on change, once.
	KeyMismatchAlarmed = "sync.config_mismatch_alarmed"
	// The hash of the last applied snapshot and the cache generation it
	// produced: an identical pull onto an untouched cache skips the apply.
	KeySnapshotHash       = "sync.snapshot_hash"
	KeySnapshotGeneration = "sync.snapshot_generation"
	// keyCacheGeneration is the cache's own snapshot generation counter.
	keyCacheGeneration = "generation"
)

// New checks cfg and loads the last successful sync time from the cache.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	switch {
	case cfg.Source == nil || cfg.Meta == nil || cfg.Apply == nil:
		return nil, errors.New("sitesync: source, meta store and apply are required")
	case cfg.SiteID == "":
		return nil, errors.New("sitesync: the Salto site id is not configured (salto.site_id)")
	case len(cfg.Doors) == 0:
		return nil, errors.New("sitesync: no doors configured")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 15 * time.Minute
	}
	if cfg.Jitter < 0 {
		cfg.Jitter = 0
	} else if cfg.Jitter == 0 {
		cfg.Jitter = cfg.Interval / 10
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Minute
	}
	if cfg.PullAttempts <= 0 {
		cfg.PullAttempts = 3
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	// Door ids are compared with the site's, which are canonical.
	doors := make([]agent.Door, len(cfg.Doors))
	for i, d := range cfg.Doors {
		d.LockIDs, d.GroupIDs = canonicalIDs(d.LockIDs), canonicalIDs(d.GroupIDs)
		doors[i] = d
	}
	cfg.Doors = doors
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Wait == nil {
		cfg.Wait = wait
	}
	if cfg.Jitterf == nil {
		cfg.Jitterf = func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return rand.N(d + 1)
		}
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, trigger: make(chan struct{}, 1)}
	at, err := LastSuccess(ctx, cfg.Meta)
	if err != nil {
		return nil, err
	}
	if !at.IsZero() {
		e.syncedAt.Store(at.UnixNano())
	}
	return e, nil
}

func wait(ctx context.Context, d time.Duration, trigger <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-trigger:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Trigger asks the running loop to sync now ("sync now" command). It never
// blocks; triggers while a sync runs coalesce into one more sync.
func (e *Engine) Trigger() {
	select {
	case e.trigger <- struct{}{}:
	default:
	}
}

// SyncedAt is the time of the last successful sync (zero: never). It suits
// agent.Decider.SyncedAt: it reads memory, not the database.
func (e *Engine) SyncedAt() time.Time {
	n := e.syncedAt.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Run syncs at once, then every Interval (plus jitter), and whenever Trigger
// is called, until ctx ends. A failed sync is retried sooner (RetryInterval,
// doubling); the cache keeps the last good snapshot meanwhile. Run returns
// nil when ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	retry := agent.Backoff{Min: e.cfg.RetryInterval, Max: e.cfg.Interval}
	for {
		_, err := e.SyncOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		next := e.cfg.Interval + e.cfg.Jitterf(e.cfg.Jitter)
		if err != nil {
			next = retry.Next() + e.cfg.Jitterf(e.cfg.Jitter)
			e.log.Warn("salto sync failed; the cache keeps its last snapshot", "err", err, "retry_in", next)
		} else {
			retry.Reset()
		}
		if err := e.cfg.Wait(ctx, next, e.trigger); err != nil {
			return nil
		}
	}
}

// Result describes one successful sync.
type Result struct {
	Site        agent.Site
	Users       int
	Groups      int
	Locks       int
	Credentials int
	Applied     Applied
	Attempts    int // pulls needed (more than 1 when a list changed while paged)
	Duration    time.Duration
	// Unknown lists the doors' locks and access groups the site lacks; each
	// is also the first of Warnings.
	Unknown  []saltoks.UnknownID
	Warnings []string
}

// SyncOnce pulls the site and applies it. On any failure the cache keeps its
// previous snapshot and the error is recorded in the sync state.
func (e *Engine) SyncOnce(ctx context.Context) (Result, error) {
	e.running.Lock()
	defer e.running.Unlock()
	if e.cfg.AfterSync != nil {
		defer e.cfg.AfterSync()
	}
	start := e.cfg.Now()
	e.setMeta(ctx, map[string]string{KeyLastAttempt: start.UTC().Format(time.RFC3339)})
	res, err := e.syncOnce(ctx)
	res.Duration = e.cfg.Now().Sub(start)
	if err != nil {
		// Record the failure even when ctx was cancelled (shutdown, ^C).
		mctx := context.WithoutCancel(ctx)
		st, _ := ReadState(mctx, e.cfg.Meta)
		e.setMeta(mctx, map[string]string{
			KeyLastError:    clip(err.Error(), 500),
			KeyFailures:     strconv.Itoa(st.ConsecutiveFailures + 1),
			KeyLastDuration: strconv.FormatInt(res.Duration.Milliseconds(), 10),
		})
		return res, err
	}
	done := e.cfg.Now()
	e.syncedAt.Store(done.UnixNano())
	e.setMeta(ctx, map[string]string{
		KeyLastSuccess:  done.UTC().Format(time.RFC3339),
		KeyLastError:    "",
		KeyFailures:     "",
		KeyLastDuration: strconv.FormatInt(res.Duration.Milliseconds(), 10),
		KeyUsers:        strconv.Itoa(res.Users),
		KeyGroups:       strconv.Itoa(res.Groups),
		KeyLocks:        strconv.Itoa(res.Locks),
		KeyCredentials:  strconv.Itoa(res.Credentials),
		KeyRowsWritten:  strconv.FormatInt(res.Applied.RowsWritten(), 10),
		KeyWarnings:     strconv.Itoa(len(res.Warnings)),
	})
	e.recordMismatch(ctx, res.Unknown)
	e.log.Info("salto sync done", "users", res.Users, "access_groups", res.Groups, "locks", res.Locks,
		"rows_written", res.Applied.RowsWritten(), "took", res.Duration, "warnings", len(res.Warnings))
	return res, nil
}

func (e *Engine) setMeta(ctx context.Context, kv map[string]string) {
	if err := e.cfg.Meta.SetMeta(ctx, kv); err != nil {
		e.log.Error("cannot record the sync state", "err", err)
	}
}

func (e *Engine) syncOnce(ctx context.Context) (Result, error) {
	var res Result
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		snap, unknown, warnings, err := e.pull(ctx)
		var ie *saltoks.InconsistentError
		if errors.As(err, &ie) && attempt < e.cfg.PullAttempts {
			e.log.Info("a Salto list changed while it was read; reading everything again", "reason", ie.Reason, "attempt", attempt)
			if err := e.cfg.Wait(ctx, time.Duration(attempt)*time.Second, nil); err != nil {
				return res, err
			}
			continue
		}
		if err != nil {
			return res, err
		}
		e.progress("apply", 0, 0)
		sum := snapshotHash(snap)
		applied, skipped, err := e.unchanged(ctx, sum)
		if err != nil {
			return res, err
		}
		if !skipped {
			if applied, err = e.cfg.Apply(ctx, snap); err != nil {
				return res, fmt.Errorf("apply the snapshot: %w", err)
			}
			e.setMeta(ctx, map[string]string{KeySnapshotHash: sum, KeySnapshotGeneration: strconv.FormatInt(applied.Generation, 10)})
		}
		e.progress("apply", 1, 1)
		res.Site, res.Users, res.Groups, res.Locks = snap.Site, len(snap.Users), len(snap.Groups), len(snap.Locks)
		res.Credentials, res.Applied, res.Unknown, res.Warnings = len(snap.Credentials), applied, unknown, warnings
		return res, nil
	}
}

// unchanged reports whether the cache already holds exactly this snapshot:
// the same content hash was applied last, and nothing was applied since.
func (e *Engine) unchanged(ctx context.Context, sum string) (Applied, bool, error) {
	m := e.cfg.Meta
	last, _, err := m.Meta(ctx, KeySnapshotHash)
	if err != nil || last != sum {
		return Applied{}, false, err
	}
	want, _, err := m.Meta(ctx, KeySnapshotGeneration)
	if err != nil {
		return Applied{}, false, err
	}
	got, _, err := m.Meta(ctx, keyCacheGeneration)
	if err != nil || got != want || got == "" {
		return Applied{}, false, err
	}
	gen, _ := strconv.ParseInt(got, 10, 64)
	return Applied{Generation: gen}, true, nil
}

// snapshotHash is a digest of everything in the snapshot.
func snapshotHash(s *agent.Snapshot) string {
	h := sha256.New()
	w := func(parts ...string) {
		for _, p := range parts {
			io.WriteString(h, p)
			h.Write([]byte{0})
		}
		h.Write([]byte{1})
	}
	b := func(v bool) string { return strconv.FormatBool(v) }
	t := func(v time.Time) string { return strconv.FormatInt(v.UnixNano(), 10) }
	w("site", s.Site.ID, s.Site.UID, s.Site.Name, s.Site.TimeZone)
	for _, l := range s.Locks {
		w("lock", l.ID, l.Name)
	}
	for _, u := range s.Users {
		w("user", u.ID, u.PlatformID, u.FirstName, u.LastName, u.Alias, u.Email, u.TagNumber, b(u.Blocked), string(u.Subscription), t(u.ExpiresAt), b(u.UsePIN))
	}
	for _, g := range s.Groups {
		w("group", g.ID, g.Name)
		w(g.Members...)
		w(g.Locks...)
		for _, sc := range g.Schedules {
			w("schedule", sc.ID, fmt.Sprint(sc.Days, sc.Start, sc.End, sc.StartDate, sc.EndDate))
		}
	}
	for _, c := range s.Credentials {
		w("cred", c.Key, string(c.Kind), string(c.Origin), c.UserID, c.TagNumber, t(c.StartsAt), t(c.EndsAt), c.Label)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (e *Engine) progress(phase string, done, total int) {
	if e.cfg.Progress != nil {
		e.progMu.Lock()
		defer e.progMu.Unlock()
		e.cfg.Progress(Progress{Phase: phase, Done: done, Total: total})
	}
}

// maxLoggedWarnings bounds the warnings one sync writes to the log (all of
// them are in the result).
const maxLoggedWarnings = 100

// pull reads everything the doors need and maps it into a snapshot with the
// one Salto mapping (saltoks.Mapper). It returns the doors' unknown locks and
// groups and every warning: those, then the mapping's problems.
//
// At internet distance every request costs a round trip, so what does not
// depend on an earlier answer is read side by side: after the site (its time
// zone is needed to read the users), the locks, the group list and the user
// pages; after the locks and the group list, every group's details. The
// Salto client's in-flight bound limits the requests open at once.
func (e *Engine) pull(ctx context.Context) (*agent.Snapshot, []saltoks.UnknownID, []string, error) {
	site := e.cfg.SiteID
	src := e.cfg.Source
	e.progress("site", 0, 0)
	s, err := src.Site(ctx, site)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read the site: %w", err)
	}
	if s.ID == "" {
		s.ID = site
	}
	m, err := saltoks.NewMapper(s)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("site %s: %w", site, err)
	}
	snap := &agent.Snapshot{Site: m.Site()}
	var unknown []saltoks.UnknownID
	eg, gctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		var locks []saltoks.Lock
		var groups []saltoks.AccessGroup
		lists, lctx := errgroup.WithContext(gctx)
		lists.Go(func() error {
			var err error
			if locks, err = src.Locks(lctx, site); err != nil {
				return fmt.Errorf("read the locks: %w", err)
			}
			return nil
		})
		lists.Go(func() error {
			e.progress("groups", 0, 0)
			var err error
			if groups, err = src.AccessGroups(lctx, site); err != nil {
				return fmt.Errorf("read the access groups: %w", err)
			}
			return nil
		})
		if err := lists.Wait(); err != nil {
			return err
		}
		for _, l := range locks {
			snap.Locks = append(snap.Locks, m.Lock(l))
		}
		unknown = saltoks.CheckDoors(e.cfg.Doors, locks, groups)
		var err error
		snap.Groups, err = e.groups(gctx, m, groups)
		return err
	})
	eg.Go(func() error {
		if err := src.Users(gctx, site, "", func(page []saltoks.SiteUser) error {
			for i := range page {
				if u, ok := m.User(-1, page[i]); ok {
					snap.Users = append(snap.Users, u)
				}
			}
			e.progress("users", len(snap.Users), 0)
			return nil
		}); err != nil {
			return fmt.Errorf("read the users: %w", err)
		}
		return nil
	})
	if err := eg.Wait(); err != nil {
		return nil, nil, nil, err
	}
	m.Finish(snap)
	if err := snap.Validate(); err != nil {
		return nil, nil, nil, fmt.Errorf("the pulled site is inconsistent: %w", err)
	}
	var warnings []string
	for _, u := range unknown {
		warnings = append(warnings, u.String())
	}
	for _, p := range m.Problems() {
		warnings = append(warnings, p.String())
	}
	for i, w := range warnings {
		if i == maxLoggedWarnings {
			e.log.Warn("salto data: more warnings left out of the log", "count", len(warnings)-i)
			break
		}
		e.log.Warn("salto data: " + w)
	}
	return snap, unknown, warnings, nil
}

// groups reads the details of the access groups covering a configured door
// and maps them. Which groups cover a lock-mapped door is only known from
// each group's lock list, so those are read for every group when a door
// names locks; a group a door names is read whole at once.
func (e *Engine) groups(ctx context.Context, m *saltoks.Mapper, groups []saltoks.AccessGroup) ([]agent.AccessGroup, error) {
	site := e.cfg.SiteID
	src := e.cfg.Source
	wanted := map[string]bool{}
	doorLocks := map[string]bool{}
	for _, d := range e.cfg.Doors {
		for _, g := range d.GroupIDs {
			wanted[g] = true
		}
		for _, l := range d.LockIDs {
			doorLocks[l] = true
		}
	}
	out := make([]*agent.AccessGroup, len(groups))
	var done atomic.Int64
	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(e.cfg.Concurrency)
	for i, g := range groups {
		id := saltoks.CanonicalID(g.ID)
		if len(doorLocks) == 0 && !wanted[id] {
			continue
		}
		eg.Go(func() error {
			defer func() { e.progress("group details", int(done.Add(1)), len(groups)) }()
			var (
				gl      []saltoks.Lock
				members []string
				ts      []saltoks.TimeSchedule
			)
			readLocks := func() (err error) {
				if gl, err = src.GroupLocks(gctx, site, g.ID); err != nil {
					return fmt.Errorf("read the locks of access group %s: %w", g.ID, err)
				}
				return nil
			}
			readRest := func(d *errgroup.Group) {
				d.Go(func() (err error) {
					if members, err = src.GroupUsers(gctx, site, g.ID); err != nil {
						return fmt.Errorf("read the members of access group %s: %w", g.ID, err)
					}
					return nil
				})
				d.Go(func() (err error) {
					if ts, err = src.GroupSchedules(gctx, site, g.ID); err != nil {
						return fmt.Errorf("read the time schedules of access group %s: %w", g.ID, err)
					}
					return nil
				})
			}
			var d errgroup.Group
			if wanted[id] {
				d.Go(readLocks)
				readRest(&d)
			} else {
				if err := readLocks(); err != nil {
					return err
				}
				if !slices.ContainsFunc(gl, func(l saltoks.Lock) bool { return doorLocks[saltoks.CanonicalID(l.ID)] }) {
					return nil
				}
				readRest(&d)
			}
			if err := d.Wait(); err != nil {
				return err
			}
			lockIDs := make([]string, len(gl))
			for j, l := range gl {
				lockIDs[j] = l.ID
			}
			ag := m.Group(-1, g, members, lockIDs, ts)
			out[i] = &ag
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	var res []agent.AccessGroup
	for _, g := range out {
		if g != nil {
			res = append(res, *g)
		}
	}
	return res, nil
}

func canonicalIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = saltoks.CanonicalID(id)
	}
	return out
}

// mismatchKey names one unknown id across syncs.
func mismatchKey(u saltoks.UnknownID) string { return u.Door + "|" + u.Kind + "|" + u.ID }

// recordMismatch records the doors' unknown locks and groups for status and,
// with an event sink, records an alarm for each one that is new and a
// clearing event for each one that is gone since the last alarm. The
// alarmed set lives in the cache, so a restart neither repeats an alarm nor
// misses a clearing; a one-shot sync (no sink) leaves it alone, so the
// daemon still raises the alarm for a mismatch `portier sync` saw first.
func (e *Engine) recordMismatch(ctx context.Context, unknown []saltoks.UnknownID) {
	msgs := make([]string, len(unknown))
	for i, u := range unknown {
		msgs[i] = u.String()
	}
	b, _ := json.Marshal(msgs) // strings: cannot fail
	e.setMeta(ctx, map[string]string{KeyConfigMismatch: string(b)})
	if e.cfg.Events == nil {
		return
	}
	raw, _, err := e.cfg.Meta.Meta(ctx, KeyMismatchAlarmed)
	if err != nil {
		e.log.Error("cannot read the alarmed Salto config mismatches", "err", err)
		return
	}
	var prev []string
	if raw != "" && json.Unmarshal([]byte(raw), &prev) != nil {
		prev = nil
	}
	now := e.cfg.Now()
	cur := make([]string, 0, len(unknown))
	var errs []error
	for _, u := range unknown {
		k := mismatchKey(u)
		cur = append(cur, k)
		if !slices.Contains(prev, k) {
			errs = append(errs, e.cfg.Events.Record(ctx, agent.Event{Time: now, Type: agent.EventSaltoConfigMismatch, Door: u.Door, Detail: u.String()}))
		}
	}
	for _, k := range prev {
		if slices.Contains(cur, k) {
			continue
		}
		door, rest, _ := strings.Cut(k, "|")
		kind, id, _ := strings.Cut(rest, "|")
		errs = append(errs, e.cfg.Events.Record(ctx, agent.Event{Time: now, Type: agent.EventSaltoConfigMismatchCleared, Door: door,
			Detail: fmt.Sprintf("door %q: %s %s is no longer missing (the site has it, or the door no longer names it)", door, kind, id)}))
	}
	if err := errors.Join(errs...); err != nil {
		// Not marked as alarmed: the next sync tries again.
		e.log.Error("cannot record the Salto config mismatch alarm", "err", err)
		return
	}
	b, _ = json.Marshal(cur)
	e.setMeta(ctx, map[string]string{KeyMismatchAlarmed: string(b)})
}

// State is the sync state as recorded in the cache.
type State struct {
	LastAttempt         time.Time
	LastSuccess         time.Time
	LastError           string
	LastDuration        time.Duration
	ConsecutiveFailures int
	Users, Groups       int
	Locks, Credentials  int
	RowsWritten         int64
	Warnings            int
	// ConfigMismatch: the doors' locks and access groups the site lacked at
	// the last successful sync, one message each.
	ConfigMismatch []string
}

// ReadState reads the sync state from the cache's meta table.
func ReadState(ctx context.Context, m MetaStore) (State, error) {
	var st State
	get := func(k string) (string, error) {
		v, _, err := m.Meta(ctx, k)
		return v, err
	}
	var errs []error
	str := func(k string) string {
		v, err := get(k)
		errs = append(errs, err)
		return v
	}
	num := func(k string) int64 {
		n, _ := strconv.ParseInt(str(k), 10, 64)
		return n
	}
	at := func(k string) time.Time {
		t, _ := time.Parse(time.RFC3339, str(k))
		return t
	}
	st.LastAttempt, st.LastSuccess, st.LastError = at(KeyLastAttempt), at(KeyLastSuccess), str(KeyLastError)
	st.LastDuration = time.Duration(num(KeyLastDuration)) * time.Millisecond
	st.ConsecutiveFailures = int(num(KeyFailures))
	st.Users, st.Groups, st.Locks, st.Credentials = int(num(KeyUsers)), int(num(KeyGroups)), int(num(KeyLocks)), int(num(KeyCredentials))
	st.RowsWritten, st.Warnings = num(KeyRowsWritten), int(num(KeyWarnings))
	if v := str(KeyConfigMismatch); v != "" {
		if err := json.Unmarshal([]byte(v), &st.ConfigMismatch); err != nil {
			errs = append(errs, fmt.Errorf("sitesync: %s: %w", KeyConfigMismatch, err))
		}
	}
	return st, errors.Join(errs...)
}

// LastSuccess reads the time of the last successful sync from the cache
// (zero when there was none). The runtime wires Engine.SyncedAt, or this
// value, into agent.Decider.SyncedAt for the stale_after policy.
func LastSuccess(ctx context.Context, m MetaStore) (time.Time, error) {
	v, ok, err := m.Meta(ctx, KeyLastSuccess)
	if err != nil || !ok {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("sitesync: %s %q: %w", KeyLastSuccess, v, err)
	}
	return t, nil
}

// Describe renders the state for operators, with the cache age at now.
func (st State) Describe(now time.Time) string {
	var b strings.Builder
	if st.LastSuccess.IsZero() {
		b.WriteString("last successful sync: never\n")
	} else {
		fmt.Fprintf(&b, "last successful sync: %s (%s ago)\n", st.LastSuccess.Local().Format(time.RFC3339), now.Sub(st.LastSuccess).Round(time.Second))
		fmt.Fprintf(&b, "synced: %d users, %d access groups, %d locks, %d tag credentials (%d rows written)\n",
			st.Users, st.Groups, st.Locks, st.Credentials, st.RowsWritten)
	}
	if !st.LastAttempt.IsZero() {
		fmt.Fprintf(&b, "last attempt: %s, took %s\n", st.LastAttempt.Local().Format(time.RFC3339), st.LastDuration)
	}
	if st.LastError != "" {
		fmt.Fprintf(&b, "last error (%d failed in a row): %s\n", st.ConsecutiveFailures, st.LastError)
	}
	for _, m := range st.ConfigMismatch {
		fmt.Fprintf(&b, "warning: %s\n", m)
	}
	if st.Warnings > 0 {
		fmt.Fprintf(&b, "data warnings in the last sync: %d (see the log)\n", st.Warnings)
	}
	return b.String()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
