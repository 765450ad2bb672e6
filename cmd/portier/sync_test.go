package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
	"github.com/portier-io/portier/sqlite"
	"github.com/portier-io/portier/sqlite/sqlitetest"
)

// startFake serves a generated site on loopback for the portier binary.
func startFake(t testing.TB, shape saltokstest.SiteShape, opt saltokstest.Options) *saltokstest.Fake {
	t.Helper()
	fake, err := saltokstest.New(saltokstest.Generate(shape), opt)
	require.NoError(t, err)
	fake.Start()
	t.Cleanup(fake.Close)
	return fake
}

type saltoSetup struct {
	dir, config, db string
}

// writeSaltoConfig writes a config whose salto: section points at fake, with
// secret files of the given mode. Doors: front (card_or_pin) opens for the
// groups holding one of frontLocks; kiosk (pin) is mapped to group 1.
func writeSaltoConfig(t testing.TB, fake *saltokstest.Fake, secretMode os.FileMode, frontLocks []string, extra string) saltoSetup {
	t.Helper()
	dir := t.TempDir()
	o := fake.Options()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "client.secret"), []byte(o.ClientSecret+"\n"), secretMode))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "salto.password"), []byte(o.Password+"\n"), secretMode))
	cfg := fmt.Sprintf(`gateway_id: e2e
state_dir: %s
doors:
  - id: front
    mode: card_or_pin
    salto_locks: [%s]
  - id: kiosk
    mode: pin
    salto_access_groups: [%s]
salto:
  identity_url: %s
  api_url: %s
  site_id: %s
  client_id: %s
  client_secret_file: client.secret
  username: %s
  password_file: salto.password
  request_timeout: 5s
%s`, filepath.Join(dir, "state"), strings.Join(frontLocks, ", "), saltokstest.GroupID(1), fake.URL(), fake.URL(),
		saltokstest.GeneratedSiteID, o.ClientID, o.Username, extra)
	path := filepath.Join(dir, "portier.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	return saltoSetup{dir: dir, config: path, db: filepath.Join(dir, "state", "portier.db")}
}

func TestBinaryDoesNotLinkTheFake(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	require.NoError(t, err)
	assert.NotContains(t, string(out), "saltokstest")
	assert.Contains(t, string(out), "cloud/saltoks/sitesync")
}

func TestSyncEndToEnd(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 200, Groups: 8, Locks: 4, BlockedEvery: 5}, saltokstest.Options{})
	s := writeSaltoConfig(t, fake, 0o600, []string{saltokstest.LockID(0)}, "  page_size: 40\n")

	out, errOut, code := runPortier(t, nil, "sync", "--config", s.config)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", out, errOut)
	assert.Contains(t, out, `synced site "Generated site" (Europe/Berlin)`)
	assert.Contains(t, out, "200 users, 3 access groups for the configured doors, 4 locks, 200 tag credentials")
	assert.Contains(t, out, "last successful sync:")
	assert.NotContains(t, errOut, "syncing:", "no progress display without a terminal")

	sunday := "2026-06-07T10:00"
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"group 0 holds lock 0", []string{"--door", "front", "--tag", saltokstest.TagNumber(8)}, 0, "GRANTED"},
		{"group 4 holds lock 0", []string{"--door", "front", "--tag", saltokstest.TagNumber(12)}, 0, "GRANTED"},
		{"group 1 is not on lock 0", []string{"--door", "front", "--tag", saltokstest.TagNumber(1)}, 1, "no_access_to_door"},
		{"group 2 does not", []string{"--door", "front", "--tag", saltokstest.TagNumber(2)}, 1, "no_access_to_door"},
		{"blocked", []string{"--door", "front", "--tag", saltokstest.TagNumber(4)}, 1, "user_blocked"}, // 4 % 5 == 4, group 4
		{"unknown", []string{"--door", "front", "--tag", "99999999"}, 1, "unknown_credential"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runPortier(t, nil, append([]string{"check", "--config", s.config, "--at", sunday}, tc.args...)...)
			assert.Equal(t, tc.code, code, "stdout: %s\nstderr: %s", out, errOut)
			assert.Contains(t, out, tc.want)
		})
	}

	out, _, code = runPortier(t, nil, "sync", "--config", s.config, "--json")
	require.Equal(t, 0, code)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Equal(t, 0.0, res["rows_written"], "nothing changed")

	out, _, code = runPortier(t, nil, "sync", "--config", s.config, "--status", "--json")
	require.Equal(t, 0, code)
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Equal(t, 200.0, res["users"])
	assert.Equal(t, "", res["last_error"])
	assert.NotNil(t, res["last_success"])
}

