package main

import (
	"path/filepath"
	"syscall"

	"github.com/portier-io/portier/cloud/mqtt"
)

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
