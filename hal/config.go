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
	// SimCards (driver sim only) are named cards the sim command
	// `card DOOR NAME` presents to a door's simulated MFRC522.
	SimCards map[string]SimCard `yaml:"sim_cards"`
	// Cards is how the doors' readers treat cards; not a key of this
	// section (see CardsConfig).
	Cards CardsConfig `yaml:"-"`
}

// SimCard is a card of the simulated board.
type SimCard struct {
	// Type is desfire_ev1, desfire_ev2 or desfire_ev3 (a MIFARE DESFire;
	// these sign their UID for the originality check under the simulator's
	// own vendor key), classic (a MIFARE Classic 1K, or a "magic" copy of
	// one) or ultralight.
	Type string `yaml:"type"`
	// UID in hex: 7 bytes for a DESFire, 4 or 7 for the others.
	UID string `yaml:"uid"`
	// TagNumber makes a DESFire card one issued with the site's keys for
	// this Salto tag number, as portier card issue leaves it (the key file
	// must then hold all three masters); empty: a factory-fresh card.
	TagNumber string `yaml:"tag_number"`
	// Generation of the issued card; 0: 1.
	Generation uint32 `yaml:"generation"`
	// ForeignSite issues the card with another site's keys instead: a
	// genuine card this site's key cannot read.
	ForeignSite bool `yaml:"foreign_site"`
	// Fault makes a DESFire card misbehave: removed_mid_auth (pulled away
	// during the authentication), replay_auth or replay_read (answers an
	// attacker recorded in an earlier session).
	Fault string `yaml:"fault"`
}

// Sim card types and faults.
const (
	SimDESFireEV1 = "desfire_ev1"
	SimDESFireEV2 = "desfire_ev2"
	SimDESFireEV3 = "desfire_ev3"
	SimClassic    = "classic"
	SimUltralight = "ultralight"

	SimFaultRemovedMidAuth = "removed_mid_auth"
	SimFaultReplayAuth     = "replay_auth"
	SimFaultReplayRead     = "replay_read"
)

// IsDESFire reports whether the card is a DESFire.
func (c SimCard) IsDESFire() bool {
	return c.Type == SimDESFireEV1 || c.Type == SimDESFireEV2 || c.Type == SimDESFireEV3
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
