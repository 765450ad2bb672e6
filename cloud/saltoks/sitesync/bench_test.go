package sitesync_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
	"github.com/portier-io/portier/cloud/saltoks/sitesync"
	"github.com/portier-io/portier/sqlite"
)

// BenchmarkSyncAtLatency measures a full sync of the 100,000-user,
// 1,000-group, 200-lock bench site (one door on every lock, so every group is
// read whole) into an empty cache, with 100 ms added to every answer of the
// fake Salto KS, as the distance from a gateway to Salto's cloud does:
//
//	sync_full_latency100_s                full sync, default in-flight bound (16)
//	sync_full_latency100_pull_s           of which reading Salto (the rest is the apply)
//	sync_full_latency100_requests         requests it made
//	sync_full_latency100_inflight8_s      the same with at most 8 requests open
//	sync_full_latency100_peak_in_flight   the most requests the fake saw open at once
//
// The requests are the floor: about 3,100 of them (3 per group, 101 user
// pages of 1,000), so at 100 ms each a bound of B needs at least 310/B s.
func BenchmarkSyncAtLatency(b *testing.B) {
	shape := saltokstest.SiteShape{Users: 100000, Groups: 1000, Locks: 200, SuspendedEvery: 97, BlockedEvery: 89}
	fake, err := saltokstest.New(saltokstest.Generate(shape), saltokstest.Options{MaxPageSize: 1000, Latency: 100 * time.Millisecond})
	require.NoError(b, err)
	fake.Start()
	b.Cleanup(fake.Close)
	door := agent.Door{ID: "front", Mode: agent.ModeCardOrPIN}
	for i := range shape.Locks {
		door.LockIDs = append(door.LockIDs, saltokstest.LockID(i))
	}
	run := func(inFlight int) (full, pull time.Duration, requests int) {
		o := fake.Options()
		client, err := saltoks.New(saltoks.Config{IdentityURL: fake.URL(), APIURL: fake.URL(), ClientID: o.ClientID, ClientSecret: o.ClientSecret,
			Username: o.Username, Password: o.Password, HTTPClient: fake.Client(), Now: fake.Now, PageSize: 1000, MaxInFlight: inFlight})
		require.NoError(b, err)
		db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "cache.db"), sqlite.Options{})
		require.NoError(b, err)
		defer db.Close()
		start := time.Now()
		eng, err := sitesync.New(context.Background(), sitesync.Config{Source: client, SiteID: saltokstest.GeneratedSiteID,
			Doors: []agent.Door{door}, Meta: db, Apply: applyTo(db), Logger: slog.New(slog.DiscardHandler),
			Progress: func(p sitesync.Progress) {
				if p.Phase == "apply" && pull == 0 {
					pull = time.Since(start)
				}
			}})
		require.NoError(b, err)
		before := fake.Hits("")
		start = time.Now()
		res, err := eng.SyncOnce(context.Background())
		full = time.Since(start)
		require.NoError(b, err)
		require.Equal(b, shape.Users, res.Users)
		require.Equal(b, shape.Groups, res.Groups)
		return full, pull, fake.Hits("") - before
	}
	// The fake encodes each user's JSON once, on first use: let that
	// happen before the clock runs (it is the fake's work, not Salto's).
	fake.WarmUp()
	for range b.N {
		full, pull, requests := run(0)
		peak := fake.PeakConcurrency()
		eight, _, _ := run(8)
		b.ReportMetric(full.Seconds(), "sync_full_latency100_s")
		b.ReportMetric(pull.Seconds(), "sync_full_latency100_pull_s")
		b.ReportMetric(float64(requests), "sync_full_latency100_requests")
		b.ReportMetric(eight.Seconds(), "sync_full_latency100_inflight8_s")
		b.ReportMetric(float64(peak), "sync_full_latency100_peak_in_flight")
	}
}
