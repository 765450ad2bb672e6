package powerfs

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a loopback node whose writes, truncations, fsyncs and name
// changes go through the power switch and the durability model. Reads and
// lookups pass through unchanged.
type node struct {
	*fs.LoopbackNode
	p *server
}

var (
	_ fs.NodeWrapChilder    = (*node)(nil)
	_ fs.NodeWriter         = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeAllocater      = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
)

// WrapChild makes every node of the tree a power-switched one.
func (n *node) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), p: n.p}
}

// rel is the node's path relative to the mount's root.
func (n *node) rel() string { return n.Path(nil) }

func (n *node) child(name string) string { return path.Join(n.rel(), name) }

func (n *node) ino() uint64 { return n.StableAttr().Ino }

func (n *node) isDir() bool { return n.StableAttr().Mode&syscall.S_IFMT == syscall.S_IFDIR }

// backingPath is where the node's file lives in the backing directory.
func (n *node) backingPath(rel string) string { return filepath.Join(n.p.backing, rel) }

func (n *node) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	p := n.p
	if e := p.op(Op{Kind: OpWrite, Path: n.rel(), Off: off, Len: int64(len(data))}); e != 0 {
		return 0, e
	}
	w, ok := f.(fs.FileWriter)
	if !ok {
		return 0, syscall.EBADF
	}
	written, errno := w.Write(ctx, data, off)
	p.mu.Lock()
	p.stats.Writes++
	p.stats.WriteBytes += int64(written)
	if p.model != nil && written > 0 {
		p.model.written(n.ino(), off, int64(written))
	}
	p.mu.Unlock()
	return written, errno
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	p := n.p
	size, resize := in.GetSize()
	o := Op{Kind: OpTruncate, Path: n.rel(), Off: int64(size)}
	if !resize {
		o = Op{} // mode, owner, times: only the power matters
	}
	if e := p.guard(o); e != 0 {
		return e
	}
	errno := n.LoopbackNode.Setattr(ctx, f, in, out)
	if resize && errno == 0 {
		p.mu.Lock()
		p.stats.Truncations++
		if p.model != nil {
			p.model.truncated(n.ino(), int64(size))
		}
		p.mu.Unlock()
	}
	return errno
}

func (n *node) Allocate(ctx context.Context, f fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	p := n.p
	if e := p.op(Op{Kind: OpWrite, Path: n.rel(), Off: int64(off), Len: int64(size)}); e != 0 {
		return e
	}
	a, ok := f.(fs.FileAllocater)
	if !ok {
		return syscall.ENOTSUP
	}
	errno := a.Allocate(ctx, off, size, mode)
	if errno == 0 {
		p.mu.Lock()
		if p.model != nil {
			p.model.written(n.ino(), int64(off), int64(size))
		}
		p.mu.Unlock()
	}
	return errno
}

