package powerfs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// server is the mounted file system, in the powerfsd process.
type server struct {
	opt     Options
	backing string
	mnt     string
	fuse    *fuse.Server
	onDead  func(*Op) // told (outside the lock) when the power goes

	card sync.Mutex // one flush at a time

	mu      sync.Mutex
	dead    bool
	deadCh  chan struct{}
	trigger *Trigger
	matched int            // operations the trigger matched so far
	runs    map[string]int // writes to each file since its last fsync
	stats   Stats
	model   *model // nil without Options.PowerCut
	cuts    int
}

func newServer(backing, mnt string, opt Options) (*server, error) {
	backing, err := filepath.Abs(backing)
	if err != nil {
		return nil, err
	}
	s := &server{opt: opt, backing: backing, mnt: mnt, onDead: func(*Op) {}}
	if err := s.mount(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *server) mount() error {
	s.mu.Lock()
	s.dead, s.deadCh, s.trigger, s.matched, s.stats, s.runs = false, make(chan struct{}), nil, 0, Stats{}, map[string]int{}
	if s.opt.PowerCut {
		m, err := newModel(s.backing)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		s.model = m
	}
	s.mu.Unlock()
	lr, err := fs.NewLoopbackRoot(s.backing)
	if err != nil {
		return fmt.Errorf("powerfs: %w", err)
	}
	root := &node{LoopbackNode: lr.(*fs.LoopbackNode), p: s}
	// Every change goes through this mount, and the model rewrites the
	// backing directory only between mounts: the kernel may cache names,
	// attributes and pages (a card's reads come from the page cache too),
	// and must not drop its pages because the backing file's mtime moved.
	second := time.Second
	opts := &fs.Options{
		EntryTimeout: &second, AttrTimeout: &second, NegativeTimeout: &second,
		MountOptions: fuse.MountOptions{
			FsName: "powerfs", Name: "powerfs",
			ExplicitDataCacheControl: true,
			// ENOSYS once, instead of a GETXATTR round trip for
			// security.capability before every write.
			DisableXAttrs: true,
			// As root, mount(2) and umount(2) directly (fusermount3 only
			// where that fails).
			DirectMount: os.Geteuid() == 0,
			// Locks stay in the kernel (no EnableLocks): correct across
			// the processes using the mount.
		},
	}
	srv, err := fs.Mount(s.mnt, root, opts)
	if err != nil {
		return fmt.Errorf("powerfs: mount %s: %w", s.mnt, err)
	}
	s.fuse = srv
	return nil
}

func (s *server) cut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cutLocked(nil)
}

func (s *server) cutLocked(at *Op) {
	if s.dead {
		return
	}
	s.dead, s.trigger = true, nil
	s.cuts++
	close(s.deadCh)
	go s.onDead(at)
}

func (s *server) arm(t *Trigger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trigger, s.matched = t, 0
}

// powerOn unmounts (the processes that used the mount died with the
// power), restores what survived and mounts again.
func (s *server) powerOn() error {
	s.mu.Lock()
	dead := s.dead
	s.mu.Unlock()
	if !dead {
		return errors.New("powerfs: the power is on: cut it first")
	}
	if err := s.unmount(5 * time.Second); err != nil {
		return err
	}
	if s.model != nil {
		if err := s.model.restore(); err != nil {
			return err
		}
	}
	return s.mount()
}

