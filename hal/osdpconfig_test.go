package hal_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal"
)

func addr(a int) *int { return &a }

// osdpConfig is goodConfig with two doors' OSDP readers on one USB bus.
func osdpConfig() hal.Config {
	c := goodConfig()
	c.OSDPBuses = []hal.OSDPBusConfig{{Name: "rs485-0", Port: "/dev/ttyUSB0", Baud: 115200}}
	for door, a := range map[string]int{"front": 1, "lab": 2} {
		w := c.Doors[door]
		w.OSDP = &hal.OSDPReaderConfig{Bus: "rs485-0", Address: addr(a), Formats: []string{"H10301"}}
		c.Doors[door] = w
	}
	return c
}

func TestValidateOSDP(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *hal.Config)
		want   []string
	}{
		{name: "good: two doors share a bus", mutate: func(c *hal.Config) {}},
		{name: "plaintext is valid (and warned about)", mutate: func(c *hal.Config) { c.Doors["lab"].OSDP.SecureChannel = "off" }},
		{name: "default baud", mutate: func(c *hal.Config) { c.OSDPBuses[0].Baud = 0 }},
		{
			name:   "unknown bus",
			mutate: func(c *hal.Config) { c.Doors["lab"].OSDP.Bus = "rs485-1" },
			want:   []string{`hardware.doors.lab.osdp.bus: unknown bus "rs485-1" (buses: rs485-0)`},
		},
		{
			name:   "no bus named",
			mutate: func(c *hal.Config) { c.Doors["lab"].OSDP.Bus = "" },
			want:   []string{"hardware.doors.lab.osdp.bus: not set"},
		},
		{
			name:   "duplicate address on a bus",
			mutate: func(c *hal.Config) { *c.Doors["lab"].OSDP.Address = 1 },
			want:   []string{"hardware.doors.lab.osdp.address: address 1 on bus rs485-0 is already used by hardware.doors.front.osdp"},
		},
		{
			name:   "missing address",
			mutate: func(c *hal.Config) { c.Doors["lab"].OSDP.Address = nil },
			want:   []string{"hardware.doors.lab.osdp.address: not set (the reader's OSDP address, 0–126)"},
		},
		{
			name:   "address out of range",
			mutate: func(c *hal.Config) { *c.Doors["lab"].OSDP.Address = 127 },
			want:   []string{"hardware.doors.lab.osdp.address: 127 is outside 0–126"},
		},
		{
			name:   "baud",
			mutate: func(c *hal.Config) { c.OSDPBuses[0].Baud = 4800 },
			want:   []string{"hardware.osdp_buses[0].baud: 4800 is not an OSDP line rate"},
		},
		{
			name:   "direction",
			mutate: func(c *hal.Config) { c.OSDPBuses[0].Direction = "manual" },
			want:   []string{`hardware.osdp_buses[0].direction: "manual" is not auto, rts or gpio`},
		},
		{
			name:   "gpio direction needs a pin",
			mutate: func(c *hal.Config) { c.OSDPBuses[0].Direction = "gpio" },
			want:   []string{"hardware.osdp_buses[0].de_pin: not set"},
		},
		{
			name:   "DE pin collides",
			mutate: func(c *hal.Config) { c.OSDPBuses[0].Direction, c.OSDPBuses[0].DEPin = "gpio", "GPIO17" },
			want:   []string{"hardware.doors.front.relay.pin: GPIO17 is already used by hardware.osdp_buses[0].de_pin"},
		},
		{
			name:   "DE pin without gpio",
			mutate: func(c *hal.Config) { c.OSDPBuses[0].DEPin = "GPIO5" },
			want:   []string{"hardware.osdp_buses[0].de_pin: only with direction: gpio"},
		},
		{
			name:   "the Pi's UART takes TXD and RXD",
			mutate: func(c *hal.Config) { c.OSDPBuses[0].Port = "/dev/serial0" },
			want: []string{
				"hardware.doors.studio.relay.pin: GPIO14 is already used by UART TXD (/dev/serial0 for OSDP bus rs485-0)",
				"hardware.doors.studio.door_contact.pin: GPIO15 is already used by UART RXD",
			},
		},
		{
			name: "two buses on one port",
			mutate: func(c *hal.Config) {
				c.OSDPBuses = append(c.OSDPBuses, hal.OSDPBusConfig{Name: "rs485-1", Port: "/dev/ttyUSB0"})
			},
			want: []string{"hardware.osdp_buses[1].port: /dev/ttyUSB0 is already the port of hardware.osdp_buses[0]"},
		},
		{
			name: "bus without a name or port",
			mutate: func(c *hal.Config) {
				c.OSDPBuses = append(c.OSDPBuses, hal.OSDPBusConfig{})
			},
			want: []string{"hardware.osdp_buses[1].name: not set", "hardware.osdp_buses[1].port: not set"},
		},
		{
			name:   "secure_channel",
			mutate: func(c *hal.Config) { c.Doors["lab"].OSDP.SecureChannel = "maybe" },
			want:   []string{`hardware.doors.lab.osdp.secure_channel: "maybe" is not on or off`},
		},
		{
			name: "a key for a plaintext reader",
			mutate: func(c *hal.Config) {
				c.Doors["lab"].OSDP.SecureChannel, c.Doors["lab"].OSDP.KeyFile = "off", "lab.key"
			},
			want: []string{"hardware.doors.lab.osdp.key_file: a reader without Secure Channel has no key"},
		},
		{
			name:   "format",
			mutate: func(c *hal.Config) { c.Doors["lab"].OSDP.Formats = []string{"26bit"} },
			want:   []string{`hardware.doors.lab.osdp.formats[0]: unknown format "26bit"`},
		},
		{
			name:   "real with driver periph: every bus is real there",
			mutate: func(c *hal.Config) { c.OSDPBuses[0].Real = true },
			want:   []string{"hardware.osdp_buses[0].real: only with driver: sim (a simulated board with this bus real); with driver: periph every bus is real: remove it"},
		},
		{
			name:   "real on the simulated board, direction rts",
			mutate: func(c *hal.Config) { c.Driver, c.OSDPBuses[0].Real, c.OSDPBuses[0].Direction = "sim", true, "rts" },
		},
		{
			name: "real on the simulated board with a DE pin: no GPIO to drive",
			mutate: func(c *hal.Config) {
				c.Driver, c.OSDPBuses[0].Real = "sim", true
				c.OSDPBuses[0].Direction, c.OSDPBuses[0].DEPin = "gpio", "GPIO4"
			},
			want: []string{"hardware.osdp_buses[0].direction: gpio needs a DE pin, and the simulated board (driver: sim) drives no GPIO: use auto"},
		},
		{
			name: "a simulated bus may keep its DE pin",
			mutate: func(c *hal.Config) {
				c.Driver, c.OSDPBuses[0].Direction, c.OSDPBuses[0].DEPin = "sim", "gpio", "GPIO3"
			},
		},
		{
			name:   "poll interval",
			mutate: func(c *hal.Config) { c.OSDPBuses[0].PollInterval = 2 * time.Second },
			want:   []string{"hardware.osdp_buses[0].poll_interval: 2s is outside 0–1s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := osdpConfig()
			tt.mutate(&c)
			assertProblems(t, c.Validate(doorIDs), tt.want)
		})
	}
}

