package powerfs_test

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/sqlite/sqlitetest/powerfs"
)

func write(t *testing.T, p, content string, sync bool) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	require.NoError(t, err)
	_, err = f.WriteString(content)
	require.NoError(t, err)
	if sync {
		require.NoError(t, f.Sync())
	}
	require.NoError(t, f.Close())
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	require.NoError(t, err)
	require.NoError(t, d.Sync())
	require.NoError(t, d.Close())
}

// read returns the file's content, or "<none>".
func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "<none>"
	}
	require.NoError(t, err)
	return string(b)
}

// TestPowerCut runs file operations, cuts the power, powers on and looks
// at what survived, against the model in the package comment.
func TestPowerCut(t *testing.T) {
	durable := func(t *testing.T, dir, name, content string) {
		write(t, filepath.Join(dir, name), content, true)
		syncDir(t, dir)
	}
	cases := []struct {
		name string
		do   func(t *testing.T, dir string)
		want map[string]string
	}{
		{"a synced write survives", func(t *testing.T, dir string) {
			durable(t, dir, "a", "hello")
		}, map[string]string{"a": "hello"}},
		{"writes after the last fsync are lost", func(t *testing.T, dir string) {
			durable(t, dir, "a", "hello")
			f, err := os.OpenFile(filepath.Join(dir, "a"), os.O_RDWR, 0)
			require.NoError(t, err)
			_, err = f.WriteAt([]byte("J"), 0)
			require.NoError(t, err)
			_, err = f.WriteAt([]byte(" world"), 5)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			assert.Equal(t, "Jello world", read(t, filepath.Join(dir, "a")), "the live file has them")
		}, map[string]string{"a": "hello"}},
		{"a new file nobody synced is gone", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "new"), "data", false)
		}, map[string]string{"new": "<none>"}},
		{"a new file synced keeps its name and content", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "new"), "data", true)
		}, map[string]string{"new": "data"}},
		{"a new file whose directory was synced is there, empty", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "new"), "data", false)
			syncDir(t, dir)
		}, map[string]string{"new": ""}},
		{"an unlink without a directory sync is undone", func(t *testing.T, dir string) {
			durable(t, dir, "a", "keep")
			require.NoError(t, os.Remove(filepath.Join(dir, "a")))
		}, map[string]string{"a": "keep"}},
		{"an unlink with a directory sync sticks", func(t *testing.T, dir string) {
			durable(t, dir, "a", "keep")
			require.NoError(t, os.Remove(filepath.Join(dir, "a")))
			syncDir(t, dir)
		}, map[string]string{"a": "<none>"}},
		{"a rename without any sync is undone", func(t *testing.T, dir string) {
			durable(t, dir, "a", "x")
			require.NoError(t, os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")))
		}, map[string]string{"a": "x", "b": "<none>"}},
		{"a rename with a directory sync sticks", func(t *testing.T, dir string) {
			durable(t, dir, "a", "x")
			require.NoError(t, os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")))
			syncDir(t, dir)
		}, map[string]string{"a": "<none>", "b": "x"}},
		{"write a temp file, sync it, rename over: the file's sync carries the rename", func(t *testing.T, dir string) {
			durable(t, dir, "cfg", "old")
			write(t, filepath.Join(dir, "cfg.tmp"), "new", true)
			require.NoError(t, os.Rename(filepath.Join(dir, "cfg.tmp"), filepath.Join(dir, "cfg")))
			f, err := os.Open(filepath.Join(dir, "cfg"))
			require.NoError(t, err)
			require.NoError(t, f.Sync())
			require.NoError(t, f.Close())
		}, map[string]string{"cfg": "new", "cfg.tmp": "<none>"}},
		{"a truncation and a write past it, synced", func(t *testing.T, dir string) {
			durable(t, dir, "a", "0123456789abcdefghij")
			f, err := os.OpenFile(filepath.Join(dir, "a"), os.O_RDWR, 0)
			require.NoError(t, err)
			require.NoError(t, f.Truncate(4))
			_, err = f.WriteAt([]byte("XY"), 8)
			require.NoError(t, err)
			require.NoError(t, f.Sync())
			require.NoError(t, f.Close())
		}, map[string]string{"a": "0123\x00\x00\x00\x00XY"}},
		{"a truncation not synced is undone", func(t *testing.T, dir string) {
			durable(t, dir, "a", "0123456789")
			require.NoError(t, os.Truncate(filepath.Join(dir, "a"), 2))
		}, map[string]string{"a": "0123456789"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fsys := powerfs.New(t, powerfs.Options{PowerCut: true})
			tc.do(t, fsys.Dir())
			require.NoError(t, fsys.Cut())
			_, err := os.Create(filepath.Join(fsys.Dir(), "after"))
			require.ErrorIs(t, err, syscall.EIO, "nothing works without power")
			require.NoError(t, fsys.PowerOn())
			for name, want := range tc.want {
				assert.Equal(t, want, read(t, filepath.Join(fsys.Dir(), name)), name)
			}
			assert.Equal(t, "<none>", read(t, filepath.Join(fsys.Dir(), "after")))
		})
	}
}

