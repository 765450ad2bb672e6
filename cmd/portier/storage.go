package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/hal"
)

// minFreeMB is the free space below which doctor fails: the outbox and the
// cache stop when the disk is full.
const minFreeMB = 100

// storageOf describes the filesystem that holds the file at path: what an
// installer or a dashboard needs to see a disk filling up before the outbox
// stops. Nil when it cannot be read.
func storageOf(path string) *mqtt.StoragePayload {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &fs); err != nil || fs.Blocks == 0 {
		return nil
	}
	const mb = 1 << 20
	bsize := uint64(fs.Bsize)
	// Bavail, not Bfree: the blocks reserved for root are not ours to use.
	return &mqtt.StoragePayload{FreeMB: int64(fs.Bavail * bsize / mb), TotalMB: int64(fs.Blocks * bsize / mb)}
}

// storageCheck is doctor's check of the directory that holds the database:
// it exists (or can be created), this user may write there, and the disk
// has room.
func storageCheck(database string) hal.Check {
	dir := filepath.Dir(database)
	c := hal.Check{Name: "storage: " + dir}
	existing, missing := dir, false
	for {
		if _, err := os.Stat(existing); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing, existing = true, filepath.Dir(existing)
	}
	if !missing {
		f, err := os.CreateTemp(dir, ".portier-doctor-*")
		if err != nil {
			c.Detail = "not writable: " + err.Error()
			c.Fix = "run doctor as the user the agent runs as (portier), and give it write access to " + dir + " (the packaged unit's StateDirectory= does)"
			return c
		}
		f.Close()
		os.Remove(f.Name())
	}
	s := storageOf(filepath.Join(existing, "x"))
	if s == nil {
		c.Detail = "cannot read the free space of " + existing
		return c
	}
	c.Detail = fmt.Sprintf("%d MB free of %d MB", s.FreeMB, s.TotalMB)
	if missing {
		c.Detail = "does not exist yet (portier run creates it); " + c.Detail
	}
	if s.FreeMB < minFreeMB {
		c.Fix = fmt.Sprintf("free space on this filesystem (at least %d MB): events stop being recorded when it is full", minFreeMB)
		return c
	}
	c.OK = true
	return c
}
