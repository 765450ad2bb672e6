package sitesync_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
	"github.com/portier-io/portier/cloud/saltoks/sitesync"
	"github.com/portier-io/portier/sqlite"
	"github.com/portier-io/portier/sqlite/sqlitetest"
)

var shape = saltokstest.SiteShape{Users: 60, Groups: 6, Locks: 4, SuspendedEvery: 13, BlockedEvery: 17}

// Doors: "front" opens for groups holding lock 0 (groups 0 and 4), "lab" for
// group 1.
var doors = []agent.Door{
	{ID: "front", Mode: agent.ModeCardOrPIN, LockIDs: []string{saltokstest.LockID(0)}},
	{ID: "lab", Mode: agent.ModeCard, GroupIDs: []string{saltokstest.GroupID(1)}},
}

type env struct {
	fake   *saltokstest.Fake
	client *saltoks.Client
	db     *sqlite.DB
	path   string
	eng    *sitesync.Engine
	waits  []time.Duration
}

func applyTo(db *sqlite.DB) sitesync.ApplyFunc {
	return func(ctx context.Context, s *agent.Snapshot) (sitesync.Applied, error) {
		st, err := db.ApplySnapshot(ctx, s, sqlite.ApplyOptions{})
		return sitesync.Applied{Inserted: st.Inserted, Updated: st.Updated, Deleted: st.Deleted, Generation: st.Generation}, err
	}
}

func newEnv(t *testing.T, mod func(*sitesync.Config)) *env {
	t.Helper()
	ctx := context.Background()
	fake, err := saltokstest.New(saltokstest.Generate(shape), saltokstest.Options{})
	require.NoError(t, err)
	fake.Start()
	t.Cleanup(fake.Close)
	o := fake.Options()
	client, err := saltoks.New(saltoks.Config{IdentityURL: fake.URL(), APIURL: fake.URL(), ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Username: o.Username, Password: o.Password, HTTPClient: fake.Client(), Now: fake.Now, PageSize: 9,
		// Long enough for a loaded machine; the Slow faults wait it out.
		RequestTimeout: 2 * time.Second, MaxAttempts: 3,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "cache.db")
	db, err := sqlite.Open(ctx, path, sqlite.Options{Now: fake.Now})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	e := &env{fake: fake, client: client, db: db, path: path}
	cfg := sitesync.Config{Source: client, SiteID: saltokstest.GeneratedSiteID, Doors: doors, Meta: db, Apply: applyTo(db),
		Now: fake.Now, Interval: time.Hour, Jitter: 10 * time.Minute, RetryInterval: time.Minute,
		Jitterf: func(d time.Duration) time.Duration { return d / 2 },
		Wait: func(ctx context.Context, d time.Duration, _ <-chan struct{}) error {
			e.waits = append(e.waits, d)
			return ctx.Err()
		}}
	if mod != nil {
		mod(&cfg)
	}
	e.eng, err = sitesync.New(ctx, cfg)
	require.NoError(t, err)
	return e
}

// dump hashes the cache's snapshot content (not the sync bookkeeping, the
// apply time or the generation): two equal dumps mean the same cache.
func dump(t *testing.T, path string) string {
	t.Helper()
	h, err := sqlitetest.Dump(path, "generation")
	require.NoError(t, err)
	return h
}

func decide(t *testing.T, db *sqlite.DB, door agent.Door, at time.Time, tag string) agent.Reason {
	t.Helper()
	dc := &agent.Decider{Cache: db}
	d, err := dc.Decide(context.Background(), door, at, agent.CardTagNumber(tag))
	require.NoError(t, err)
	return d.Reason
}

func TestSyncFillsTheCacheAndDecisionsFollow(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	res, err := e.eng.SyncOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, 60, res.Users)
	assert.Equal(t, 3, res.Groups, "groups 0 and 4 hold lock 0, group 1 is mapped")
	assert.Equal(t, 4, res.Locks)
	assert.Equal(t, 60, res.Credentials)
	assert.Equal(t, 1, res.Attempts)
	assert.Empty(t, res.Warnings)

	monday10 := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	sunday10 := time.Date(2026, 6, 7, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		door agent.Door
		at   time.Time
		user int
		want agent.Reason
	}{
		{"group 0 via lock, always", doors[0], sunday10, 0, agent.ReasonGranted},
		{"group 4 via lock", doors[0], monday10, 4, agent.ReasonGranted},
		{"group 1 mapped, weekday hours", doors[1], monday10, 1, agent.ReasonGranted},
		{"group 1 on a Sunday", doors[1], sunday10, 7, agent.ReasonOutsideSchedule},
		{"group 2 covers neither door", doors[0], monday10, 2, agent.ReasonNoAccessToDoor},
		{"suspended user", doors[1], monday10, 25, agent.ReasonUserSuspended}, // 25 % 13 == 12, group 1
		{"blocked user", doors[0], sunday10, 16, agent.ReasonUserBlocked},     // 16 % 17 == 16, group 4
		{"unknown tag", doors[0], sunday10, 999, agent.ReasonUnknownCredential},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, decide(t, e.db, tc.door, tc.at, saltokstest.TagNumber(tc.user)))
		})
	}

	st, err := sitesync.ReadState(ctx, e.db)
	require.NoError(t, err)
	assert.Equal(t, e.fake.Now(), st.LastSuccess)
	assert.Equal(t, 60, st.Users)
	assert.Empty(t, st.LastError)
	assert.True(t, e.fake.Now().Equal(e.eng.SyncedAt()))
	assert.Contains(t, st.Describe(e.fake.Now()), "60 users, 3 access groups")

	before := dump(t, e.path)
	res, err = e.eng.SyncOnce(ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Applied.RowsWritten(), "an unchanged site writes nothing")
	assert.Equal(t, before, dump(t, e.path))

	e.fake.UpdateUser(saltokstest.UserID(0), func(u *saltoks.SiteUser) { u.Blocked = true })
	e.fake.RemoveUser(saltokstest.UserID(4))
	res, err = e.eng.SyncOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, agent.ReasonUserBlocked, decide(t, e.db, doors[0], sunday10, saltokstest.TagNumber(0)))
	assert.Equal(t, agent.ReasonUnknownCredential, decide(t, e.db, doors[0], monday10, saltokstest.TagNumber(4)))
	assert.Positive(t, res.Applied.RowsWritten())
}