// TestCutDuringAFlush: an fsync still running when the power goes makes
// nothing durable and fails.
func TestCutDuringAFlush(t *testing.T) {
	fsys := powerfs.New(t, powerfs.Options{PowerCut: true, FsyncDelay: time.Hour})
	p := filepath.Join(fsys.Dir(), "a")
	f, err := os.Create(p)
	require.NoError(t, err)
	_, err = f.WriteString("never durable")
	require.NoError(t, err)
	synced := make(chan error, 1)
	go func() { synced <- f.Sync() }()
	for {
		st, err := fsys.Stats()
		require.NoError(t, err)
		if st.Flushing > 0 {
			break // the card is flushing, for an hour
		}
		select {
		case err := <-synced:
			t.Fatalf("fsync returned (%v) before its hour", err)
		case <-time.After(time.Millisecond):
		}
	}
	require.NoError(t, fsys.Cut())
	require.ErrorIs(t, <-synced, syscall.EIO)
	f.Close()
	require.NoError(t, fsys.PowerOn())
	assert.Equal(t, "<none>", read(t, p))
}

// TestFsyncDelay: every fsync of a file or a directory takes the card's
// flush time.
func TestFsyncDelay(t *testing.T) {
	const delay = 20 * time.Millisecond
	fsys := powerfs.New(t, powerfs.Options{FsyncDelay: delay})
	start := time.Now()
	write(t, filepath.Join(fsys.Dir(), "a"), "x", true)
	syncDir(t, fsys.Dir())
	assert.GreaterOrEqual(t, time.Since(start), 2*delay, "two flushes")
	st, err := fsys.Stats()
	require.NoError(t, err)
	assert.EqualValues(t, 1, st.Fsyncs)
	assert.EqualValues(t, 1, st.FsyncDirs)
	assert.EqualValues(t, 1, st.Writes)
}

