package main_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
	"github.com/portier-io/portier/sqlite"
	"github.com/portier-io/portier/sqlite/sqlitetest/powerfs"
)

// benchRunConfig is a two-door gateway on the sim board over the
// 1,000,000-credential cache: door "bench" is the generated site's benchmark
// door (a tenth of the locks), door "side" one more lock. Timings and log
// level are the defaults a packaged gateway runs with.
const benchRunConfig = `gateway_id: bench
state_dir: %[1]s
control_socket: %[3]s
doors:
  - id: bench
    name: Benchmark door
    mode: card_or_pin
    salto_locks: [%[2]s]
  - id: side
    name: Side door
    mode: card
    salto_locks: [10c4e000-0000-4000-8000-000000000005]
hardware:
  driver: sim
  doors:
    bench:
      mfrc522: {spi: SPI0.0}
      keypad:
        rows: [GPIO5, GPIO6, GPIO12, GPIO13]
        cols: [GPIO19, GPIO16, GPIO26]
      relay: {pin: GPIO17, active_low: true}
      green_led: {pin: GPIO27}
      red_led: {pin: GPIO22}
      door_contact: {pin: GPIO4, switch: nc}
      exit_button: {pin: GPIO3, switch: "no"}
    side:
      mfrc522: {spi: SPI0.1}
      relay: {pin: GPIO23, active_low: true}
      green_led: {pin: GPIO24}
      red_led: {pin: GPIO25}
      door_contact: {pin: GPIO20, switch: nc}
      exit_button: {pin: GPIO21, switch: "no"}
`

// benchState is the state dir of a gateway over the 1M-credential cache,
// built once per test binary (in the directory TestMain removes) and copied
// for each benchmark.
type benchState struct {
	dir   string   // portier.db and pin.key
	locks []string // the benchmark door's locks
	uids  []string // known card UIDs, as `tap` takes them
}

var largeState = sync.OnceValues(func() (*benchState, error) {
	gen := agenttest.Generate(agenttest.LargeSite())
	st := &benchState{dir: filepath.Join(filepath.Dir(portierBin), "bench-state"), locks: gen.Door.LockIDs}
	if err := os.MkdirAll(st.dir, 0o700); err != nil {
		return nil, err
	}
	// The key file the daemon reads (state_dir/pin.key), and the cache
	// bound to it, as `portier import` would leave them.
	key := agenttest.PINKey()
	if err := os.WriteFile(filepath.Join(st.dir, "pin.key"), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, err
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(st.dir, "portier.db"), sqlite.Options{})
	if err != nil {
		return nil, err
	}
	if err := db.BindPINKey(ctx, key.Fingerprint()); err != nil {
		db.Close()
		return nil, err
	}
	if _, err := db.ApplySnapshot(ctx, gen.Snapshot, sqlite.ApplyOptions{}); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	for _, p := range gen.Samples {
		if p.Kind == agent.KindUID {
			st.uids = append(st.uids, strings.ToUpper(hex.EncodeToString(p.UID)))
		}
	}
	return st, nil
})

// benchGateway is a running `portier run` over a copy of the large state.
type benchGateway struct {
	b      *testing.B
	dir    string
	db     string // its database
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *os.File
	stderr *os.File
}

// startLargeGateway copies the large state into a fresh state dir, starts
// the daemon with systemd's environment (a real notify socket, the unit's
// 30 s watchdog) and returns once it sent READY=1.
func startLargeGateway(b *testing.B) (*benchGateway, *benchState) {
	return startLargeGatewayOn(b, b.TempDir(), "")
}

