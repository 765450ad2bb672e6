package hal

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An FTDI adapter's latency timer is found through the port's by-id link;
// ports without one (a UART) have none.
func TestUSBLatencyTimer(t *testing.T) {
	dir := t.TempDir()
	sys := filepath.Join(dir, "sys")
	dev := filepath.Join(dir, "dev")
	for name, v := range map[string]string{"ttyUSB0": "16\n", "ttyUSB1": "1\n", "ttyUSB2": "junk"} {
		require.NoError(t, os.MkdirAll(filepath.Join(sys, name, "device"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(sys, name, "device", "latency_timer"), []byte(v), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(sys, "ttyAMA0", "device"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dev, "serial", "by-id"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dev, "ttyUSB0"), nil, 0o600))
	byID := filepath.Join(dev, "serial", "by-id", "usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0")
	require.NoError(t, os.Symlink(filepath.Join(dev, "ttyUSB0"), byID))

	for _, tc := range []struct {
		port string
		ms   int
		ok   bool
	}{
		{byID, 16, true},
		{"/dev/ttyUSB0", 16, true},
		{"/dev/ttyUSB1", 1, true},
		{"/dev/ttyUSB2", 0, false},
		{"/dev/ttyAMA0", 0, false},
		{"/dev/ttyUSB9", 0, false},
	} {
		ms, ok := usbLatencyTimer(sys, tc.port)
		assert.Equal(t, tc.ok, ok, tc.port)
		assert.Equal(t, tc.ms, ms, tc.port)
	}
}
