// Package powerfs is a FUSE file system for tests that behaves like a
// gateway's storage: a pass-through to a backing directory that can delay
// every fsync (an SD card takes milliseconds per flush) and cut the power,
// after which everything that was not fsynced is gone. Tests run the real
// agent on it, cut the power at chosen points and start the agent again on
// what is left.
//
// The file system is served by a small process of its own (powerfsd, built
// on first use), never by the test process: a process that is a client of
// its own FUSE mount can hang forever when it exits with files open there.
// When the test process goes away, powerfsd detaches the mount.
//
// # The durability model
//
// The model is the pessimistic end of what ext4 (data=ordered, delayed
// allocation) may leave after a power failure:
//
//   - A file's content is what it was at its last fsync or fdatasync: every
//     write, truncation or extension since then is lost. A file never
//     fsynced has no content (length zero) if its name survives.
//   - A name (create, unlink, rename, link) survives only once it was made
//     durable: by an fsync of its directory, which makes the directory's
//     entries exactly what they are at that moment, or by an fsync of the
//     file itself, which makes the name it is reached by durable (ext4
//     commits the creating or renaming transaction with the file's fsync).
//     An unlink not followed by an fsync of the directory is undone.
//   - An fsync that is still running (delayed) when the power goes makes
//     nothing durable, and fails. Writes are not torn: a write that had not
//     been fsynced is lost whole.
//   - Directories themselves, symlinks, devices and sockets are not
//     modelled: directories survive as they are, the others are removed.
//
// A real card may keep more than this (any unsynced page can have reached
// the flash, in any order); software that is correct under this model can
// still trust only what it fsynced.
//
// Reads and writes never bypass the server (no FUSE passthrough); locks are
// left to the kernel, so they work across the processes that use the mount
// as on a local file system.
package powerfs

import (
	"fmt"
	"time"
)

// Options configure a mount.
type Options struct {
	// FsyncDelay is added to every fsync and fdatasync, of files and of
	// directories: the time the card takes to flush. Flushes are served one
	// at a time, like one card.
	FsyncDelay time.Duration `json:"fsync_delay"`
	// PowerCut tracks what is durable so that the power can be cut.
	// Without it the file system only passes through (and delays fsyncs).
	PowerCut bool `json:"power_cut"`
}

// OpKind names a file system operation a cut can be aimed at.
type OpKind int

// Operations.
const (
	OpWrite    OpKind = iota + 1 // data written to a file
	OpTruncate                   // a file's size set
	OpFsync                      // fsync or fdatasync of a file
	OpFsyncDir                   // fsync of a directory
	OpCreate                     // a file created
	OpUnlink                     // a name removed
	OpRename                     // a name moved
)

func (k OpKind) String() string {
	return map[OpKind]string{OpWrite: "write", OpTruncate: "truncate", OpFsync: "fsync", OpFsyncDir: "fsyncdir",
		OpCreate: "create", OpUnlink: "unlink", OpRename: "rename"}[k]
}

// Op is one operation. Path is relative to the mount's root.
type Op struct {
	Kind OpKind `json:"kind"`
	Path string `json:"path"`
	Off  int64  `json:"off,omitempty"` // OpWrite: offset; OpTruncate: new size
	Len  int64  `json:"len,omitempty"` // OpWrite: bytes
}

func (o Op) String() string {
	switch o.Kind {
	case OpWrite:
		return fmt.Sprintf("%s %s [%d,+%d)", o.Kind, o.Path, o.Off, o.Len)
	case OpTruncate:
		return fmt.Sprintf("%s %s to %d", o.Kind, o.Path, o.Off)
	}
	return o.Kind.String() + " " + o.Path
}

// Trigger aims a power cut at an operation: the After-th operation (1: the
// first) of kind Kind (0: any) on Path (exact, relative to the root; "":
// any) cuts the power, and fails. With Run set, only writes count that are
// at least the Run-th write to their file since its last fsync: a cut in a
// long burst, e.g. a big transaction's commit rather than a small one's.
type Trigger struct {
	Kind  OpKind `json:"kind,omitempty"`
	Path  string `json:"path,omitempty"`
	After int    `json:"after"`
	Run   int    `json:"run,omitempty"`
}

func (t *Trigger) matches(o Op, run int) bool {
	return (t.Kind == 0 || t.Kind == o.Kind) && (t.Path == "" || t.Path == o.Path) && (t.Run == 0 || o.Kind == OpWrite && run >= t.Run)
}

func (t Trigger) String() string {
	k, p := "operation", "any file"
	if t.Run > 0 {
		k = fmt.Sprintf("write (from the %d-th since an fsync)", t.Run)
	}
	if t.Kind != 0 {
		k = t.Kind.String()
	}
	if t.Path != "" {
		p = t.Path
	}
	return fmt.Sprintf("%s #%d on %s", k, t.After, p)
}

// Stats counts operations since the last power-on (Cuts: since the mount).
type Stats struct {
	Writes      int64 `json:"writes"`
	WriteBytes  int64 `json:"write_bytes"`
	Fsyncs      int64 `json:"fsyncs"` // of files
	FsyncDirs   int64 `json:"fsync_dirs"`
	Truncations int64 `json:"truncations"`
	LongestRun  int   `json:"longest_run"` // most writes to one file between two of its fsyncs
	Flushing    int   `json:"flushing"`    // fsyncs waiting for the card now
	Cuts        int   `json:"cuts"`
	Dead        bool  `json:"dead"` // the power is cut now
}
