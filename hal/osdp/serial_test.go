//go:build linux

package osdp_test

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/osdp"
)

// serialPair opens a pseudo-terminal: the port on its slave side, the
// master as the far end of the line.
func serialPair(t *testing.T) (*osdp.SerialPort, *os.File) {
	t.Helper()
	ptm, pts, err := pty.Open()
	require.NoError(t, err)
	port, err := osdp.OpenSerial(pts.Name(), 115200)
	require.NoError(t, err)
	require.NoError(t, pts.Close())
	t.Cleanup(func() {
		_ = port.Close()
		_ = ptm.Close()
	})
	return port, ptm
}

type readResult struct {
	b   []byte
	err error
}

// readAsync reads the port once in the background.
func readAsync(port *osdp.SerialPort) <-chan readResult {
	out := make(chan readResult, 1)
	go func() {
		buf := make([]byte, 64)
		n, err := port.Read(buf)
		out <- readResult{buf[:n], err}
	}()
	return out
}

func await(t *testing.T, ch <-chan readResult) readResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(stall):
		t.Fatalf("read still waiting after %v", stall)
		return readResult{}
	}
}

// A reply that is already in the input queue when the read starts (a
// reader faster than the Control Panel's goroutine) is read at once,
// not after the read timeout: the poller's readiness for it may have been
// consumed before the read began.
func TestSerialPortReadsAReplyThatCameFirst(t *testing.T) {
	port, far := serialPair(t)
	require.NoError(t, port.SetReadTimeout(time.Hour))
	for i := range 50 {
		cmd := []byte{0xFF, 0x53, byte(i)}
		n, err := port.Write(cmd)
		require.NoError(t, err)
		require.Equal(t, len(cmd), n)
		got := make([]byte, len(cmd))
		_, err = io.ReadFull(far, got)
		require.NoError(t, err)
		require.Equal(t, cmd, got)
		reply := []byte{0xFF, 0x53, 0x80 | byte(i), 0x42}
		_, err = far.Write(reply)
		require.NoError(t, err)
		r := await(t, readAsync(port))
		require.NoError(t, r.err)
		require.Equal(t, reply, r.b, "exchange %d", i)
	}
}

func TestSerialPortReadTimeout(t *testing.T) {
	port, _ := serialPair(t)
	require.NoError(t, port.SetReadTimeout(10*time.Millisecond))
	r := await(t, readAsync(port))
	require.NoError(t, r.err)
	assert.Empty(t, r.b)
}

// Closing the port ends a read that waits, with os.ErrClosed; reading and
// writing a closed port fail the same way.
func TestSerialPortClosedWhileReading(t *testing.T) {
	port, _ := serialPair(t)
	require.NoError(t, port.SetReadTimeout(time.Hour))
	ch := readAsync(port)
	require.NoError(t, port.Close())
	assert.ErrorIs(t, await(t, ch).err, os.ErrClosed)
	_, err := port.Read(make([]byte, 8))
	assert.ErrorIs(t, err, os.ErrClosed)
	_, err = port.Write([]byte{1})
	assert.ErrorIs(t, err, os.ErrClosed)
}

// A line that hangs up (the USB adapter unplugged; here the master side
// closed) fails the read instead of looking like a silent line.
func TestSerialPortHangUp(t *testing.T) {
	port, far := serialPair(t)
	require.NoError(t, port.SetReadTimeout(time.Hour))
	ch := readAsync(port)
	require.NoError(t, far.Close())
	assert.Error(t, await(t, ch).err)
}
