//go:build !linux

package osdp

import (
	"errors"
)

var errNotLinux = errors.New("osdp: serial ports are supported on Linux only")

type rawIO struct{}

func openPort(string) (*SerialPort, error) { return nil, errNotLinux }

func (p *SerialPort) read([]byte) (int, error) { return 0, errNotLinux }

// Close is not available off Linux.
func (p *SerialPort) Close() error { return errNotLinux }

// Write is not available off Linux.
func (p *SerialPort) Write([]byte) (int, error) { return 0, errNotLinux }

// ResetInputBuffer is not available off Linux.
func (p *SerialPort) ResetInputBuffer() error { return errNotLinux }

// Drain is not available off Linux.
func (p *SerialPort) Drain() error { return errNotLinux }

// SetRTS is not available off Linux.
func (p *SerialPort) SetRTS(bool) error { return errNotLinux }
