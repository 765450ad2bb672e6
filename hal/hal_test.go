package hal_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/wiegand"
)

var doorIDs = []string{"front", "studio", "lab"}

func goodConfig() hal.Config {
	return hal.Config{Driver: "periph", Doors: map[string]hal.DoorWiring{
		"front": {
			MFRC522:     &hal.MFRC522Config{SPI: "SPI0.0", Reset: "GPIO25", IRQ: "GPIO24"},
			Keypad:      &hal.KeypadConfig{Rows: []string{"GPIO5", "GPIO6", "GPIO12", "GPIO13"}, Cols: []string{"GPIO19", "GPIO16", "GPIO26"}},
			Relay:       &hal.OutputConfig{Pin: "GPIO17", ActiveLow: true},
			GreenLED:    &hal.OutputConfig{Pin: "GPIO27"},
			RedLED:      &hal.OutputConfig{Pin: "GPIO22"},
			Buzzer:      &hal.OutputConfig{Pin: "GPIO23"},
			DoorContact: &hal.InputConfig{Pin: "GPIO4", Switch: "nc"},
			ExitButton:  &hal.InputConfig{Pin: "GPIO18"},
		},
		"studio": {
			Wiegand:     &hal.WiegandConfig{D0: "GPIO20", D1: "GPIO21"},
			Relay:       &hal.OutputConfig{Pin: "GPIO14"},
			DoorContact: &hal.InputConfig{Pin: "GPIO15", Switch: "nc"},
		},
		"lab": {
			MFRC522: &hal.MFRC522Config{SPI: "SPI0.1"},
			Relay:   &hal.OutputConfig{Pin: "GPIO2"},
		},
	}}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *hal.Config)
		want   []string // substrings, one per expected problem
	}{
		{name: "good", mutate: func(c *hal.Config) {}},
		{name: "sim driver", mutate: func(c *hal.Config) { c.Driver = "sim" }},
		{name: "unknown driver", mutate: func(c *hal.Config) { c.Driver = "gpiod" }, want: []string{`hardware.driver: "gpiod" is not a driver`}},
		{name: "no driver", mutate: func(c *hal.Config) { c.Driver = "" }, want: []string{"hardware.driver: not set"}},
		{
			name:   "unknown door",
			mutate: func(c *hal.Config) { c.Doors["garage"] = hal.DoorWiring{Relay: &hal.OutputConfig{Pin: "GPIO3"}} },
			want:   []string{`hardware.doors.garage: no door "garage" in doors: (doors: front, studio, lab)`},
		},
		{
			name:   "pin beyond the header",
			mutate: func(c *hal.Config) { c.Doors["lab"].Relay.Pin = "GPIO28" },
			want:   []string{`hardware.doors.lab.relay.pin: "GPIO28" is not a GPIO of the 40-pin header`},
		},
		{
			name:   "header number instead of BCM name",
			mutate: func(c *hal.Config) { c.Doors["lab"].Relay.Pin = "11" },
			want:   []string{`hardware.doors.lab.relay.pin: "11" is not a GPIO`},
		},
		{
			name:   "leading zero",
			mutate: func(c *hal.Config) { c.Doors["lab"].Relay.Pin = "GPIO02" },
			want:   []string{`"GPIO02" is not a GPIO`},
		},
		{
			name:   "missing pin",
			mutate: func(c *hal.Config) { c.Doors["lab"].Relay.Pin = "" },
			want:   []string{"hardware.doors.lab.relay.pin: not set"},
		},
		{
			name:   "pin used twice",
			mutate: func(c *hal.Config) { c.Doors["studio"].Relay.Pin = "GPIO17" },
			want:   []string{"hardware.doors.studio.relay.pin: GPIO17 is already used by hardware.doors.front.relay.pin"},
		},
		{
			name:   "GPIO of the enabled SPI bus",
			mutate: func(c *hal.Config) { c.Doors["lab"].Relay.Pin = "GPIO8" },
			want:   []string{"hardware.doors.lab.relay.pin: GPIO8 is already used by SPI0 CE0 (SPI0 is enabled for an MFRC522)"},
		},
		{
			name: "SPI1 pins only when SPI1 is used",
			mutate: func(c *hal.Config) {
				c.Doors["lab"].MFRC522.SPI = "SPI1.0"
			},
			want: []string{
				"hardware.doors.front.keypad.cols[0]: GPIO19 is already used by SPI1 MISO",
				"hardware.doors.front.exit_button.pin: GPIO18 is already used by SPI1 CE0",
				"hardware.doors.studio.wiegand.d0: GPIO20 is already used by SPI1 MOSI",
				"hardware.doors.studio.wiegand.d1: GPIO21 is already used by SPI1 SCLK",
			},
		},
		{
			name:   "same SPI device twice",
			mutate: func(c *hal.Config) { c.Doors["lab"].MFRC522.SPI = "SPI0.0" },
			want:   []string{"hardware.doors.lab.mfrc522.spi: SPI0.0 is already used by hardware.doors.front.mfrc522.spi"},
		},
		{
			name:   "SPI chip select off the header",
			mutate: func(c *hal.Config) { c.Doors["lab"].MFRC522.SPI = "SPI0.2" },
			want:   []string{`hardware.doors.lab.mfrc522.spi: "SPI0.2" is not on the header`},
		},
		{
			name:   "SPI name",
			mutate: func(c *hal.Config) { c.Doors["lab"].MFRC522.SPI = "/dev/spidev0.1" },
			want:   []string{`hardware.doors.lab.mfrc522.spi: "/dev/spidev0.1" is not an SPI device name like SPI0.0`},
		},
		{
			name:   "unknown Wiegand format",
			mutate: func(c *hal.Config) { c.Doors["studio"].Wiegand.Formats = []string{"H10301", "26bit"} },
			want:   []string{`hardware.doors.studio.wiegand.formats[1]: unknown format "26bit"`},
		},
		{
			name:   "keypad layout does not match",
			mutate: func(c *hal.Config) { c.Doors["front"].Keypad.Layout = []string{"123A", "456B", "789C", "*0#D"} },
			want: []string{
				`hardware.doors.front.keypad.layout[0]: "123A" has 4 keys, 3 column pins are wired`,
				`layout[1]: "456B"`, `layout[2]: "789C"`, `layout[3]: "*0#D"`,
			},
		},
		{
			name: "bad switch and pull",
			mutate: func(c *hal.Config) {
				c.Doors["front"].DoorContact.Switch = "closed"
				c.Doors["front"].DoorContact.Pull = "high"
			},
			want: []string{"hardware.doors.front.door_contact.switch", "hardware.doors.front.door_contact.pull"},
		},
		{
			name:   "negative poll interval",
			mutate: func(c *hal.Config) { c.Doors["lab"].MFRC522.PollInterval = -time.Second },
			want:   []string{"hardware.doors.lab.mfrc522.poll_interval: -1s is negative"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := goodConfig()
			tt.mutate(&c)
			assertProblems(t, c.Validate(doorIDs), tt.want)
		})
	}
}

