package hal

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/wiegand"
)

// OSDPBusConfig is one RS-485 line with OSDP readers (hardware.osdp_buses):
// one poll loop runs per bus, and several doors' readers may share it.
type OSDPBusConfig struct {
	Name string `yaml:"name"` // what doors call it, e.g. rs485-0
	// Port is the serial device: /dev/ttyUSB0 for a USB adapter (better:
	// its /dev/serial/by-id name), /dev/serial0 or /dev/ttyAMA0 for the
	// Pi's UART with an RS-485 HAT or transceiver (GPIO14 TXD, GPIO15 RXD).
	Port string `yaml:"port"`
	Baud int    `yaml:"baud"` // 9600 (default, the readers' usual), 19200, 38400, 57600, 115200, 230400
	// Direction says who switches the transceiver between sending and
	// receiving: auto (default: the adapter itself), rts (the UART's RTS
	// line) or gpio (DEPin drives DE and /RE).
	Direction    string        `yaml:"direction"`
	DEPin        string        `yaml:"de_pin"`
	DEActiveLow  bool          `yaml:"de_active_low"`
	PollInterval time.Duration `yaml:"poll_interval"` // 0: 50ms
	// Real (driver sim only) runs this bus on its port for real, through
	// the same code as the periph board, while the rest of the board stays
	// simulated: a real reader on a USB RS-485 adapter, or another OSDP
	// implementation's reader on a pseudo-terminal, on a machine without
	// GPIO. Without it a sim board's bus is a simulated line and port is
	// only a label. With driver periph every bus is real: it is refused
	// there rather than ignored, so a config never says more than it does.
	Real bool `yaml:"real"`
}

// OSDP direction settings.
const (
	OSDPDirectionAuto = "auto"
	OSDPDirectionRTS  = "rts"
	OSDPDirectionGPIO = "gpio"
)

// DefaultOSDPBaud is the line rate of a bus that names none: OSDP readers
// leave the factory at 9600.
const DefaultOSDPBaud = 9600

// OSDPReaderConfig wires a door's OSDP reader (hardware.doors.<id>.osdp).
type OSDPReaderConfig struct {
	Bus     string `yaml:"bus"`
	Address *int   `yaml:"address"` // 0–126, required
	// KeyFile holds the reader's Secure Channel key (32 hex digits, mode
	// 0600). `portier reader install` writes it; until then the reader is
	// refused. The config loader defaults it to <state_dir>/osdp/<door>.key.
	KeyFile string `yaml:"key_file"`
	// SecureChannel is on (default) or off. Off is plaintext: whoever
	// reaches the cable reads and injects cards; check-config and doctor
	// warn every time.
	SecureChannel string `yaml:"secure_channel"`
	// Formats decode the reader's raw card bits, as for a Wiegand reader;
	// Raw accepts lengths no format claims.
	Formats []string `yaml:"formats"`
	Raw     bool     `yaml:"raw"`

	// Key is the reader's Secure Channel Base Key, read from KeyFile by the
	// config loader; zero while the file does not exist.
	Key [16]byte `yaml:"-"`
}

// Plaintext reports whether the reader is configured without Secure Channel.
func (o OSDPReaderConfig) Plaintext() bool {
	return o.SecureChannel == "off" || o.SecureChannel == "false"
}

// Decoder builds the decoder of the reader's raw card bits.
func (o OSDPReaderConfig) Decoder() (wiegand.Decoder, error) {
	return WiegandConfig{Formats: o.Formats, Raw: o.Raw}.Decoder()
}

// OSDPReaderName is the name a door's OSDP reader goes by in its status and
// events.
const OSDPReaderName = "osdp"

// Bus returns the bus config named name.
func (c Config) Bus(name string) (OSDPBusConfig, bool) {
	i := slices.IndexFunc(c.OSDPBuses, func(b OSDPBusConfig) bool { return b.Name == name })
	if i < 0 {
		return OSDPBusConfig{}, false
	}
	return c.OSDPBuses[i], true
}

// baud is the bus's line rate, the default when unset.
func (b OSDPBusConfig) baud() int {
	if b.Baud == 0 {
		return DefaultOSDPBaud
	}
	return b.Baud
}

// uart reports whether the port is the Pi's own UART on the header.
func (b OSDPBusConfig) uart() bool {
	switch b.Port {
	case "/dev/serial0", "/dev/ttyAMA0", "/dev/ttyS0":
		return true
	}
	return false
}

// busNames lists the configured bus names, for messages.
func (c Config) busNames() string {
	var n []string
	for _, b := range c.OSDPBuses {
		n = append(n, b.Name)
	}
	if len(n) == 0 {
		return "none: add one under hardware.osdp_buses"
	}
	return strings.Join(n, ", ")
}