// startLargeGatewayOn is startLargeGateway with the state in stateDir
// (e.g. a powerfs mount), copied there through copyTo ("": stateDir).
func startLargeGatewayOn(b *testing.B, stateDir, copyTo string) (*benchGateway, *benchState) {
	b.Helper()
	st, err := largeState()
	require.NoError(b, err, "build the 1M-credential cache")
	if copyTo == "" {
		copyTo = stateDir
	}
	for _, f := range []string{"portier.db", "pin.key"} {
		copyFile(b, filepath.Join(st.dir, f), filepath.Join(copyTo, f))
		require.NoError(b, os.Chmod(filepath.Join(copyTo, f), 0o600)) // the key must be private
	}
	if copyTo != stateDir {
		// Read it once where the daemon will: its pages are then in the
		// page cache, as a copy's are on an ordinary disk.
		f, err := os.Open(filepath.Join(stateDir, "portier.db"))
		require.NoError(b, err)
		_, err = io.Copy(io.Discard, f)
		require.NoError(b, err)
		require.NoError(b, f.Close())
	}
	dir := b.TempDir() // config, logs and sockets
	cfg := filepath.Join(dir, "portier.yaml")
	require.NoError(b, os.WriteFile(cfg, []byte(fmt.Sprintf(benchRunConfig, stateDir, strings.Join(st.locks, ", "), filepath.Join(dir, "portier.sock"))), 0o600))

	sock := filepath.Join(dir, "notify.sock")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	require.NoError(b, err)
	b.Cleanup(func() { notify.Close() })

	g := &benchGateway{b: b, dir: dir, db: filepath.Join(stateDir, "portier.db")}
	g.stdout, err = os.Create(filepath.Join(dir, "stdout.log"))
	require.NoError(b, err)
	g.stderr, err = os.Create(filepath.Join(dir, "stderr.log"))
	require.NoError(b, err)
	g.cmd = exec.Command(portierBin, "run", "--config", cfg, "--sim-input", "-")
	g.cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=30000000"}
	g.stdin, err = g.cmd.StdinPipe()
	require.NoError(b, err)
	g.cmd.Stdout, g.cmd.Stderr = g.stdout, g.stderr
	require.NoError(b, g.cmd.Start())
	b.Cleanup(func() {
		if g.cmd.ProcessState == nil {
			g.cmd.Process.Kill()
			g.cmd.Wait()
		}
		g.stdout.Close()
		g.stderr.Close()
		if b.Failed() {
			out, _ := os.ReadFile(g.stderr.Name())
			b.Logf("portier run stderr (tail):\n%s", tail(string(out), 4000))
		}
	})

	buf := make([]byte, 4096)
	require.NoError(b, notify.SetReadDeadline(time.Now().Add(60*time.Second)))
	for {
		n, err := notify.Read(buf)
		require.NoError(b, err, "waiting for READY=1")
		if strings.Contains(string(buf[:n]), "READY=1") {
			return g, st
		}
	}
}

// stop sends SIGTERM and requires a clean exit.
func (g *benchGateway) stop() {
	require.NoError(g.b, g.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(g.b, g.cmd.Wait(), "portier run did not stop cleanly")
}

// cpuNanos is the CPU time the process has used so far, in nanoseconds, and
// its thread ids. Per-thread schedstat is exact (ns) but loses threads that
// exited; utime+stime in /proc/PID/stat keeps them but counts in clock ticks.
func cpuNanos(b *testing.B, pid int) (schedNs int64, tids []string, statNs int64) {
	b.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	require.NoError(b, err)
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // exited meanwhile
		}
		f := strings.Fields(string(data))
		require.NotEmpty(b, f, "schedstat of thread %s", t.Name())
		ns, err := strconv.ParseInt(f[0], 10, 64)
		require.NoError(b, err)
		schedNs += ns
		tids = append(tids, t.Name())
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(b, err)
	// Fields after the command name (which may hold spaces) in parentheses.
	f := strings.Fields(string(data)[strings.LastIndexByte(string(data), ')')+2:])
	utime, err := strconv.ParseInt(f[11], 10, 64)
	require.NoError(b, err)
	stime, err := strconv.ParseInt(f[12], 10, 64)
	require.NoError(b, err)
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	require.NoError(b, err)
	hz, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	require.NoError(b, err)
	return schedNs, tids, (utime + stime) * int64(time.Second) / hz
}

// BenchmarkRunIdleCPU measures the CPU the whole agent (`portier run`, two
// sim doors, the 1M-credential cache, systemd watchdog on as in the unit)
// uses while nothing happens at its doors, as a percentage of one core.
//
//	idle_cpu_pct   CPU time / wall time × 100 over a 10 s window
func BenchmarkRunIdleCPU(b *testing.B) {
	const settle, window = 2 * time.Second, 10 * time.Second
	for range b.N {
		g, _ := startLargeGateway(b)
		pid := g.cmd.Process.Pid
		// Let start-up work (first watchdog health check, GC of start-up
		// garbage) pass: an idle gateway is one that has been idle a while.
		time.Sleep(settle)
		sched0, tids0, stat0 := cpuNanos(b, pid)
		start := time.Now()
		time.Sleep(window) // the measurement window
		sched1, tids1, stat1 := cpuNanos(b, pid)
		wall := time.Since(start)
		g.stop()

		used, how := sched1-sched0, "per-thread schedstat (ns)"
		if exited := slices.ContainsFunc(tids0, func(t string) bool { return !slices.Contains(tids1, t) }); exited && stat1-stat0 > used {
			// A thread exited and took its schedstat with it: the
			// per-process tick count keeps it.
			used, how = stat1-stat0, "utime+stime (ticks)"
		}
		b.ReportMetric(float64(used)/float64(wall)*100, "idle_cpu_pct")
		logVerbose(b, "idle: %s CPU over %s wall (%s; %d threads; utime+stime delta %s)",
			time.Duration(used), wall.Round(time.Millisecond), how, len(tids1), time.Duration(stat1-stat0))
	}
}