func TestInputActiveLow(t *testing.T) {
	tests := []struct {
		sw, pull string
		want     bool
	}{
		{"", "", true}, {"no", "up", true}, {"nc", "up", false}, {"no", "down", false}, {"nc", "down", true}, {"nc", "none", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, hal.InputConfig{Switch: tt.sw, Pull: tt.pull}.ActiveLow(), "%+v", tt)
	}
}

func TestWires(t *testing.T) {
	c := goodConfig()
	wires := c.Wires(doorIDs)
	byPin := map[string][]hal.Wire{}
	for _, w := range wires {
		byPin[w.Pin] = append(byPin[w.Pin], w)
	}
	assert.Equal(t, []hal.Wire{{Door: "front", Device: "MFRC522", Signal: "SDA", Pin: "GPIO8"}}, byPin["GPIO8"])
	assert.Equal(t, []hal.Wire{{Door: "lab", Device: "MFRC522", Signal: "SDA", Pin: "GPIO7"}}, byPin["GPIO7"])
	assert.Len(t, byPin["GPIO11"], 2, "both readers share SCLK")
	assert.Equal(t, "front", wires[0].Door, "doors in config order")
	assert.Equal(t, "lab", wires[len(wires)-1].Door)
	for _, w := range wires {
		assert.NotEmpty(t, w.Pin)
	}
	assert.Len(t, hal.Header(), 40)
}