func TestFailedSyncKeepsTheOldSnapshot(t *testing.T) {
	faults := []struct {
		name  string
		fault saltokstest.Fault
	}{
		{"server errors", saltokstest.Fault{Kind: saltokstest.ServerError, Path: "/users", Times: -1}},
		{"rate limited for ever", saltokstest.Fault{Kind: saltokstest.RateLimit, Path: "/time_schedules", Times: -1, RetryAfter: time.Second}},
		{"cut connections", saltokstest.Fault{Kind: saltokstest.CutBody, Path: "/users", Skip: 3, Times: -1}},
		{"malformed JSON", saltokstest.Fault{Kind: saltokstest.Malformed, Path: "/access_groups", Times: -1}},
		{"hanging answers", saltokstest.Fault{Kind: saltokstest.Slow, Path: "/locks", Skip: 1, Times: -1}},
		{"list changing on every read", saltokstest.Fault{Kind: saltokstest.After, Path: "/users", Skip: 1, Times: -1}},
		{"identity server down", saltokstest.Fault{Kind: saltokstest.ServerError, Path: "/connect/token", Times: -1}},
	}
	for _, tc := range faults {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, nil)
			_, err := e.eng.SyncOnce(ctx)
			require.NoError(t, err)
			synced := e.eng.SyncedAt()
			before := dump(t, e.path)
			// Change the site, so a torn apply would show.
			e.fake.UpdateUser(saltokstest.UserID(0), func(u *saltoks.SiteUser) { u.Blocked = true })
			var n atomic.Int64
			f := tc.fault
			if f.Kind == saltokstest.After {
				f.Do = func() {
					i := n.Add(1)
					u := saltokstest.Generate(saltokstest.SiteShape{Users: 1}).Users[0]
					u.ID, u.User.ID = fmt.Sprintf("00000000-0000-4000-8000-%012d", i), fmt.Sprintf("00000000-0000-4000-9000-%012d", i)
					u.User.TagNumber = nil
					e.fake.AddUser(u)
				}
			}
			e.fake.ExpireTokens()
			e.fake.Inject(f)
			e.fake.Advance(time.Minute)
			_, err = e.eng.SyncOnce(ctx)
			require.Error(t, err)
			assert.Equal(t, before, dump(t, e.path))
			st, err := sitesync.ReadState(ctx, e.db)
			require.NoError(t, err)
			assert.NotEmpty(t, st.LastError)
			assert.Equal(t, 1, st.ConsecutiveFailures)
			assert.True(t, synced.Equal(st.LastSuccess))
			assert.True(t, e.fake.Now().Equal(st.LastAttempt))
			assert.Equal(t, synced, e.eng.SyncedAt())

			e.fake.ClearFaults()
			_, err = e.eng.SyncOnce(ctx)
			require.NoError(t, err, "the next sync recovers")
			st, _ = sitesync.ReadState(ctx, e.db)
			assert.Empty(t, st.LastError)
			assert.Zero(t, st.ConsecutiveFailures)
		})
	}
}