// unmount unmounts, waiting up to wait for a busy mount to be let go.
func (s *server) unmount(wait time.Duration) error {
	if s.fuse == nil {
		return nil
	}
	// Server.Unmount itself retries for about 0.3 s: a process that just
	// died may hold the mount for a moment.
	var err error
	for deadline := time.Now().Add(wait); ; {
		if err = s.fuse.Unmount(); err == nil {
			s.fuse.Wait()
			s.fuse = nil
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
	}
	return fmt.Errorf("powerfs: unmount %s: %w", s.mnt, err)
}

// detach unmounts even a busy mount.
func (s *server) detach() {
	if s.fuse != nil && s.fuse.Unmount() != nil {
		_ = syscall.Unmount(s.mnt, syscall.MNT_DETACH)
	}
	s.fuse = nil
	if s.model != nil {
		s.model.close()
	}
}

// op checks an operation against the power: EIO once it is cut, and the
// operation that trips the trigger cuts it.
func (s *server) op(o Op) syscall.Errno {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opLocked(o)
}

func (s *server) opLocked(o Op) syscall.Errno {
	if s.dead {
		return syscall.EIO
	}
	switch o.Kind {
	case OpWrite:
		s.runs[o.Path]++
		s.stats.LongestRun = max(s.stats.LongestRun, s.runs[o.Path])
	case OpFsync:
		s.runs[o.Path] = 0
	}
	if t := s.trigger; t != nil && t.matches(o, s.runs[o.Path]) {
		s.matched++
		if s.matched >= t.After {
			s.cutLocked(&o)
			return syscall.EIO
		}
	}
	return 0
}

// guard is op for operations a trigger may aim at (Kind set), and a bare
// power check for the others.
func (s *server) guard(o Op) syscall.Errno {
	if o.Kind == 0 {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.dead {
			return syscall.EIO
		}
		return 0
	}
	return s.op(o)
}

// flushDelay is the card's flush time; flushes queue behind each other. It
// ends early when the power goes (the flush then fails).
func (s *server) flushDelay() {
	if s.opt.FsyncDelay <= 0 {
		return
	}
	s.mu.Lock()
	s.stats.Flushing++
	dead := s.deadCh
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.stats.Flushing--
		s.mu.Unlock()
	}()
	s.card.Lock()
	defer s.card.Unlock()
	t := time.NewTimer(s.opt.FsyncDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-dead:
	}
}

// Protocol between New (the test) and Serve (powerfsd): one JSON object per
// line each way. The test sends requests one at a time and reads a reply
// for each; the server also sends a "dead" message when the power goes.
type request struct {
	Cmd     string   `json:"cmd"` // cut, arm, poweron, stats, unmount
	Trigger *Trigger `json:"trigger,omitempty"`
}

type message struct {
	Reply bool   `json:"reply,omitempty"`
	Err   string `json:"err,omitempty"`
	Ready bool   `json:"ready,omitempty"`
	Dead  bool   `json:"dead,omitempty"`
	Op    *Op    `json:"op,omitempty"` // with Dead: the operation that cut the power
	Stats *Stats `json:"stats,omitempty"`
}

// Serve mounts backing on mnt and serves the mount until in ends or asks to
// unmount (powerfsd's main). When the test process goes away without
// unmounting, the mount is detached.
func Serve(in io.Reader, out io.Writer, backing, mnt string, opt Options) error {
	var wmu sync.Mutex
	enc := json.NewEncoder(out)
	send := func(m message) {
		wmu.Lock()
		defer wmu.Unlock()
		_ = enc.Encode(m)
	}
	s, err := newServer(backing, mnt, opt)
	if err != nil {
		send(message{Reply: true, Err: err.Error()})
		return err
	}
	s.onDead = func(at *Op) { send(message{Dead: true, Op: at}) }
	send(message{Ready: true})
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		var r request
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			send(message{Reply: true, Err: err.Error()})
			continue
		}
		reply := message{Reply: true}
		switch r.Cmd {
		case "cut":
			s.cut()
		case "arm":
			s.arm(r.Trigger)
		case "poweron":
			if err := s.powerOn(); err != nil {
				reply.Err = err.Error()
			}
		case "stats":
			s.mu.Lock()
			st := s.stats
			st.Cuts, st.Dead = s.cuts, s.dead
			s.mu.Unlock()
			reply.Stats = &st
		case "unmount":
			err := s.unmount(time.Second)
			if s.model != nil {
				s.model.close()
			}
			if err != nil {
				s.detach()
				reply.Err = "still in use, detached: " + err.Error()
			}
			send(reply)
			return nil
		default:
			reply.Err = "unknown command " + r.Cmd
		}
		send(reply)
	}
	s.detach()
	return errors.New("powerfs: the test went away without unmounting; mount detached")
}
