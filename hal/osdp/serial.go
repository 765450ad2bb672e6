package osdp

import (
	"fmt"
	"slices"

	"go.bug.st/serial"
)

// Bauds are the line rates OSDP readers use.
var Bauds = []int{9600, 19200, 38400, 57600, 115200, 230400}

// OpenSerial opens a serial device (e.g. /dev/ttyUSB0, /dev/ttyAMA0) at 8N1
// and the given rate. The returned port is a Port and supports RTS
// direction control; Close it when the bus is done.
func OpenSerial(name string, baud int) (serial.Port, error) {
	if !slices.Contains(Bauds, baud) {
		return nil, fmt.Errorf("osdp: baud %d is not one of %v", baud, Bauds)
	}
	p, err := serial.Open(name, &serial.Mode{
		BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit,
	})
	if err != nil {
		return nil, fmt.Errorf("osdp: open %s: %w", name, err)
	}
	return p, nil
}