func TestSyncFailuresAreClear(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 10, Groups: 2, Locks: 2}, saltokstest.Options{})
	t.Run("secret readable by others", func(t *testing.T) {
		s := writeSaltoConfig(t, fake, 0o644, []string{saltokstest.LockID(0)}, "")
		_, errOut, code := runPortier(t, nil, "sync", "--config", s.config)
		assert.Equal(t, 2, code)
		assert.Contains(t, errOut, "chmod 600")
	})
	t.Run("wrong password keeps the old snapshot", func(t *testing.T) {
		s := writeSaltoConfig(t, fake, 0o600, []string{saltokstest.LockID(0)}, "")
		_, _, code := runPortier(t, nil, "sync", "--config", s.config)
		require.Equal(t, 0, code)
		require.NoError(t, os.WriteFile(filepath.Join(s.dir, "salto.password"), []byte("wrong\n"), 0o600))
		_, errOut, code := runPortier(t, nil, "sync", "--config", s.config)
		assert.Equal(t, 3, code)
		assert.Contains(t, errOut, "invalid_grant")
		assert.Contains(t, errOut, "check the Salto username and password")
		assert.Contains(t, errOut, "previous snapshot")
		assert.NotContains(t, errOut, "wrong", "the password is never printed")
		out, _, code := runPortier(t, nil, "check", "--config", s.config, "--door", "front", "--tag", saltokstest.TagNumber(0), "--at", "2026-06-07T10:00")
		assert.Equal(t, 0, code, out)
	})
	t.Run("no salto section", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "p.yaml")
		require.NoError(t, os.WriteFile(path, []byte("state_dir: "+dir+"\ndoors:\n  - id: a\n    mode: card\n    salto_locks: [0b5e0000-0000-4000-8000-000000000001]\n"), 0o644))
		_, errOut, code := runPortier(t, nil, "sync", "--config", path)
		assert.Equal(t, 2, code)
		assert.Contains(t, errOut, "salto.identity_url")
	})
}

func TestAccessCodeEndToEnd(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 20, Groups: 4, Locks: 2}, saltokstest.Options{})
	s := writeSaltoConfig(t, fake, 0o600, []string{saltokstest.LockID(0)}, "")
	// Group 1 has weekday hours 07–19: pick a Monday 10:00 ahead of the
	// binary's real clock, and let the code end a week later.
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	monday := time.Now().In(berlin).AddDate(0, 0, 1)
	for monday.Weekday() != time.Monday {
		monday = monday.AddDate(0, 0, 1)
	}
	inside := monday.Format("2006-01-02") + "T10:00"
	ends := monday.AddDate(0, 0, 7).Format("2006-01-02") + "T18:00"
	after := monday.AddDate(0, 0, 14).Format("2006-01-02") + "T10:00"
	out, errOut, code := runPortier(t, nil, "access-code", "create", "--config", s.config, "--door", "kiosk", "--name", "cleaner",
		"--ends", ends, "--json")
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", out, errOut)
	var ac map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &ac))
	pin := ac["code"].(string)
	assert.Len(t, pin, 6)
	assert.Equal(t, "set", ac["status"])
	assert.Equal(t, "time_bound", ac["type"])

	out, _, code = runPortierIn(t, nil, pin+"\n", "check", "--config", s.config, "--door", "kiosk", "--pin-stdin", "--at", inside)
	assert.Equal(t, 0, code, out)
	out, _, code = runPortierIn(t, nil, pin+"\n", "check", "--config", s.config, "--door", "kiosk", "--pin-stdin", "--at", after)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "expired")

	out, _, code = runPortier(t, nil, "access-code", "list", "--config", s.config)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "cleaner")
	assert.NotContains(t, out, pin, "the code is shown only once")

	id := ac["access_code_id"].(string)
	out, errOut, code = runPortier(t, nil, "access-code", "delete", "--config", s.config, "--id", id)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", out, errOut)
	out, _, code = runPortierIn(t, nil, pin+"\n", "check", "--config", s.config, "--door", "kiosk", "--pin-stdin", "--at", inside)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "unknown_credential")
	assert.Equal(t, 20, fake.UserCount())

	_, errOut, code = runPortier(t, nil, "access-code", "create", "--config", s.config, "--door", "front")
	assert.Equal(t, 2, code, "front has no access group: %s", errOut)
}

func TestAccessCodeSeatLimit(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 20, Groups: 4, Locks: 2}, saltokstest.Options{SeatLimit: 20})
	s := writeSaltoConfig(t, fake, 0o600, []string{saltokstest.LockID(0)}, "")
	out, errOut, code := runPortier(t, nil, "access-code", "create", "--config", s.config, "--door", "kiosk")
	assert.Equal(t, 3, code, out)
	assert.Contains(t, errOut, "salto_site_user_not_subscribed")
	assert.Contains(t, errOut, "ask your Salto installer")
	assert.Equal(t, 20, fake.UserCount())
	out, _, _ = runPortier(t, nil, "access-code", "list", "--config", s.config)
	assert.Contains(t, out, "unset")
}

// dumpCache hashes the cache's snapshot content (not the sync bookkeeping or
// the apply time), after opening it as portier would (WAL recovery).
func dumpCache(t testing.TB, path string) string {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	h, err := sqlitetest.Dump(path)
	require.NoError(t, err)
	return h
}

