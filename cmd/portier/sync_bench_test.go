package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
	"github.com/portier-io/portier/cloud/saltoks/sitesync"
	"github.com/portier-io/portier/sqlite"
)

// BenchmarkSaltoSync measures a sync of a site with 100,000 users, 1,000
// access groups and 200 locks from the fake Salto KS on loopback, with one
// door mapped to every lock (so every group is pulled in full):
//
//	sync_full_s                 first sync into an empty cache
//	sync_noop_s                 re-sync with nothing changed
//	sync_rows_written_noop      snapshot rows that re-sync wrote (must be 0)
//	decide_p99_idle_us          decision latency p99 with no sync running
//	decide_p99_during_sync_us   the same while a full sync (pull + apply of a
//	                            changed site) runs in the same process
//	sync_peak_rss_mb            peak RSS of a real `portier sync` process
//	                            doing a full sync into an empty cache
//	run_rss_after_sync_mb       resident size of a real `portier run` once its
//	                            first full sync has landed (what it keeps
//	                            between syncs)
//	run_peak_rss_sync_mb        that daemon's peak resident size
func BenchmarkSaltoSync(b *testing.B) {
	shape, fake, locks, door := largeSaltoSite(b)
	ctx := context.Background()

	for range b.N {
		db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "cache.db"), sqlite.Options{})
		require.NoError(b, err)
		eng := benchEngine(b, fake, db, door)

		start := time.Now()
		res, err := eng.SyncOnce(ctx)
		require.NoError(b, err)
		full := time.Since(start)
		require.Equal(b, shape.Users, res.Users)
		require.Equal(b, shape.Groups, res.Groups)

		start = time.Now()
		res, err = eng.SyncOnce(ctx)
		require.NoError(b, err)
		noop := time.Since(start)
		noopRows := res.Applied.RowsWritten()

		idle := decideP99(b, db, door, shape.Users, func() bool { return false }, 20000)

		// Change a tenth of the site so the next sync writes for real.
		for i := 0; i < shape.Users; i += 10 {
			fake.UpdateUser(saltokstest.UserID(i), func(u *saltoks.SiteUser) { u.Blocked = !u.Blocked })
		}
		var syncing atomic.Bool
		syncing.Store(true)
		var during time.Duration
		var wg sync.WaitGroup
		wg.Go(func() { during = decideP99(b, db, door, shape.Users, func() bool { return !syncing.Load() }, 0) })
		res, err = eng.SyncOnce(ctx)
		syncing.Store(false)
		wg.Wait()
		require.NoError(b, err)
		require.Positive(b, res.Applied.RowsWritten())
		require.NoError(b, db.Close())

		rss := peakRSS(b, fake, locks)
		runRSS, runPeak := daemonRSSAfterSync(b, fake, locks)

		b.ReportMetric(full.Seconds(), "sync_full_s")
		b.ReportMetric(noop.Seconds(), "sync_noop_s")
		b.ReportMetric(float64(noopRows), "sync_rows_written_noop")
		b.ReportMetric(float64(idle.Microseconds()), "decide_p99_idle_us")
		b.ReportMetric(float64(during.Microseconds()), "decide_p99_during_sync_us")
		b.ReportMetric(rss, "sync_peak_rss_mb")
		b.ReportMetric(runRSS, "run_rss_after_sync_mb")
		b.ReportMetric(runPeak, "run_peak_rss_sync_mb")
	}
}

// largeSaltoSite serves a site of 100,000 users, 1,000 access groups and
// 200 locks from the fake Salto KS, with a door mapped to every lock (so
// every group is pulled in full).
func largeSaltoSite(b *testing.B) (saltokstest.SiteShape, *saltokstest.Fake, []string, agent.Door) {
	shape := saltokstest.SiteShape{Users: 100000, Groups: 1000, Locks: 200, SuspendedEvery: 97, BlockedEvery: 89}
	fake := startFake(b, shape, saltokstest.Options{MaxPageSize: 1000})
	locks := make([]string, shape.Locks)
	for i := range locks {
		locks[i] = saltokstest.LockID(i)
	}
	return shape, fake, locks, agent.Door{ID: "front", Mode: agent.ModeCardOrPIN, LockIDs: locks}
}