// checkOSDPBuses checks the buses and claims their header pins (the UART's
// TXD/RXD, the DE pin) before the doors' pins are checked.
func (c Config) checkOSDPBuses(v *pinCheck) {
	ports := map[string]string{}
	names := map[string]bool{}
	for i, b := range c.OSDPBuses {
		k := fmt.Sprintf("hardware.osdp_buses[%d]", i)
		switch {
		case b.Name == "":
			v.fail(k+".name", "not set (doors name their bus, e.g. rs485-0)")
		case names[b.Name]:
			v.fail(k+".name", fmt.Sprintf("bus %q is configured twice", b.Name))
		}
		names[b.Name] = true
		switch other, dup := ports[b.Port]; {
		case b.Port == "":
			v.fail(k+".port", "not set (e.g. /dev/ttyUSB0 for a USB adapter, /dev/serial0 for the Pi's UART)")
		case dup:
			v.fail(k+".port", fmt.Sprintf("%s is already the port of %s: readers sharing a line go on one bus", b.Port, other))
		default:
			ports[b.Port] = k
		}
		if !slices.Contains(osdp.Bauds, b.baud()) {
			v.fail(k+".baud", fmt.Sprintf("%d is not an OSDP line rate (use one of %v)", b.Baud, osdp.Bauds))
		}
		if b.Real && c.Driver != DriverSim {
			v.fail(k+".real", "only with driver: sim (a simulated board with this bus real); with driver: "+c.Driver+" every bus is real: remove it")
		}
		switch b.Direction {
		case "", OSDPDirectionAuto, OSDPDirectionRTS:
			if b.DEPin != "" {
				v.fail(k+".de_pin", "only with direction: gpio")
			}
		case OSDPDirectionGPIO:
			if b.Real && c.Driver == DriverSim {
				v.fail(k+".direction", "gpio needs a DE pin, and the simulated board (driver: sim) drives no GPIO: use auto (a USB RS-485 adapter switches by itself) or rts (the UART's RTS line) on a real bus")
				break
			}
			v.pin(k+".de_pin", b.DEPin)
		default:
			v.fail(k+".direction", fmt.Sprintf("%q is not auto, rts or gpio", b.Direction))
		}
		if b.PollInterval < 0 || b.PollInterval > time.Second {
			v.fail(k+".poll_interval", fmt.Sprintf("%s is outside 0–1s", b.PollInterval))
		}
		if b.uart() {
			for pin, fn := range map[string]string{"GPIO14": "TXD", "GPIO15": "RXD"} {
				if other := v.used[pin]; other != "" {
					v.fail(k+".port", fmt.Sprintf("%s needs %s (UART %s), already used by %s", b.Port, pin, fn, other))
					continue
				}
				v.used[pin] = fmt.Sprintf("UART %s (%s for OSDP bus %s)", fn, b.Port, b.Name)
			}
		}
	}
}

// checkOSDPReader checks one door's OSDP reader; addrs holds the addresses
// taken on each bus.
func (c Config) checkOSDPReader(v *pinCheck, door string, o *OSDPReaderConfig, addrs map[string]map[int]string) {
	k := "hardware.doors." + door + ".osdp."
	if _, ok := c.Bus(o.Bus); !ok {
		if o.Bus == "" {
			v.fail(k+"bus", "not set (the name of one of hardware.osdp_buses: "+c.busNames()+")")
		} else {
			v.fail(k+"bus", fmt.Sprintf("unknown bus %q (buses: %s)", o.Bus, c.busNames()))
		}
	}
	switch a := o.Address; {
	case a == nil:
		v.fail(k+"address", "not set (the reader's OSDP address, 0–126)")
	case *a < 0 || *a > int(osdp.MaxAddr):
		v.fail(k+"address", fmt.Sprintf("%d is outside 0–126", *a))
	default:
		if addrs[o.Bus] == nil {
			addrs[o.Bus] = map[int]string{}
		}
		if other, dup := addrs[o.Bus][*a]; dup {
			v.fail(k+"address", fmt.Sprintf("address %d on bus %s is already used by %s: every reader on a bus needs its own", *a, o.Bus, other))
		} else {
			addrs[o.Bus][*a] = "hardware.doors." + door + ".osdp"
		}
	}
	switch o.SecureChannel {
	case "", "on", "off", "true", "false":
	default:
		v.fail(k+"secure_channel", fmt.Sprintf("%q is not on or off", o.SecureChannel))
	}
	if o.Plaintext() && o.KeyFile != "" {
		v.fail(k+"key_file", "a reader without Secure Channel has no key: remove key_file or set secure_channel: on")
	}
	for i, f := range o.Formats {
		if _, ok := wiegand.FormatByName(f); !ok {
			v.fail(fmt.Sprintf("%sformats[%d]", k, i), fmt.Sprintf("unknown format %q (known: %s)", f, formatNames()))
		}
	}
}

// maxSafePollInterval is the longest poll interval that keeps every
// reader's secure session alive: readers built on libosdp end it after
// 0.8 s without a command (OSDP_PD_SC_TIMEOUT_MS), and a poll can be held
// up by another reader's reply timeout (200 ms) on the same bus.
const maxSafePollInterval = 500 * time.Millisecond

// OSDPWarnings are what check-config and doctor say every time about the
// OSDP readers: each one configured without Secure Channel, and a poll
// interval long enough for some readers to drop their secure session.
func (c Config) OSDPWarnings(doorIDs []string) []string {
	var out []string
	for i, b := range c.OSDPBuses {
		if b.PollInterval > maxSafePollInterval {
			out = append(out, fmt.Sprintf("hardware.osdp_buses[%d].poll_interval: %s: readers built on libosdp end their secure session after 0.8 s without a command, and would go offline and online again; keep it at %s or less",
				i, b.PollInterval, maxSafePollInterval))
		}
	}
	for _, id := range orderedDoors(c.Doors, doorIDs) {
		if o := c.Doors[id].OSDP; o != nil && o.Plaintext() {
			out = append(out, fmt.Sprintf("hardware.doors.%s.osdp.secure_channel: off: the reader at door %s talks PLAINTEXT: whoever reaches its cable can read cards and inject them; use a reader with Secure Channel and set secure_channel: on", id, id))
		}
	}
	return out
}
