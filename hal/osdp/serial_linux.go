package osdp

import (
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
	drainWait = 1 // TCSBRK with a non-zero argument is tcdrain
)

func openPollable(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if err := ioctl(f, tiocexcl, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("exclusive access: %w", err)
	}
	return f, nil
}

// The descriptor is non-blocking, so reading and writing it never blocks:
// both go as raw system calls, waiting for the line through the poller.
// An ordinary system call (entersyscall) wakes the runtime's sysmon from its
// deep sleep into a burst of 20 µs sleeps; with two or three of them per
// poll that burst was most of an idle bus's CPU.

// rawIO is the state of the raw read and write callbacks, kept with the
// port and the callbacks made once, so that a poll allocates nothing.
type rawIO struct {
	buf     []byte
	n       int
	errno   syscall.Errno
	readFn  func(fd uintptr) bool
	writeFn func(fd uintptr) bool
}

func (p *SerialPort) initRaw() {
	p.raw.readFn = p.readRaw
	p.raw.writeFn = p.writeRaw
}

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

func (p *SerialPort) readRaw(fd uintptr) bool {
	b := p.raw.buf
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
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

// Write sends b.
func (p *SerialPort) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	p.raw.buf, p.raw.n, p.raw.errno = b, 0, 0
	err := p.rc.Write(p.raw.writeFn)
	n, errno := p.raw.n, p.raw.errno
	p.raw.buf = nil
	if err == nil && errno != 0 {
		err = errno
	}
	return n, p.closedErr(err)
}

func (p *SerialPort) writeRaw(fd uintptr) bool {
	b := p.raw.buf
	for p.raw.n < len(b) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[p.raw.n])), uintptr(len(b)-p.raw.n))
		switch e {
		case 0:
			p.raw.n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // the UART's buffer is full: wait for room
		default:
			p.raw.errno = e
			return true
		}
	}
	return true
}

func ioctl(f *os.File, req, arg uintptr) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, req, arg)
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// ResetInputBuffer drops received bytes not yet read (TCFLSH, TCIFLUSH).
func (p *SerialPort) ResetInputBuffer() error { return ioctl(p.f, tcflsh, tciflush) }

// Drain waits until the UART has sent every written byte (tcdrain).
func (p *SerialPort) Drain() error { return ioctl(p.f, tcsbrk, drainWait) }

// SetRTS drives the RTS line, for RS-485 direction control.
func (p *SerialPort) SetRTS(on bool) error {
	bits := int32(tiocmRTS)
	req := uintptr(tiocmbic)
	if on {
		req = tiocmbis
	}
	return ioctl(p.f, req, uintptr(unsafe.Pointer(&bits)))
}