// copyDB copies a database with its WAL (when there is one).
func copyDB(t testing.TB, from, to string) {
	t.Helper()
	for _, sfx := range []string{"", "-wal", "-shm"} {
		os.Remove(to + sfx)
		if _, err := os.Stat(from + sfx); err == nil {
			copyFile(t, from+sfx, to+sfx)
		}
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(to), 0o750))
	src, err := os.Open(from)
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.Create(to)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
}

// TestSyncKilledAnywhereLeavesOldOrNew kills a real `portier sync` with
// SIGKILL at many points of a large sync (while it pulls pages, and while it
// writes the new snapshot) and checks the cache is always exactly the old or
// the new snapshot.
func TestSyncKilledAnywhereLeavesOldOrNew(t *testing.T) {
	const users = 20000
	shape := saltokstest.SiteShape{Users: users, Groups: 100, Locks: 10}
	fake := startFake(t, shape, saltokstest.Options{})
	locks := make([]string, shape.Locks)
	for i := range locks {
		locks[i] = saltokstest.LockID(i)
	}
	s := writeSaltoConfig(t, fake, 0o600, locks, "  page_size: 500\n")

	// The old snapshot.
	_, errOut, code := runPortier(t, nil, "sync", "--config", s.config)
	require.Equal(t, 0, code, errOut)
	template := filepath.Join(t.TempDir(), "old.db")
	copyDB(t, s.db, template)
	oldHash := dumpCache(t, template)

	// Change a lot: block a third, drop 2000, add 2000, move tags.
	for i := 0; i < users; i += 3 {
		fake.UpdateUser(saltokstest.UserID(i), func(u *saltoks.SiteUser) { u.Blocked = true })
	}
	for i := 1; i < users; i += 10 {
		fake.RemoveUser(saltokstest.UserID(i))
	}
	for i := users; i < users+2000; i++ {
		u := saltokstest.Generate(saltokstest.SiteShape{Users: 1}).Users[0]
		tag := saltokstest.TagNumber(i)
		u.ID, u.User.ID, u.User.TagNumber = saltokstest.UserID(i), saltokstest.PlatformID(i), &tag
		fake.AddUser(u)
	}

	// The new snapshot, and how large the WAL grows while it is written.
	copyDB(t, template, s.db)
	maxWAL, code := runKilled(t, s, nil, 0)
	require.Equal(t, 0, code)
	newHash := dumpCache(t, s.db)
	require.NotEqual(t, oldHash, newHash)
	require.Positive(t, maxWAL, "the apply goes through the WAL")

	type point struct {
		name     string
		pageKill int   // kill after serving this many user pages (0: not)
		walKill  int64 // kill once the WAL reached this size (0: not)
	}
	var points []point
	for _, n := range []int{1, 5, 20, 40} {
		points = append(points, point{name: fmt.Sprintf("after user page %d", n), pageKill: n})
	}
	for _, pct := range []int64{1, 10, 25, 40, 55, 70, 85, 95, 100} {
		points = append(points, point{name: fmt.Sprintf("WAL at %d%%", pct), walKill: max(1, maxWAL*pct/100)})
	}
	seen := map[string]int{}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			copyDB(t, template, s.db)
			var cmd atomic.Pointer[exec.Cmd]
			if p.pageKill > 0 {
				fake.Inject(saltokstest.Fault{Kind: saltokstest.After, Path: "/sites/" + saltokstest.GeneratedSiteID + "/users", Skip: p.pageKill - 1,
					Do: func() {
						if c := cmd.Load(); c != nil {
							c.Process.Kill()
						}
					}})
				defer fake.ClearFaults()
			}
			_, _ = runKilled(t, s, &cmd, p.walKill)
			got := dumpCache(t, s.db)
			switch got {
			case oldHash:
				seen["old"]++
			case newHash:
				seen["new"]++
			default:
				t.Fatalf("the cache is neither the old nor the new snapshot")
			}
		})
	}
	t.Logf("outcomes over %d kill points: %v", len(points), seen)
	assert.Positive(t, seen["old"], "some kills came before the commit")
}

// runKilled runs `portier sync`; with walKill > 0 it SIGKILLs the process as
// soon as the WAL file reaches that size. It returns the largest WAL size
// seen and the exit status (-1 when killed).
func runKilled(t *testing.T, s saltoSetup, cmdOut *atomic.Pointer[exec.Cmd], walKill int64) (int64, int) {
	t.Helper()
	cmd := exec.Command(portierBin, "sync", "--config", s.config)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.dir}
	require.NoError(t, cmd.Start())
	if cmdOut != nil {
		cmdOut.Store(cmd)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var maxWAL int64
	for {
		select {
		case <-done:
			return maxWAL, cmd.ProcessState.ExitCode()
		default:
		}
		if st, err := os.Stat(s.db + "-wal"); err == nil {
			maxWAL = max(maxWAL, st.Size())
			if walKill > 0 && st.Size() >= walKill {
				cmd.Process.Kill()
				<-done
				return maxWAL, -1
			}
		}
		runtime.Gosched()
	}
}