// BenchmarkRunRSS measures the resident memory of `portier run` over the
// 1M-credential cache in steady state: after READY and a burst of 10,000
// decisions (known card UIDs tapped through --sim-input, alternately at both
// doors so their lookups overlap, every one recorded in the outbox), once the
// burst is over. The state lives on storage whose every fsync takes 10 ms,
// like an SD card's (powerfs).
//
//	rss_mb        VmRSS after the burst
//	rss_peak_mb   VmHWM (peak RSS since start)
func BenchmarkRunRSS(b *testing.B) {
	const taps, chunk = 10_000, 50
	fsys := powerfs.New(b, powerfs.Options{FsyncDelay: 10 * time.Millisecond})
	for range b.N {
		// The large cache is copied into the backing directory directly
		// (a pass-through mount without power cuts: the same files).
		g, st := startLargeGatewayOn(b, fsys.Dir(), fsys.Backing())
		require.GreaterOrEqual(b, len(st.uids), taps)

		// The board's and the controller's queues hold 256 events each: a
		// pause after every 50 taps keeps the burst from overflowing them
		// (an overflow would show as a missing decision below).
		w := bufio.NewWriter(g.stdin)
		for i, uid := range st.uids[:taps] {
			fmt.Fprintf(w, "tap %s %s\n", []string{"bench", "side"}[i%2], uid)
			if (i+1)%chunk == 0 {
				fmt.Fprintln(w, "wait 10ms")
			}
		}
		require.NoError(b, w.Flush())

		db, err := sql.Open("sqlite3", "file:"+g.db+"?mode=ro&_busy_timeout=5000")
		require.NoError(b, err)
		defer db.Close()
		decisions := func() int {
			var n int
			require.NoError(b, db.QueryRow("SELECT count(*) FROM outbox WHERE type IN (?, ?)",
				string(agent.EventAccessGranted), string(agent.EventAccessDenied)).Scan(&n))
			return n
		}
		// Bounded by progress: only 60 s without a new decision fail.
		moved, last := time.Now(), -1
		for n := decisions(); n < taps; n = decisions() {
			if n != last {
				moved, last = time.Now(), n
			}
			require.Less(b, time.Since(moved), 60*time.Second, "only %d of %d decisions recorded, none for 60s", n, taps)
			time.Sleep(50 * time.Millisecond)
		}
		var grants int
		require.NoError(b, db.QueryRow("SELECT count(*) FROM outbox WHERE type = ?", string(agent.EventAccessGranted)).Scan(&grants))
		require.Positive(b, grants, "no decision was a grant")
		require.NoError(b, db.Close())
		time.Sleep(2 * time.Second) // the burst's relay pulse and feedback end; steady state
		status := procStatus(b, g.cmd.Process.Pid)
		stdout, err := os.ReadFile(g.stdout.Name())
		require.NoError(b, err)
		g.stop()
		require.NotContains(b, string(stdout), "error:", "a sim command failed (queue full?)")

		b.ReportMetric(status["VmRSS"]/1024, "rss_mb")
		b.ReportMetric(status["VmHWM"]/1024, "rss_peak_mb")
		logVerbose(b, "after %d decisions (%d grants): VmRSS %.1f MB = RssAnon %.1f + RssFile %.1f + RssShmem %.1f; VmHWM %.1f MB; threads %.0f",
			taps, grants, status["VmRSS"]/1024, status["RssAnon"]/1024, status["RssFile"]/1024, status["RssShmem"]/1024, status["VmHWM"]/1024, status["Threads"])
	}
}

// procStatus reads the numeric fields of /proc/PID/status (sizes in KiB).
func procStatus(b *testing.B, pid int) map[string]float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(b, err)
	out := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		if n, err := strconv.ParseFloat(f[0], 64); err == nil {
			out[k] = n
		}
	}
	require.Contains(b, out, "VmRSS")
	require.Contains(b, out, "VmHWM")
	return out
}

// logVerbose logs details with -v only: `make bench` prints the metrics.
func logVerbose(b testing.TB, format string, args ...any) {
	b.Helper()
	if testing.Verbose() {
		b.Logf(format, args...)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
