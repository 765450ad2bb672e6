//go:build !linux

package osdp

import (
	"errors"
	"os"
)

var errNotLinux = errors.New("osdp: serial ports are supported on Linux only")

func openPollable(string) (*os.File, error) { return nil, errNotLinux }

type rawIO struct{}

func (p *SerialPort) initRaw() {}

func (p *SerialPort) read([]byte) (int, error) { return 0, errNotLinux }

// Write is not available off Linux.
func (p *SerialPort) Write([]byte) (int, error) { return 0, errNotLinux }

// ResetInputBuffer is not available off Linux.
func (p *SerialPort) ResetInputBuffer() error { return errNotLinux }

// Drain is not available off Linux.
func (p *SerialPort) Drain() error { return errNotLinux }

// SetRTS is not available off Linux.
func (p *SerialPort) SetRTS(bool) error { return errNotLinux }
