package osdp

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"go.bug.st/serial"
)

// Bauds are the line rates OSDP readers use.
var Bauds = []int{9600, 19200, 38400, 57600, 115200, 230400}

// SerialPort is a serial device as the bus uses it: configured (8N1, raw,
// the baud rate) by go.bug.st/serial, then waited on through Go's poller so
// a goroutine waiting for a reply parks instead of holding a thread in a
// blocking select: that wake-up cost, paid on every poll, dominated the
// bus's idle CPU.
type SerialPort struct {
	// f is what the poller watches: on Linux a private epoll instance
	// that holds the device for input only (see openPort). Every use of
	// the device goes through f's RawConn, so Close cannot pull the
	// descriptor from under a call in flight.
	f       *os.File
	rc      syscall.RawConn
	timeout time.Duration
	raw     rawIO
	closed  atomic.Bool
}

// OpenSerial opens a serial device (e.g. /dev/ttyUSB0, /dev/ttyAMA0) at 8N1
// and the given rate, for exclusive use. Close it when the bus is done.
func OpenSerial(name string, baud int) (*SerialPort, error) {
	if !slices.Contains(Bauds, baud) {
		return nil, fmt.Errorf("osdp: baud %d is not one of %v", baud, Bauds)
	}
	p, err := serial.Open(name, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		return nil, fmt.Errorf("osdp: open %s: %w", name, err)
	}
	// The line settings stay with the device; reopen it non-blocking so
	// reads go through the poller with deadlines.
	if err := p.Close(); err != nil {
		return nil, fmt.Errorf("osdp: open %s: %w", name, err)
	}
	sp, err := openPort(name)
	if err != nil {
		return nil, fmt.Errorf("osdp: open %s: %w", name, err)
	}
	sp.timeout = time.Second
	return sp, nil
}

// Read waits up to the read timeout for bytes; 0, nil when none came.
func (p *SerialPort) Read(b []byte) (int, error) {
	if err := p.f.SetReadDeadline(time.Now().Add(p.timeout)); err != nil {
		return 0, p.closedErr(err)
	}
	n, err := p.read(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, nil
	}
	return n, p.closedErr(err)
}

// closedErr reports a call that failed because Close ran as os.ErrClosed,
// as os.File would (the raw calls give the poller's own error).
func (p *SerialPort) closedErr(err error) error {
	if err != nil && p.closed.Load() {
		return os.ErrClosed
	}
	return err
}

// SetReadTimeout sets how long Read waits.
func (p *SerialPort) SetReadTimeout(d time.Duration) error {
	p.timeout = d
	return nil
}