func TestIdenticalPullSkipsTheApplyOnlyOnAnUntouchedCache(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	_, err := e.eng.SyncOnce(ctx)
	require.NoError(t, err)
	want := dump(t, e.path)

	// Something else (an import) replaces the snapshot in between.
	other := &agent.Snapshot{Site: agent.Site{ID: saltokstest.GeneratedSiteID, TimeZone: "UTC"}}
	_, err = e.db.ApplySnapshot(ctx, other, sqlite.ApplyOptions{})
	require.NoError(t, err)
	require.NotEqual(t, want, dump(t, e.path))

	res, err := e.eng.SyncOnce(ctx)
	require.NoError(t, err)
	assert.Positive(t, res.Applied.RowsWritten(), "the same pull is applied again onto a changed cache")
	assert.Equal(t, want, dump(t, e.path))

	res, err = e.eng.SyncOnce(ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Applied.RowsWritten())
	assert.Equal(t, want, dump(t, e.path))
}

func TestSyncSurvivesTransientFaults(t *testing.T) {
	faults := []saltokstest.Fault{
		{Kind: saltokstest.ServerError, Path: "/users", Skip: 2, Times: 2},
		{Kind: saltokstest.RateLimit, Path: "/access_groups/", Skip: 5, RetryAfter: 3 * time.Second},
		{Kind: saltokstest.CutBody, Path: "/users", Skip: 4},
		{Kind: saltokstest.Malformed, Path: "/time_schedules"},
		{Kind: saltokstest.Slow, Path: "/locks"},
		{Kind: saltokstest.ExpireToken, Path: "/users", Skip: 3},
	}
	for _, f := range faults {
		t.Run(fmt.Sprint(f.Kind), func(t *testing.T) {
			e := newEnv(t, nil)
			e.fake.Inject(f)
			res, err := e.eng.SyncOnce(context.Background())
			require.NoError(t, err)
			assert.Equal(t, 60, res.Users)
		})
	}
}

func TestListChangingOnceIsReadAgain(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.Inject(saltokstest.Fault{Kind: saltokstest.After, Path: "/sites/" + saltokstest.GeneratedSiteID + "/users", Do: func() { e.fake.RemoveUser(saltokstest.UserID(1)) }})
	res, err := e.eng.SyncOnce(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, res.Attempts)
	assert.Equal(t, 59, res.Users)
}

func TestDataProblemsAreWarnings(t *testing.T) {
	e := newEnv(t, nil)
	dup := saltokstest.TagNumber(0)
	e.fake.UpdateUser(saltokstest.UserID(8), func(u *saltoks.SiteUser) { u.User.TagNumber = &dup })
	e.fake.UpdateUser(saltokstest.UserID(12), func(u *saltoks.SiteUser) { u.SubscriptionState = "something_new" })
	res, err := e.eng.SyncOnce(context.Background())
	require.NoError(t, err)
	assert.Len(t, res.Warnings, 2, "%v", res.Warnings)
	sunday := time.Date(2026, 6, 7, 10, 0, 0, 0, time.UTC)
	assert.Equal(t, agent.ReasonUnknownCredential, decide(t, e.db, doors[0], sunday, dup), "a shared tag opens nothing")
	assert.Equal(t, agent.ReasonUserSuspended, decide(t, e.db, doors[0], sunday, saltokstest.TagNumber(12)), "unknown state: no seat")
}

func TestMissingMappedGroupIsAWarning(t *testing.T) {
	e := newEnv(t, func(c *sitesync.Config) {
		c.Doors = []agent.Door{{ID: "x", Mode: agent.ModeCard, GroupIDs: []string{"not-there", saltokstest.GroupID(3)}}}
	})
	res, err := e.eng.SyncOnce(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, res.Groups)
	require.Len(t, res.Warnings, 1)
	assert.Contains(t, res.Warnings[0], "not-there")
	assert.Zero(t, e.fake.Hits("GET /v1.2/sites/"+saltokstest.GeneratedSiteID+"/access_groups/"+saltokstest.GroupID(2)),
		"a site without lock-mapped doors reads only the mapped groups")
}

func TestRunSchedulesAndRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var e *env
	calls := 0
	e = newEnv(t, func(c *sitesync.Config) {
		c.Wait = func(ctx context.Context, d time.Duration, trigger <-chan struct{}) error {
			e.waits = append(e.waits, d)
			calls++
			switch calls {
			case 1:
				e.fake.Inject(saltokstest.Fault{Kind: saltokstest.ServerError, Path: "/users", Times: -1})
			case 3:
				e.fake.ClearFaults()
			case 4:
				cancel()
			}
			return ctx.Err()
		}
	})
	require.NoError(t, e.eng.Run(ctx))
	assert.Equal(t, []time.Duration{
		time.Hour + 5*time.Minute,   // after a success: interval + jitter
		time.Minute + 5*time.Minute, // first failure: retry interval
		2*time.Minute + 5*time.Minute,
		time.Hour + 5*time.Minute, // recovered
	}, e.waits)
}

func TestTrigger(t *testing.T) {
	waiting := make(chan struct{})
	e := newEnv(t, func(c *sitesync.Config) {
		c.Interval = 24 * time.Hour
		// Only the trigger (or the end) ends a wait: nothing runs on a timer.
		c.Wait = func(ctx context.Context, d time.Duration, trigger <-chan struct{}) error {
			waiting <- struct{}{}
			select {
			case <-trigger:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.eng.Run(ctx) }()
	users := "GET /v1.2/sites/" + saltokstest.GeneratedSiteID + "/users"
	<-waiting // the first sync ran at once
	first := e.fake.Hits(users)
	require.Positive(t, first)
	e.eng.Trigger()
	e.eng.Trigger() // coalesces
	<-waiting
	assert.Equal(t, 2*first, e.fake.Hits(users), "sync now: exactly one more sync")
	cancel()
	require.NoError(t, <-done)
}

func TestStalePolicy(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	_, err := e.eng.SyncOnce(ctx)
	require.NoError(t, err)
	at, err := sitesync.LastSuccess(ctx, e.db)
	require.NoError(t, err)
	assert.Equal(t, e.fake.Now(), at)
	tag := agent.CardTagNumber(saltokstest.TagNumber(0))
	dc := &agent.Decider{Cache: e.db, StaleAfter: 24 * time.Hour, SyncedAt: e.eng.SyncedAt}
	d, err := dc.Decide(ctx, doors[0], e.fake.Now().Add(23*time.Hour), tag)
	require.NoError(t, err)
	assert.Equal(t, agent.ReasonGranted, d.Reason)
	d, err = dc.Decide(ctx, doors[0], e.fake.Now().Add(25*time.Hour), tag)
	require.NoError(t, err)
	assert.Equal(t, agent.ReasonCacheStale, d.Reason)

	// A restarted runtime reads the time back from the cache.
	eng2, err := sitesync.New(ctx, sitesync.Config{Source: e.client, SiteID: saltokstest.GeneratedSiteID, Doors: doors, Meta: e.db, Apply: applyTo(e.db)})
	require.NoError(t, err)
	assert.True(t, eng2.SyncedAt().Equal(at))
}

func TestNewValidates(t *testing.T) {
	e := newEnv(t, nil)
	base := sitesync.Config{Source: e.client, SiteID: "s", Doors: doors, Meta: e.db, Apply: applyTo(e.db)}
	for name, mod := range map[string]func(*sitesync.Config){
		"no source": func(c *sitesync.Config) { c.Source = nil },
		"no site":   func(c *sitesync.Config) { c.SiteID = "" },
		"no doors":  func(c *sitesync.Config) { c.Doors = nil },
	} {
		cfg := base
		mod(&cfg)
		_, err := sitesync.New(context.Background(), cfg)
		assert.Error(t, err, name)
	}
}

// TestAfterSyncRunsAfterEveryAttempt: the hook a daemon uses to give the
// sync's memory back runs once per attempt, failed or not, after the
// attempt was recorded.
func TestAfterSyncRunsAfterEveryAttempt(t *testing.T) {
	ctx := context.Background()
	var calls []string
	var e *env
	e = newEnv(t, func(c *sitesync.Config) {
		c.AfterSync = func() {
			st, err := sitesync.ReadState(ctx, e.db)
			require.NoError(t, err)
			calls = append(calls, fmt.Sprintf("failures=%d", st.ConsecutiveFailures))
		}
	})
	_, err := e.eng.SyncOnce(ctx)
	require.NoError(t, err)
	e.fake.Inject(saltokstest.Fault{Kind: saltokstest.ServerError, Path: "/users", Times: -1})
	_, err = e.eng.SyncOnce(ctx)
	require.Error(t, err)
	assert.Equal(t, []string{"failures=0", "failures=1"}, calls)
}