// TestTrigger: an armed trigger cuts the power at the operation it aims at,
// which fails like every one after it.
func TestTrigger(t *testing.T) {
	fsys := powerfs.New(t, powerfs.Options{PowerCut: true})
	require.NoError(t, fsys.Arm(powerfs.Trigger{Kind: powerfs.OpWrite, Path: "log", After: 3}))
	f, err := os.Create(filepath.Join(fsys.Dir(), "log"))
	require.NoError(t, err)
	defer f.Close()
	for i := range 2 {
		_, err := fmt.Fprintf(f, "line %d\n", i)
		require.NoError(t, err)
		require.NoError(t, f.Sync())
	}
	_, err = f.WriteString("line 2\n")
	require.ErrorIs(t, err, syscall.EIO)
	<-fsys.Dead()
	require.NotNil(t, fsys.CutAt())
	assert.Equal(t, "write log [14,+7)", fsys.CutAt().String())
	f.Close()
	require.NoError(t, fsys.PowerOn())
	assert.Equal(t, "line 0\nline 1\n", read(t, filepath.Join(fsys.Dir(), "log")))
	assert.Nil(t, fsys.CutAt(), "powered on again")
	st, err := fsys.Stats()
	require.NoError(t, err)
	assert.Equal(t, 1, st.Cuts)

	// A cut in a burst: short runs of writes between fsyncs do not count.
	require.NoError(t, fsys.Arm(powerfs.Trigger{Kind: powerfs.OpWrite, Path: "log", After: 2, Run: 3}))
	f, err = os.OpenFile(filepath.Join(fsys.Dir(), "log"), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	defer f.Close()
	for range 5 {
		for range 2 {
			_, err := f.WriteString("short\n")
			require.NoError(t, err)
		}
		require.NoError(t, f.Sync())
	}
	for i := range 3 {
		_, err := f.WriteString("long\n")
		require.NoError(t, err, "write %d of the burst", i+1)
	}
	_, err = f.WriteString("long\n")
	require.ErrorIs(t, err, syscall.EIO, "the fourth write of a burst is the second from the third on")
}

// TestSQLiteAcrossPowerCuts: a SQLite database in WAL mode, committing a
// row per transaction, loses power at many different points. With
// synchronous=FULL every committed row survives and the database is
// intact; with NORMAL (sync only at checkpoints) committed rows are lost —
// which shows the file system really loses what was not synced.
func TestSQLiteAcrossPowerCuts(t *testing.T) {
	for _, tc := range []struct {
		sync     string
		mayLose  bool
		cutEvery int
	}{
		{"FULL", false, 7},
		{"NORMAL", true, 7},
	} {
		t.Run(tc.sync, func(t *testing.T) {
			fsys := powerfs.New(t, powerfs.Options{PowerCut: true})
			path := filepath.Join(fsys.Dir(), "test.db")
			committed := 0 // rows whose commit returned
			lost := 0
			for cut := range 12 {
				db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous="+tc.sync+"&_txlock=immediate")
				require.NoError(t, err)
				db.SetMaxOpenConns(1)
				_, err = db.Exec("CREATE TABLE IF NOT EXISTS t(n INTEGER PRIMARY KEY, pad TEXT)")
				require.NoError(t, err, "after cut %d", cut)
				var ok string
				require.NoError(t, db.QueryRow("PRAGMA integrity_check").Scan(&ok))
				require.Equal(t, "ok", ok, "after cut %d", cut)
				var have int
				require.NoError(t, db.QueryRow("SELECT count(*) FROM t").Scan(&have))
				if !tc.mayLose {
					require.Equal(t, committed, have, "after cut %d: every committed row is there, no other", cut)
				}
				lost += committed - have
				committed = have

				// Cut at the n-th write from here, somewhere in the middle of
				// a transaction or of a checkpoint.
				require.NoError(t, fsys.Arm(powerfs.Trigger{Kind: powerfs.OpWrite, After: 20 + cut*tc.cutEvery}))
				for {
					_, err := db.Exec("INSERT INTO t(n, pad) VALUES(?, randomblob(3000))", committed+1)
					if err != nil {
						break
					}
					committed++
				}
				db.Close()
				t.Logf("cut %d at %v after %d rows", cut, fsys.CutAt(), committed)
				require.NoError(t, fsys.PowerOn())
			}
			t.Logf("synchronous=%s: %d committed rows lost over 12 cuts", tc.sync, lost)
			if tc.mayLose {
				assert.Positive(t, lost, "with NORMAL a power cut loses committed transactions")
			}
		})
	}
}

// TestUnmountWhileBusy: a mount still in use when the test ends is
// detached by the cleanup instead of being left behind.
func TestUnmountWhileBusy(t *testing.T) {
	var held *os.File
	t.Cleanup(func() { held.Close() }) // after the unmount: busy until then
	var mnt string
	t.Run("inner", func(t *testing.T) {
		fsys := powerfs.New(t, powerfs.Options{})
		mnt = fsys.Dir()
		var err error
		held, err = os.Create(filepath.Join(mnt, "held"))
		require.NoError(t, err)
	})
	data, err := os.ReadFile("/proc/self/mounts")
	require.NoError(t, err)
	assert.NotContains(t, string(data), " "+mnt+" ", "no mount is left behind")
}
