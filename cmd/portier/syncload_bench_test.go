package main_test

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
	"github.com/portier-io/portier/sqlite"
)

// BenchmarkDecideDuringSyncUnderLoad asks whether the periodic sync should
// leave the daemon: with the CPU busy (busy loops on twice the cores, as
// on a loaded gateway), it measures the decision latency of the door's
// process while nothing syncs, while a full sync of a changed
// 100,000-user site runs in that same process (as `portier run` does it
// now), and while the same sync runs as a separate `portier sync` process
// at nice 10 against the same database.
//
//	decide_p99_load_idle_us          no sync
//	decide_p99_load_sync_inproc_us   the sync in the deciding process
//	decide_p99_load_sync_child_us    the sync in a niced child process
func BenchmarkDecideDuringSyncUnderLoad(b *testing.B) {
	shape, fake, locks, door := largeSaltoSite(b)
	ctx := context.Background()
	for range b.N {
		s := writeSaltoConfig(b, fake, 0o600, locks, "  page_size: 1000\n")
		out, errOut, code := runPortier(b, nil, "sync", "--config", s.config)
		require.Equal(b, 0, code, "%s %s", out, errOut)
		db, err := sqlite.Open(ctx, s.db, sqlite.Options{})
		require.NoError(b, err)
		eng := benchEngine(b, fake, db, door)
		// Half of a decision's work is the first read of its pages: warm
		// them as a running gateway has.
		decideP99(b, db, door, shape.Users, nil, 20000)

		stop := cpuLoad(b, 2*runtime.NumCPU())
		idle := decideP99(b, db, door, shape.Users, nil, 20000)

		changeSite(fake, shape.Users, 1)
		var inproc time.Duration
		var syncing atomic.Bool
		syncing.Store(true)
		var wg sync.WaitGroup
		wg.Go(func() { inproc = decideP99(b, db, door, shape.Users, func() bool { return !syncing.Load() }, 0) })
		res, err := eng.SyncOnce(ctx)
		syncing.Store(false)
		wg.Wait()
		require.NoError(b, err)
		require.Positive(b, res.Applied.RowsWritten())

		changeSite(fake, shape.Users, 2)
		cmd := exec.Command("nice", "-n", "10", portierBin, "sync", "--config", s.config)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.dir}
		require.NoError(b, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var childErr error
		var ended atomic.Bool
		wg.Go(func() { childErr = <-done; ended.Store(true) })
		child := decideP99(b, db, door, shape.Users, ended.Load, 0)
		wg.Wait()
		require.NoError(b, childErr, "portier sync")
		stop()
		require.NoError(b, db.Close())

		b.ReportMetric(float64(idle.Microseconds()), "decide_p99_load_idle_us")
		b.ReportMetric(float64(inproc.Microseconds()), "decide_p99_load_sync_inproc_us")
		b.ReportMetric(float64(child.Microseconds()), "decide_p99_load_sync_child_us")
	}
}

// changeSite blocks or unblocks every tenth user (offset by round), so the
// next sync writes for real.
func changeSite(fake *saltokstest.Fake, users, round int) {
	for i := round; i < users; i += 10 {
		fake.UpdateUser(saltokstest.UserID(i), func(u *saltoks.SiteUser) { u.Blocked = !u.Blocked })
	}
}

// cpuLoad keeps n processes spinning until stop is called.
func cpuLoad(b *testing.B, n int) (stop func()) {
	var procs []*exec.Cmd
	for range n {
		c := exec.Command("sh", "-c", "while :; do :; done")
		require.NoError(b, c.Start())
		procs = append(procs, c)
	}
	stop = func() {
		for _, c := range procs {
			if c.ProcessState == nil {
				c.Process.Kill()
				c.Wait()
			}
		}
	}
	b.Cleanup(stop)
	return stop
}