func TestOSDPBusPlanAndWarnings(t *testing.T) {
	c := osdpConfig()
	c.Doors["lab"].OSDP.SecureChannel = "off"
	c.Doors["front"].OSDP.Key = keyA
	c.OSDPBuses[0].PollInterval = 800 * time.Millisecond
	buses, err := c.OSDPBusPlan(doorIDs)
	require.NoError(t, err)
	require.Len(t, buses, 1)
	require.Len(t, buses[0].Readers, 2)
	assert.Equal(t, "front", buses[0].Readers[0].Door, "door order")
	assert.Equal(t, keyA, buses[0].Readers[0].Key)
	assert.True(t, buses[0].Readers[1].Plaintext)
	assert.Equal(t, 115200, buses[0].Baud)

	w := c.OSDPWarnings(doorIDs)
	require.Len(t, w, 2)
	assert.Contains(t, w[0], "hardware.osdp_buses[0].poll_interval: 800ms: readers built on libosdp end their secure session")
	assert.Contains(t, w[1], "hardware.doors.lab.osdp.secure_channel: off")
	assert.Contains(t, w[1], "PLAINTEXT")

	c.OSDPBuses[0].PollInterval = 500 * time.Millisecond
	assert.Len(t, c.OSDPWarnings(doorIDs), 1, "500ms is safe")
}

func TestOSDPWires(t *testing.T) {
	c := osdpConfig()
	c.OSDPBuses[0].Direction, c.OSDPBuses[0].DEPin = "gpio", "GPIO24"
	c.Doors["front"].MFRC522.IRQ = ""
	var got []hal.Wire
	for _, w := range c.Wires(doorIDs) {
		if w.Device == "RS-485" {
			got = append(got, w)
		}
	}
	assert.Equal(t, []hal.Wire{
		{Door: "rs485-0", Device: "RS-485", Signal: "DE+RE", Pin: "GPIO24"},
		{Door: "rs485-0", Device: "RS-485", Signal: "VCC", Pin: "3V3"},
		{Door: "rs485-0", Device: "RS-485", Signal: "GND", Pin: "GND"},
	}, got, "a USB adapter takes only the DE pin's wires off the header")
}
