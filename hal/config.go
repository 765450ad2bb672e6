package hal

import "time"

// Config is the hardware section of portier.yaml: which board driver to use
// and how each door's devices are wired. cmd/portier decodes it; hal
// validates it and turns it into devices.
type Config struct {
	// Driver selects the backend: "sim" (simulated board) or "periph" (real GPIO/SPI).
	Driver string `yaml:"driver"`
	// Doors maps a door id from the top-level doors: list to its wiring.
	Doors map[string]DoorWiring `yaml:"doors"`
	// OSDPBuses are the RS-485 lines with OSDP readers (osdpconfig.go);
	// doors name them in their osdp: reader.
	OSDPBuses []OSDPBusConfig `yaml:"osdp_buses"`
	// SimLatchFile (driver sim only) keeps the simulated output levels in a
	// file across process lifetimes, the way GPIO lines keep their level when
	// a process dies: a killed agent leaves its relay "on" there, and the next
	// start must drive it off. End-to-end tests and demos read it.
	SimLatchFile string `yaml:"sim_latch_file"`
}

// Drivers.
const (
	DriverSim    = "sim"
	DriverPeriph = "periph"
)

// DoorWiring is the hardware of one door. Every device is optional.
type DoorWiring struct {
	MFRC522 *MFRC522Config    `yaml:"mfrc522"`
	Wiegand *WiegandConfig    `yaml:"wiegand"`
	Keypad  *KeypadConfig     `yaml:"keypad"`
	OSDP    *OSDPReaderConfig `yaml:"osdp"`

	Relay    *OutputConfig `yaml:"relay"`
	GreenLED *OutputConfig `yaml:"green_led"`
	RedLED   *OutputConfig `yaml:"red_led"`
	Buzzer   *OutputConfig `yaml:"buzzer"`

	DoorContact *InputConfig `yaml:"door_contact"`
	ExitButton  *InputConfig `yaml:"exit_button"`
	Tamper      *InputConfig `yaml:"tamper"`
}

// MFRC522Config wires an MFRC522 RFID reader on SPI.
type MFRC522Config struct {
	// SPI names the bus and chip select as SPI<bus>.<cs>, e.g. SPI0.0
	// (SDA wired to CE0, header pin 24).
	SPI          string        `yaml:"spi"`
	Reset        string        `yaml:"reset"`         // RST pin, optional
	IRQ          string        `yaml:"irq"`           // IRQ pin, optional
	PollInterval time.Duration `yaml:"poll_interval"` // 0: 40ms
}

// WiegandConfig wires a Wiegand reader or keypad (D0/D1 through a level
// shifter or optocoupler: readers drive 5 V).
type WiegandConfig struct {
	D0 string `yaml:"d0"`
	D1 string `yaml:"d1"`
	// Formats are tried in order; default H10301, H10306, C1000, H10304.
	Formats []string `yaml:"formats"`
	// Raw accepts frames of lengths no format claims, as raw credentials.
	Raw bool `yaml:"raw"`
	// FrameGap is the silence that ends a frame; 0: 20ms.
	FrameGap time.Duration `yaml:"frame_gap"`
}

// KeypadConfig wires a matrix keypad.
type KeypadConfig struct {
	Rows []string `yaml:"rows"`
	Cols []string `yaml:"cols"`
	// Layout has one string per row, one key per column; default
	// ["123", "456", "789", "*0#"].
	Layout   []string      `yaml:"layout"`
	Debounce time.Duration `yaml:"debounce"` // 0: 20ms
}

// OutputConfig wires a relay, LED or buzzer.
type OutputConfig struct {
	Pin       string `yaml:"pin"`
	ActiveLow bool   `yaml:"active_low"` // on = line low (most opto relay boards)
	// SafeOn makes "on" the safe state that start-up, shutdown and Halt
	// restore (e.g. a maglock held by the output). Default: off.
	SafeOn bool `yaml:"safe_on"`
}

// InputConfig wires a door contact, exit button or tamper switch.
type InputConfig struct {
	Pin string `yaml:"pin"`
	// Switch is "no" (closes when active: a pressed button) or "nc"
	// (opens when active: a reed contact held closed by a shut door, a
	// tamper loop). Default "no".
	Switch string `yaml:"switch"`
	// Pull is "up" (default: the switch goes to GND), "down" (to 3V3) or
	// "none" (external resistor; give the idle level with Switch as for up).
	Pull     string        `yaml:"pull"`
	Debounce time.Duration `yaml:"debounce"` // 0: 30ms
}

// ActiveLow reports whether the input reads low when active, from Switch
// and Pull.
func (c InputConfig) ActiveLow() bool {
	no := c.Switch != "nc"
	return no == (c.Pull != "down")
}
