package powerfs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FS is a power-cut file system mounted for a test, served by powerfsd.
type FS struct {
	dir, backing string
	cmd          *exec.Cmd
	in           io.WriteCloser
	stderr       *strings.Builder
	replies      chan message
	gone         chan struct{} // powerfsd ended
	reqMu        sync.Mutex    // one request at a time

	mu     sync.Mutex
	deadCh chan struct{}
	cutAt  *Op
}

// New mounts a power-cut file system over a fresh backing directory for the
// test and unmounts it when the test ends, passed or failed (a mount that is
// still busy then is detached, so none is left behind). Without FUSE (no
// /dev/fuse, no permission to mount) the test is skipped — except in CI (CI
// set), where that is a failure: a missing tool must not hide a missing
// test.
func New(t testing.TB, opt Options) *FS {
	t.Helper()
	bin, err := serverBinary()
	if err != nil {
		t.Fatalf("powerfs: %v", err)
	}
	t.Cleanup(releaseServerBinary)
	f := &FS{backing: t.TempDir(), dir: t.TempDir(), stderr: &strings.Builder{}, replies: make(chan message, 1),
		gone: make(chan struct{}), deadCh: make(chan struct{})}
	opts, _ := json.Marshal(opt)
	f.cmd = exec.Command(bin, "-backing", f.backing, "-mount", f.dir, "-options", string(opts))
	f.cmd.Stderr = f.stderr
	if f.in, err = f.cmd.StdinPipe(); err != nil {
		t.Fatalf("powerfs: %v", err)
	}
	out, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("powerfs: %v", err)
	}
	if err := f.cmd.Start(); err != nil {
		t.Fatalf("powerfs: %v", err)
	}
	ready := make(chan error, 1)
	go f.read(out, ready)
	if err := <-ready; err != nil {
		f.cmd.Wait()
		if os.Getenv("CI") != "" {
			t.Fatalf("powerfs: %v (CI must be able to mount FUSE: /dev/fuse, and root or fusermount3)", err)
		}
		t.Skipf("powerfs: FUSE is not available here: %v", err)
	}
	t.Cleanup(func() {
		if err := f.close(); err != nil {
			t.Logf("%v", err) // a process of the test still used it; it is gone all the same
		}
	})
	return f
}

// read dispatches powerfsd's messages until it ends.
func (f *FS) read(out io.Reader, ready chan<- error) {
	defer close(f.gone)
	sc := bufio.NewScanner(out)
	first := true
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue
		}
		switch {
		case first && m.Ready:
			ready <- nil
		case first:
			ready <- errors.New(m.Err)
		case m.Dead:
			f.markDead(m.Op)
		case m.Reply:
			f.replies <- m
		}
		first = false
	}
	if first {
		ready <- fmt.Errorf("powerfsd ended: %s", strings.TrimSpace(f.stderr.String()))
	}
}

func (f *FS) markDead(at *Op) {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.deadCh:
	default:
		f.cutAt = at
		close(f.deadCh)
	}
}

func (f *FS) request(r request) (message, error) {
	f.reqMu.Lock()
	defer f.reqMu.Unlock()
	b, _ := json.Marshal(r)
	if _, err := f.in.Write(append(b, '\n')); err != nil {
		return message{}, fmt.Errorf("powerfs: %s: %w", r.Cmd, err)
	}
	select {
	case m := <-f.replies:
		if m.Err != "" {
			return m, fmt.Errorf("powerfs: %s: %s", r.Cmd, m.Err)
		}
		return m, nil
	case <-f.gone:
		return message{}, fmt.Errorf("powerfs: %s: powerfsd ended: %s", r.Cmd, strings.TrimSpace(f.stderr.String()))
	}
}

// Dir is the mount point.
func (f *FS) Dir() string { return f.dir }

// Backing is the backing directory. Read it between a cut and the next
// power-on (it holds what survived), or put files there that no process
// has opened yet (a copy the mount then serves, without the cost of
// passing through it).
func (f *FS) Backing() string { return f.backing }

// Cut cuts the power now: every later operation fails with EIO, and what
// was not durable is lost at PowerOn.
func (f *FS) Cut() error {
	_, err := f.request(request{Cmd: "cut"})
	if err == nil {
		f.markDead(nil)
	}
	return err
}

// Arm aims a cut at an operation (see Trigger); it replaces an armed one.
func (f *FS) Arm(t Trigger) error {
	_, err := f.request(request{Cmd: "arm", Trigger: &t})
	return err
}

// Disarm removes the armed trigger.
func (f *FS) Disarm() error {
	_, err := f.request(request{Cmd: "arm"})
	return err
}

// Dead is closed when the power is cut (by Cut or a trigger).
func (f *FS) Dead() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deadCh
}

// CutAt returns the operation that cut the power (nil after Cut, or while
// the power is on).
func (f *FS) CutAt() *Op {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cutAt
}

// PowerOn brings the storage back after a cut. Every process that used the
// mount must have ended (they died with the power): the file system is
// unmounted, the backing directory put in the state the model says
// survived, and mounted again.
func (f *FS) PowerOn() error {
	if _, err := f.request(request{Cmd: "poweron"}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deadCh, f.cutAt = make(chan struct{}), nil
	return nil
}

// Stats returns the operation counts since the last power-on. It also
// settles Dead: when the power is cut, Dead is closed when Stats returns.
func (f *FS) Stats() (Stats, error) {
	m, err := f.request(request{Cmd: "stats"})
	if err != nil || m.Stats == nil {
		return Stats{}, err
	}
	if m.Stats.Dead {
		f.markDead(f.CutAt())
	}
	return *m.Stats, nil
}

// close unmounts (detaching a busy mount) and ends powerfsd.
func (f *FS) close() error {
	_, err := f.request(request{Cmd: "unmount"})
	f.in.Close()
	select {
	case <-f.gone:
	case <-time.After(30 * time.Second):
		f.cmd.Process.Kill()
	}
	f.cmd.Wait()
	// Whatever happened above, no mount is left behind.
	if mounted(f.dir) {
		_ = syscall.Unmount(f.dir, syscall.MNT_DETACH)
	}
	return err
}

func mounted(dir string) bool {
	data, err := os.ReadFile("/proc/self/mounts")
	return err == nil && strings.Contains(string(data), " "+dir+" ")
}

// powerfsdBuild is the powerfsd binary, built once per test process while a
// mount uses it (a process-wide cache, like the go tool's own).
var powerfsdBuild struct {
	sync.Mutex
	dir   string
	users int
}

func serverBinary() (string, error) {
	powerfsdBuild.Lock()
	defer powerfsdBuild.Unlock()
	if powerfsdBuild.dir == "" {
		dir, err := os.MkdirTemp("", "powerfsd-")
		if err != nil {
			return "", err
		}
		build := exec.Command("go", "build", "-o", filepath.Join(dir, "powerfsd"), "github.com/portier-io/portier/sqlite/sqlitetest/powerfs/powerfsd")
		if out, err := build.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("build powerfsd: %v: %s", err, out)
		}
		powerfsdBuild.dir = dir
	}
	powerfsdBuild.users++
	return filepath.Join(powerfsdBuild.dir, "powerfsd"), nil
}

func releaseServerBinary() {
	powerfsdBuild.Lock()
	defer powerfsdBuild.Unlock()
	if powerfsdBuild.users--; powerfsdBuild.users == 0 {
		os.RemoveAll(powerfsdBuild.dir)
		powerfsdBuild.dir = ""
	}
}
