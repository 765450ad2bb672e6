//go:build !linux

package osdp

import (
	"errors"
	"os"
)

var errNotLinux = errors.New("osdp: serial ports are supported on Linux only")

func openPollable(string) (*os.File, error) { return nil, errNotLinux }

// ResetInputBuffer is not available off Linux.
func (p *SerialPort) ResetInputBuffer() error { return errNotLinux }

// Drain is not available off Linux.
func (p *SerialPort) Drain() error { return errNotLinux }

// SetRTS is not available off Linux.
func (p *SerialPort) SetRTS(bool) error { return errNotLinux }