// CopyFileRange is refused, so the kernel copies through reads and writes
// the model sees.
func (n *node) CopyFileRange(context.Context, fs.FileHandle, uint64, *fs.Inode, fs.FileHandle, uint64, uint64, uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if n.isDir() {
		return n.p.fsyncDir(n.rel())
	}
	return n.p.fsyncFile(n.rel(), n.ino())
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	p := n.p
	trunc := flags&syscall.O_TRUNC != 0
	o := Op{}
	if trunc {
		o = Op{Kind: OpTruncate, Path: n.rel()}
	}
	if e := p.guard(o); e != 0 {
		return nil, 0, e
	}
	fh, ff, errno := n.LoopbackNode.Open(ctx, flags)
	fh, ff = noPassthrough(fh), ff|fuse.FOPEN_KEEP_CACHE
	if errno == 0 && trunc {
		p.mu.Lock()
		if p.model != nil {
			p.model.truncated(n.ino(), 0)
		}
		p.mu.Unlock()
	}
	return fh, ff, errno
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	p := n.p
	rel := n.child(name)
	if e := p.op(Op{Kind: OpCreate, Path: rel}); e != 0 {
		return nil, nil, 0, e
	}
	// CREATE also opens a file that exists already: it keeps its identity.
	_, statErr := os.Lstat(n.backingPath(rel))
	existed := statErr == nil
	ch, fh, ff, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	fh, ff = noPassthrough(fh), ff|fuse.FOPEN_KEEP_CACHE
	if errno == 0 {
		p.mu.Lock()
		if p.model != nil {
			ino := ch.StableAttr().Ino
			switch {
			case !existed:
				p.model.created(ino)
			case flags&syscall.O_TRUNC != 0:
				p.model.truncated(ino, 0)
			}
		}
		p.mu.Unlock()
	}
	return ch, fh, ff, errno
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if e := n.p.op(Op{Kind: OpUnlink, Path: n.child(name)}); e != 0 {
		return e
	}
	return n.LoopbackNode.Unlink(ctx, name)
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if e := n.p.op(Op{Kind: OpRename, Path: n.child(name)}); e != 0 {
		return e
	}
	if np, ok := newParent.(*node); ok {
		newParent = np.LoopbackNode
	}
	return n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.p.guard(Op{}); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Mkdir(ctx, name, mode, out)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if e := n.p.guard(Op{}); e != 0 {
		return e
	}
	return n.LoopbackNode.Rmdir(ctx, name)
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.p.guard(Op{}); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.p.guard(Op{}); e != 0 {
		return nil, e
	}
	if t, ok := target.(*node); ok {
		target = t.LoopbackNode
	}
	return n.LoopbackNode.Link(ctx, target, name, out)
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.p.guard(Op{}); e != 0 {
		return nil, e
	}
	return n.LoopbackNode.Symlink(ctx, target, name, out)
}

// fileHandle is an open loopback file that the kernel may not bypass:
// with FUSE passthrough, reads and writes would go to the backing file
// directly, unseen by the model.
type fileHandle struct{ *fs.LoopbackFile }

// PassthroughFd refuses passthrough.
func (fileHandle) PassthroughFd() (int, bool) { return 0, false }

func noPassthrough(fh fs.FileHandle) fs.FileHandle {
	if lf, ok := fh.(*fs.LoopbackFile); ok {
		return fileHandle{lf}
	}
	return fh
}

// OpendirHandle opens a directory with a handle whose fsync goes through
// the model.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ds, errno := fs.NewLoopbackDirStream(n.backingPath(n.rel()))
	if errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{DirStream: ds, n: n}, 0, 0
}

// dirHandle is an open directory.
type dirHandle struct {
	fs.DirStream
	n *node
}

var (
	_ fs.FileFsyncdirer   = (*dirHandle)(nil)
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
	_ fs.FileReleasedirer = (*dirHandle)(nil)
)

func (d *dirHandle) Fsyncdir(context.Context, uint32) syscall.Errno {
	return d.n.p.fsyncDir(d.n.rel())
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if r, ok := d.DirStream.(fs.FileReaddirenter); ok {
		return r.Readdirent(ctx)
	}
	if !d.HasNext() {
		return nil, 0
	}
	e, errno := d.Next()
	return &e, errno
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if s, ok := d.DirStream.(fs.FileSeekdirer); ok {
		return s.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	if r, ok := d.DirStream.(fs.FileReleasedirer); ok {
		r.Releasedir(ctx, flags)
		return
	}
	d.Close()
}

// fsyncFile flushes a file: after the card's delay its content (and the
// name it is reached by) are durable — unless the power went meanwhile.
func (f *server) fsyncFile(rel string, ino uint64) syscall.Errno {
	return f.flush(Op{Kind: OpFsync, Path: rel}, &f.stats.Fsyncs, func(m *model) error { return m.fsynced(ino, rel) })
}

// fsyncDir flushes a directory: after the delay its entries are durable as
// they are now.
func (f *server) fsyncDir(rel string) syscall.Errno {
	return f.flush(Op{Kind: OpFsyncDir, Path: rel}, &f.stats.FsyncDirs, func(m *model) error { return m.fsyncedDir(rel) })
}

// flush is an fsync: the power check, the card's delay, then (if the power
// held) the count and what the model makes durable.
func (f *server) flush(o Op, count *int64, durable func(*model) error) syscall.Errno {
	if e := f.op(o); e != 0 {
		return e
	}
	f.flushDelay()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead {
		return syscall.EIO
	}
	*count++
	if f.model != nil {
		if err := durable(f.model); err != nil {
			return fs.ToErrno(err)
		}
	}
	return 0
}
