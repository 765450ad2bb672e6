package mfrc522sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"github.com/portier-io/portier/hal/mfrc522/mfrc522sim"
	"github.com/portier-io/portier/hal/simtime"
)

func connect(t *testing.T) (*mfrc522sim.Chip, spi.Conn, *simtime.Clock) {
	t.Helper()
	clock := simtime.New()
	chip := mfrc522sim.New(mfrc522sim.Config{Clock: clock})
	c, err := chip.Connect(4*physic.MegaHertz, spi.Mode0, 8)
	require.NoError(t, err)
	return chip, c, clock
}

func write(t *testing.T, c spi.Conn, reg byte, v ...byte) {
	t.Helper()
	require.NoError(t, c.Tx(append([]byte{reg << 1}, v...), nil))
}

func read(t *testing.T, c spi.Conn, reg byte) byte {
	t.Helper()
	r := make([]byte, 2)
	require.NoError(t, c.Tx([]byte{0x80 | reg<<1, 0}, r))
	return r[1]
}

func TestConnect(t *testing.T) {
	chip := mfrc522sim.New(mfrc522sim.Config{})
	_, err := chip.Connect(20*physic.MegaHertz, spi.Mode0, 8)
	assert.Error(t, err, "above 10 MHz")
	_, err = chip.Connect(physic.MegaHertz, spi.Mode3, 8)
	assert.Error(t, err, "wrong mode")
	_, err = chip.Connect(physic.MegaHertz, spi.Mode0, 8)
	require.NoError(t, err)
	_, err = chip.Connect(physic.MegaHertz, spi.Mode0, 8)
	assert.Error(t, err, "Connect twice")
}

func TestFraming(t *testing.T) {
	_, c, clock := connect(t)
	assert.Equal(t, byte(0x92), read(t, c, 0x37), "version register")
	assert.Error(t, c.Tx([]byte{0x80 | 0x37<<1, 0}, make([]byte, 1)), "full duplex needs equal lengths")
	// Burst read: each MOSI byte names the next register.
	r := make([]byte, 3)
	start := clock.Now()
	require.NoError(t, c.Tx([]byte{0x80 | 0x37<<1, 0x80 | 0x14<<1, 0}, r))
	assert.Equal(t, []byte{0x92, 0x80}, r[1:])
	assert.Equal(t, 15*time.Microsecond+6*time.Microsecond, clock.Since(start), "overhead + 24 bits at 4 MHz")
}

func TestInterruptSetClearSemantics(t *testing.T) {
	_, c, _ := connect(t)
	write(t, c, 0x04, 0x7F) // bit 7 = 0: clear the marked bits
	assert.Equal(t, byte(0x00), read(t, c, 0x04))
	write(t, c, 0x04, 0x80|0x21) // bit 7 = 1: set them
	assert.Equal(t, byte(0x21), read(t, c, 0x04))
	write(t, c, 0x04, 0x01)
	assert.Equal(t, byte(0x20), read(t, c, 0x04))
}

func TestCRCUnit(t *testing.T) {
	chip, c, clock := connect(t)
	chip.SetFaults(mfrc522sim.Faults{CRCDelay: time.Millisecond})
	write(t, c, 0x0A, 0x80)       // flush FIFO
	write(t, c, 0x09, 0x50, 0x00) // HLTA
	write(t, c, 0x01, 0x03)       // CalcCRC
	assert.Zero(t, read(t, c, 0x05)&0x04, "not done before the coprocessor delay")
	clock.Advance(time.Millisecond)
	assert.Equal(t, byte(0x04), read(t, c, 0x05)&0x04)
	assert.Equal(t, byte(0x57), read(t, c, 0x22))
	assert.Equal(t, byte(0xCD), read(t, c, 0x21))
}

func TestFIFOOverflow(t *testing.T) {
	_, c, _ := connect(t)
	write(t, c, 0x09, make([]byte, 70)...)
	assert.Equal(t, byte(64), read(t, c, 0x0A))
	assert.Equal(t, byte(0x10), read(t, c, 0x06)&0x10, "BufferOvfl")
	write(t, c, 0x0A, 0x80)
	assert.Equal(t, byte(0), read(t, c, 0x0A))
	assert.Zero(t, read(t, c, 0x06)&0x10, "flush clears BufferOvfl")
}

func TestPlaceValidates(t *testing.T) {
	chip := mfrc522sim.New(mfrc522sim.Config{})
	assert.Error(t, chip.Place(mfrc522sim.Card{UID: []byte{1, 2, 3}}))
	assert.Error(t, chip.Place(mfrc522sim.Card{UID: []byte{0x88, 1, 2, 3}}))
	assert.Error(t, chip.Place(mfrc522sim.Card{UID: []byte{1, 2, 3, 4}, SAK: 0x04}))
	assert.NoError(t, chip.Place(mfrc522sim.Card{UID: []byte{1, 2, 3, 4}}))
}
