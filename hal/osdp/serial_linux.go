package osdp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// Linux tty ioctls, the same numbers on amd64, arm and arm64 (not all are
// in package syscall for every architecture).
const (
	tcsbrk    = 0x5409
	tcflsh    = 0x540B
	tiocexcl  = 0x540C
	tiocmbis  = 0x5416
	tiocmbic  = 0x5417
	tiocmRTS  = 0x004
	tciflush  = 0
	drainWait = 1       // TCSBRK with a non-zero argument is tcdrain
	epollET   = 1 << 31 // syscall.EPOLLET is a negative int
)

// rawIO is the device's descriptor and the state of the raw read and write
// callbacks, kept with the port and the callbacks made once, so that a poll
// allocates nothing.
type rawIO struct {
	fd      int
	buf     []byte
	n       int
	errno   syscall.Errno
	readFn  func(uintptr) bool
	writeFn func(uintptr)
}

// openPort opens the device non-blocking and for exclusive use, and hands
// it to Go's poller through a private epoll instance that watches it for
// input only. Registered directly, the device would also wake the poller
// for output: once when the command has left the transmit buffer, before
// the reply comes, a wasted wake-up of the whole scheduler on every poll.
func openPort(name string) (*SerialPort, error) {
	fd, err := syscall.Open(name, syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), tiocexcl, 0); e != 0 {
		syscall.Close(fd)
		return nil, fmt.Errorf("exclusive access: %w", e)
	}
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	// Edge-triggered: every arrival of bytes (or a hang-up) wakes the
	// poller once; whoever reads always tries the device first.
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(fd)}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		syscall.Close(ep)
		syscall.Close(fd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if err := syscall.SetNonblock(ep, true); err != nil { // so os.NewFile uses the poller
		syscall.Close(ep)
		syscall.Close(fd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	f := os.NewFile(uintptr(ep), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		syscall.Close(fd)
		return nil, err
	}
	p := &SerialPort{f: f, rc: rc}
	p.raw.fd = fd
	p.raw.readFn = p.readRaw
	p.raw.writeFn = p.writeRaw
	return p, nil
}

// Close releases the device. Closing f first waits for any call in flight
// on it (a non-blocking os.File's Close does), so the device's descriptor
// is unused when it goes.
func (p *SerialPort) Close() error {
	if p.closed.Swap(true) {
		return os.ErrClosed
	}
	return errors.Join(p.f.Close(), syscall.Close(p.raw.fd))
}

// The device is non-blocking, so reading and writing it never blocks: both
// go as raw system calls. An ordinary system call (entersyscall) wakes the
// runtime's sysmon from its deep sleep into a burst of 20 µs sleeps; with
// two or three of them per poll that burst was most of an idle bus's CPU.

// read reads what the line holds, waiting for the first byte until the
// read deadline.
func (p *SerialPort) read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	p.raw.buf, p.raw.n, p.raw.errno = b, 0, 0
	// RawRead clears the poller's readiness before its first call of
	// readFn, so readFn must always try the read: bytes that came in
	// before (a fast reply) would otherwise wait for the deadline.
	err := p.rc.Read(p.raw.readFn)
	n, errno := p.raw.n, p.raw.errno
	p.raw.buf = nil
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, errno
	case n == 0:
		return 0, io.EOF // hang-up
	}
	return n, nil
}

func (p *SerialPort) readRaw(uintptr) bool {
	b := p.raw.buf
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(p.raw.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait for the line
		case 0:
			p.raw.n = int(r)
		default:
			p.raw.errno = e
		}
		return true
	}
}

// Gap waits d (at most a few character times: 2 ms at 9600 baud) before
// the next frame. The thread sleeps in the kernel and keeps its P: waking
// a parked goroutine for so short a wait (a timer, the netpoller, another
// thread woken to spin) took several context switches, the larger part of
// a poll's CPU at 115200 baud.
func (p *SerialPort) Gap(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(min(d, maxGap)))
	for {
		_, _, e := syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), uintptr(unsafe.Pointer(&ts)), 0)
		if e != syscall.EINTR {
			return
		}
	}
}

// maxGap bounds Gap: two character times at the slowest rate, with room.
const maxGap = 5 * time.Millisecond

// writeFull bounds how long Write waits for room in the transmit buffer
// (4 KiB or more, against frames of at most 512 bytes: it is never full in
// practice).
const writeFull = time.Second

// Write sends b.
func (p *SerialPort) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	p.raw.buf, p.raw.n, p.raw.errno = b, 0, 0
	defer func() { p.raw.buf = nil }()
	for waited := time.Duration(0); ; waited += time.Millisecond {
		if err := p.rc.Control(p.raw.writeFn); err != nil {
			return p.raw.n, p.closedErr(err)
		}
		switch {
		case p.raw.errno == syscall.EAGAIN && waited < writeFull:
			// The device is not watched for output: wait a little.
			p.raw.errno = 0
			time.Sleep(time.Millisecond)
		case p.raw.errno != 0:
			return p.raw.n, p.raw.errno
		default:
			return p.raw.n, nil
		}
	}
}

func (p *SerialPort) writeRaw(uintptr) {
	b := p.raw.buf
	for p.raw.n < len(b) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(p.raw.fd), uintptr(unsafe.Pointer(&b[p.raw.n])), uintptr(len(b)-p.raw.n))
		switch e {
		case 0:
			p.raw.n += int(r)
		case syscall.EINTR:
		default:
			p.raw.errno = e
			return
		}
	}
}

// ioctl runs a tty ioctl on the device.
func (p *SerialPort) ioctl(req, arg uintptr) error {
	var errno syscall.Errno
	if err := p.rc.Control(func(uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, uintptr(p.raw.fd), req, arg)
	}); err != nil {
		return p.closedErr(err)
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// ResetInputBuffer drops received bytes not yet read (TCFLSH, TCIFLUSH).
func (p *SerialPort) ResetInputBuffer() error { return p.ioctl(tcflsh, tciflush) }

// Drain waits until the UART has sent every written byte (tcdrain).
func (p *SerialPort) Drain() error { return p.ioctl(tcsbrk, drainWait) }

// SetRTS drives the RTS line, for RS-485 direction control.
func (p *SerialPort) SetRTS(on bool) error {
	bits := int32(tiocmRTS)
	req := uintptr(tiocmbic)
	if on {
		req = tiocmbis
	}
	return p.ioctl(req, uintptr(unsafe.Pointer(&bits)))
}
