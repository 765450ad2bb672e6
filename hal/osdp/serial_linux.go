package osdp

import (
	"fmt"
	"os"
	"syscall"
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