func TestWiegandEvent(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f, _ := wiegand.FormatByName("H10301")
	fr, err := f.Encode(21, 15890)
	require.NoError(t, err)
	dec, err := hal.WiegandConfig{Formats: []string{"H10301"}}.Decoder()
	require.NoError(t, err)
	r, err := dec.Decode(fr)
	require.NoError(t, err)

	e := hal.WiegandEvent("studio", r, nil, at)
	assert.Equal(t, hal.EventCredential, e.Kind)
	assert.Equal(t, agent.CardWiegand(agent.Wiegand{Format: "H10301", Facility: 21, Card: 15890, Bits: 26, Raw: fr.Raw}), e.Credential)
	key, err := agent.CardWiegand(agent.Wiegand{Format: "H10301", Facility: 21, Card: 15890, Bits: 26, Raw: fr.Raw}).Key(nil)
	require.NoError(t, err)
	assert.Equal(t, "wg:H10301:21:15890", key)

	e = hal.WiegandEvent("studio", wiegand.Reading{Kind: wiegand.KindKey, Key: '#'}, nil, at)
	assert.Equal(t, hal.Event{Door: "studio", Kind: hal.EventKey, At: at, Key: '#'}, e)

	e = hal.WiegandEvent("studio", wiegand.Reading{}, wiegand.ErrParity, at)
	assert.Equal(t, hal.EventFault, e.Kind)
	assert.ErrorIs(t, e.Err, wiegand.ErrParity)

	_, err = hal.WiegandConfig{Formats: []string{"nope"}}.Decoder()
	assert.Error(t, err)

	uid := []byte{1, 2, 3, 4}
	e = hal.CardEvent("front", uid, at)
	uid[0] = 9
	assert.Equal(t, agent.CardUID([]byte{1, 2, 3, 4}), e.Credential, "the event owns its UID copy")
}

// OpenPeriph resolves everything before driving anything. With only an SPI
// device configured nothing can be driven even on a Pi, and SPI1.2 needs an
// overlay few gateways have, so this refuses everywhere.
func TestOpenPeriphRefusesMissingHardware(t *testing.T) {
	cfg := hal.Config{Driver: "periph", Doors: map[string]hal.DoorWiring{
		"front": {MFRC522: &hal.MFRC522Config{SPI: "SPI1.2"}},
	}}
	_, err := hal.OpenPeriph(cfg, []string{"front"}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "hal: this gateway lacks configured hardware")
	assert.Contains(t, err.Error(), "hardware.doors.front.mfrc522.spi: SPI1.2")

	cfg.Doors["front"] = hal.DoorWiring{Relay: &hal.OutputConfig{Pin: "GPIO99"}}
	_, err = hal.OpenPeriph(cfg, []string{"front"}, nil)
	assert.ErrorContains(t, err, `hal: invalid wiring: hardware.doors.front.relay.pin: "GPIO99"`)
}

// assertProblems checks a validation error: none when want is empty, else
// one line per wanted problem.
func assertProblems(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		require.NoError(t, err)
		return
	}
	require.Error(t, err)
	for _, w := range want {
		assert.Contains(t, err.Error(), w)
	}
	assert.Len(t, strings.Split(err.Error(), "\n"), len(want), "one line per problem:\n%s", err)
}