// daemonRSSAfterSync runs `portier run` on the sim board against the fake,
// waits until its first full sync has landed, and returns its resident and
// peak resident size in MB, read from /proc/PID/status.
func daemonRSSAfterSync(b *testing.B, fake *saltokstest.Fake, locks []string) (rss, peak float64) {
	s := writeSaltoConfig(b, fake, 0o600, locks, `  page_size: 1000
clock_sync_check: "off"
hardware:
  driver: sim
  doors:
    front:
      relay: {pin: GPIO17}
    kiosk:
      relay: {pin: GPIO18}
`)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.dir}
	cmd := exec.Command(portierBin, "run", "--config", s.config)
	cmd.Env = env
	require.NoError(b, cmd.Start())
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, _, code := runPortier(b, env, "status", "--config", s.config, "--json")
		var st struct{ Sync *sitesync.State }
		if code == 0 && json.Unmarshal([]byte(out), &st) == nil && st.Sync != nil && !st.Sync.LastSuccess.IsZero() {
			require.Equal(b, 100000, st.Sync.Users)
			break
		}
		require.True(b, time.Now().Before(deadline), "the daemon's first sync did not land: %s", out)
		time.Sleep(100 * time.Millisecond) // polling a separate process; nothing to inject
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	require.NoError(b, err)
	kib := func(field string) float64 {
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				n, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				require.NoError(b, err)
				return n
			}
		}
		b.Fatalf("no %s in /proc/PID/status", field)
		return 0
	}
	return kib("VmRSS") / 1024, kib("VmHWM") / 1024
}

func benchEngine(b *testing.B, fake *saltokstest.Fake, db *sqlite.DB, door agent.Door) *sitesync.Engine {
	o := fake.Options()
	client, err := saltoks.New(saltoks.Config{IdentityURL: fake.URL(), APIURL: fake.URL(), ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Username: o.Username, Password: o.Password, HTTPClient: fake.Client(), Now: fake.Now, PageSize: 1000})
	require.NoError(b, err)
	eng, err := sitesync.New(context.Background(), sitesync.Config{Source: client, SiteID: saltokstest.GeneratedSiteID, Doors: []agent.Door{door},
		Meta: db, Logger: slog.New(slog.DiscardHandler),
		Apply: func(ctx context.Context, s *agent.Snapshot) (sitesync.Applied, error) {
			st, err := db.ApplySnapshot(ctx, s, sqlite.ApplyOptions{})
			return sitesync.Applied{Inserted: st.Inserted, Updated: st.Updated, Deleted: st.Deleted, Generation: st.Generation}, err
		}})
	require.NoError(b, err)
	return eng
}

// decideP99 makes decisions for random tags one after the other, n of them
// (or until stop says so when n is 0), and returns the 99th percentile.
func decideP99(b *testing.B, db *sqlite.DB, door agent.Door, users int, stop func() bool, n int) time.Duration {
	dc := &agent.Decider{Cache: db}
	rng := rand.New(rand.NewPCG(1, 2))
	at := time.Date(2026, 6, 7, 10, 0, 0, 0, time.UTC)
	var lat []time.Duration
	for i := 0; n == 0 || i < n; i++ {
		if n == 0 && stop() {
			break
		}
		tag := agent.CardTagNumber(saltokstest.TagNumber(rng.IntN(users)))
		t0 := time.Now()
		if _, err := dc.Decide(context.Background(), door, at, tag); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	require.NotEmpty(b, lat)
	slices.Sort(lat)
	return lat[len(lat)*99/100]
}

// peakRSS runs a real `portier sync` into an empty cache and returns its
// peak resident set size in MB, as the process itself reads it from
// /proc/self/status (VmHWM). The rusage maxrss of a child is no use here:
// Linux carries the parent's high-water mark (this test process, which holds
// the 100,000-user fake) over the exec.
func peakRSS(b *testing.B, fake *saltokstest.Fake, locks []string) float64 {
	s := writeSaltoConfig(b, fake, 0o600, locks, "  page_size: 1000\n")
	cmd := exec.Command(portierBin, "sync", "--config", s.config, "--json")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.dir}
	out, err := cmd.Output()
	require.NoError(b, err, "%s", out)
	var res struct {
		Users      int   `json:"users"`
		PeakRSSKiB int64 `json:"peak_rss_kib"`
	}
	require.NoError(b, json.Unmarshal(out, &res))
	require.Equal(b, 100000, res.Users)
	require.Positive(b, res.PeakRSSKiB, "the platform reports no VmHWM")
	return float64(res.PeakRSSKiB) / 1024
}
