package powerfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// model tracks what would survive a power cut (see the package comment).
// Files are known by an id of their own: the backing file system reuses
// inode numbers, while a name that survives may point to a file that is
// long gone. Every method runs under server.mu.
type model struct {
	backing string
	shadow  string // durable contents, one file per id
	nextID  int
	byIno   map[uint64]int     // live backing inode → id
	files   map[int]*fileState // by id
	durable map[string]int     // durable names: path relative to the root → id
}

// fileState is what the model knows about one file.
type fileState struct {
	dirty   []span // written since its last fsync, sorted, disjoint
	minSize int64  // the smallest size it had since its last fsync
	synced  bool   // the shadow file holds its durable content
	mode    os.FileMode
}

// span is the byte range [off, end).
type span struct{ off, end int64 }

// newModel starts from the backing directory as it is: all of it durable.
func newModel(backing string) (*model, error) {
	shadow, err := os.MkdirTemp("", "powerfs-shadow-")
	if err != nil {
		return nil, fmt.Errorf("powerfs: %w", err)
	}
	m := &model{backing: backing, shadow: shadow, byIno: map[uint64]int{}, files: map[int]*fileState{}, durable: map[string]int{}}
	err = filepath.WalkDir(backing, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(backing, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		id := m.newID(info.Sys().(*syscall.Stat_t).Ino, info.Mode().Perm())
		st := m.files[id]
		if err := copyFile(p, m.shadowOf(id), info.Size()); err != nil {
			return err
		}
		st.synced, st.minSize = true, info.Size()
		m.durable[filepath.ToSlash(rel)] = id
		return nil
	})
	if err != nil {
		m.close()
		return nil, fmt.Errorf("powerfs: %w", err)
	}
	return m, nil
}

func (m *model) close() { os.RemoveAll(m.shadow) }

func (m *model) shadowOf(id int) string { return filepath.Join(m.shadow, strconv.Itoa(id)) }

func (m *model) newID(ino uint64, mode os.FileMode) int {
	m.nextID++
	m.byIno[ino] = m.nextID
	m.files[m.nextID] = &fileState{mode: mode}
	return m.nextID
}

// file returns the state of the live file with inode ino; one the model
// has not seen (created behind its back) starts empty.
func (m *model) file(ino uint64) (int, *fileState) {
	id, ok := m.byIno[ino]
	if !ok {
		id = m.newID(ino, 0o600)
	}
	return id, m.files[id]
}

// created registers a new file: nothing of it is durable yet.
func (m *model) created(ino uint64) {
	mode := os.FileMode(0o600)
	m.newID(ino, mode)
}

func (m *model) written(ino uint64, off, n int64) {
	_, st := m.file(ino)
	st.dirty = addSpan(st.dirty, span{off, off + n})
}

func (m *model) truncated(ino uint64, size int64) {
	_, st := m.file(ino)
	st.minSize = min(st.minSize, size)
}

// fsynced makes the file's content durable, and the name rel it was
// reached by.
func (m *model) fsynced(ino uint64, rel string) error {
	id, st := m.file(ino)
	live := filepath.Join(m.backing, rel)
	src, err := os.Open(live)
	if err != nil {
		return nil // no name any more: nothing can find it after a cut
	}
	defer src.Close()
	info, err := src.Stat()
	if err != nil {
		return err
	}
	if info.Sys().(*syscall.Stat_t).Ino != ino {
		return nil // the name is another file's now
	}
	st.mode = info.Mode().Perm()
	size := info.Size()
	dst, err := os.OpenFile(m.shadowOf(id), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer dst.Close()
	if !st.synced {
		st.minSize = 0 // the shadow starts empty
	}
	if err := dst.Truncate(min(st.minSize, size)); err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	for _, s := range st.dirty {
		for off := s.off; off < min(s.end, size); {
			n, err := src.ReadAt(buf[:min(int64(len(buf)), min(s.end, size)-off)], off)
			if n > 0 {
				if _, werr := dst.WriteAt(buf[:n], off); werr != nil {
					return werr
				}
				off += int64(n)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
	}
	if err := dst.Truncate(size); err != nil {
		return err
	}
	st.dirty, st.minSize, st.synced = nil, size, true
	// The name: ext4 commits the file's creation or rename with its fsync.
	rel = filepath.ToSlash(rel)
	for name, other := range m.durable {
		if other == id && name != rel && path.Dir(name) == path.Dir(rel) && !m.liveAs(name, ino) {
			delete(m.durable, name) // the rename away from it is durable too
		}
	}
	m.durable[rel] = id
	return nil
}

// liveAs reports whether the live name rel is the file with inode ino.
func (m *model) liveAs(rel string, ino uint64) bool {
	info, err := os.Lstat(filepath.Join(m.backing, rel))
	return err == nil && info.Sys().(*syscall.Stat_t).Ino == ino
}

// fsyncedDir makes the directory's entries durable as they are now.
func (m *model) fsyncedDir(rel string) error {
	rel = filepath.ToSlash(rel)
	if rel == "" {
		rel = "."
	}
	entries, err := os.ReadDir(filepath.Join(m.backing, rel))
	if err != nil {
		return err
	}
	for name := range m.durable {
		if path.Dir(name) == rel {
			delete(m.durable, name)
		}
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // gone meanwhile
		}
		id, _ := m.file(info.Sys().(*syscall.Stat_t).Ino)
		m.durable[path.Join(rel, e.Name())] = id
	}
	return nil
}

// restore rewrites the backing directory (the mount is gone) to what
// survived: the durable names with their durable contents.
func (m *model) restore() error {
	defer m.close()
	var remove []string
	err := filepath.WalkDir(m.backing, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			remove = append(remove, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("powerfs: restore: %w", err)
	}
	for _, p := range remove {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("powerfs: restore: %w", err)
		}
	}
	names := make([]string, 0, len(m.durable))
	for name := range m.durable {
		names = append(names, name)
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		id := m.durable[name]
		st := m.files[id]
		dst := filepath.Join(m.backing, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if st.synced {
			errs = append(errs, copyFile(m.shadowOf(id), dst, -1))
		} else {
			errs = append(errs, os.WriteFile(dst, nil, 0o600))
		}
		errs = append(errs, os.Chmod(dst, st.mode))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("powerfs: restore: %w", err)
	}
	return nil
}

// addSpan merges s into the sorted, disjoint list.
func addSpan(list []span, s span) []span {
	if s.end <= s.off {
		return list
	}
	// Appends at the end (a WAL, a growing file) are the common case.
	if n := len(list); n > 0 && list[n-1].end >= s.off && list[n-1].off <= s.off {
		list[n-1].end = max(list[n-1].end, s.end)
		return list
	}
	i, _ := slices.BinarySearchFunc(list, s.off, func(x span, off int64) int {
		switch {
		case x.end < off:
			return -1
		case x.off > off:
			return 1
		}
		return 0
	})
	j := i
	for j < len(list) && list[j].off <= s.end {
		s.off, s.end = min(s.off, list[j].off), max(s.end, list[j].end)
		j++
	}
	return slices.Replace(list, i, j, s)
}

// copyFile copies src to dst (created or replaced); size < 0 copies all.
func copyFile(src, dst string, size int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	var r io.Reader = in
	if size >= 0 {
		r = io.LimitReader(in, size)
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
