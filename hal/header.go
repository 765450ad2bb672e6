package hal

import (
	"fmt"
	"strconv"
	"strings"
)

// HeaderPin is one pin of the Raspberry Pi 40-pin header.
type HeaderPin struct {
	Physical int    // 1–40; odd pins on the inner row
	Name     string // GPIO name (BCM), or 3V3, 5V, GND
	Alt      string // the usual alternate function, for labels
}

// Header returns the 40-pin header of every Raspberry Pi since the B+.
func Header() []HeaderPin {
	return []HeaderPin{
		{1, "3V3", ""}, {2, "5V", ""}, {3, "GPIO2", "I2C1 SDA"}, {4, "5V", ""},
		{5, "GPIO3", "I2C1 SCL"}, {6, "GND", ""}, {7, "GPIO4", "GPCLK0"}, {8, "GPIO14", "UART TXD"},
		{9, "GND", ""}, {10, "GPIO15", "UART RXD"}, {11, "GPIO17", "SPI1 CE1"}, {12, "GPIO18", "SPI1 CE0"},
		{13, "GPIO27", ""}, {14, "GND", ""}, {15, "GPIO22", ""}, {16, "GPIO23", ""},
		{17, "3V3", ""}, {18, "GPIO24", ""}, {19, "GPIO10", "SPI0 MOSI"}, {20, "GND", ""},
		{21, "GPIO9", "SPI0 MISO"}, {22, "GPIO25", ""}, {23, "GPIO11", "SPI0 SCLK"}, {24, "GPIO8", "SPI0 CE0"},
		{25, "GND", ""}, {26, "GPIO7", "SPI0 CE1"}, {27, "GPIO0", "ID_SD"}, {28, "GPIO1", "ID_SC"},
		{29, "GPIO5", ""}, {30, "GND", ""}, {31, "GPIO6", ""}, {32, "GPIO12", "PWM0"},
		{33, "GPIO13", "PWM1"}, {34, "GND", ""}, {35, "GPIO19", "SPI1 MISO"}, {36, "GPIO16", "SPI1 CE2"},
		{37, "GPIO26", ""}, {38, "GPIO20", "SPI1 MOSI"}, {39, "GND", ""}, {40, "GPIO21", "SPI1 SCLK"},
	}
}

// validPin reports whether name is a BCM GPIO on the 40-pin header.
func validPin(name string) bool {
	n, ok := strings.CutPrefix(name, "GPIO")
	if !ok || n == "" || (len(n) > 1 && n[0] == '0') {
		return false
	}
	v, err := strconv.Atoi(n)
	return err == nil && v >= 0 && v <= 27
}

// spiDevice is a parsed SPI<bus>.<cs>.
type spiDevice struct{ bus, cs int }

func parseSPI(s string) (spiDevice, error) {
	var d spiDevice
	if _, err := fmt.Sscanf(s, "SPI%d.%d", &d.bus, &d.cs); err != nil || fmt.Sprintf("SPI%d.%d", d.bus, d.cs) != s {
		return d, fmt.Errorf("%q is not an SPI device name like SPI0.0", s)
	}
	switch {
	case d.bus == 0 && d.cs <= 1, d.bus == 1 && d.cs <= 2:
		return d, nil
	}
	return d, fmt.Errorf("%q is not on the header: SPI0 has CE0–CE1, SPI1 has CE0–CE2", s)
}

// spiPins returns the header pins a bus takes once enabled, up to chip
// select maxCS: dtparam=spi=on claims both CE lines of SPI0; the spi1
// overlays claim as many CE lines as they are asked for.
func spiPins(bus, maxCS int) map[string]string {
	if bus == 0 {
		return map[string]string{"GPIO8": "SPI0 CE0", "GPIO7": "SPI0 CE1", "GPIO9": "SPI0 MISO", "GPIO10": "SPI0 MOSI", "GPIO11": "SPI0 SCLK"}
	}
	m := map[string]string{"GPIO19": "SPI1 MISO", "GPIO20": "SPI1 MOSI", "GPIO21": "SPI1 SCLK"}
	ce := []string{"GPIO18", "GPIO17", "GPIO16"}
	for cs := 0; cs <= maxCS; cs++ {
		m[ce[cs]] = fmt.Sprintf("SPI1 CE%d", cs)
	}
	return m
}

// Wire is one connection between a device and the header.
type Wire struct {
	Door   string
	Device string // e.g. "MFRC522", "relay"
	Signal string // the device's pin label, e.g. "SDA", "IN", "D0"
	Pin    string // header pin name: GPIOn, 3V3, 5V or GND
}

// Wires lists every connection of the configuration, door by door in the
// order of doorIDs (doors not in it come last, sorted), for wiring pictures.
func (c Config) Wires(doorIDs []string) []Wire {
	var out []Wire
	for _, id := range orderedDoors(c.Doors, doorIDs) {
		d := c.Doors[id]
		add := func(dev, sig, pin string) {
			if pin != "" {
				out = append(out, Wire{Door: id, Device: dev, Signal: sig, Pin: pin})
			}
		}
		if m := d.MFRC522; m != nil {
			if dev, err := parseSPI(m.SPI); err == nil {
				pins := spiPins(dev.bus, dev.cs)
				byFn := map[string]string{}
				for p, fn := range pins {
					byFn[fn] = p
				}
				bus := fmt.Sprintf("SPI%d ", dev.bus)
				add("MFRC522", "SDA", byFn[fmt.Sprintf("%sCE%d", bus, dev.cs)])
				add("MFRC522", "SCK", byFn[bus+"SCLK"])
				add("MFRC522", "MOSI", byFn[bus+"MOSI"])
				add("MFRC522", "MISO", byFn[bus+"MISO"])
			}
			add("MFRC522", "IRQ", m.IRQ)
			add("MFRC522", "RST", m.Reset)
			add("MFRC522", "3.3V", "3V3")
			add("MFRC522", "GND", "GND")
		}
		if w := d.Wiegand; w != nil {
			add("Wiegand", "D0", w.D0)
			add("Wiegand", "D1", w.D1)
			add("Wiegand", "GND", "GND")
		}
		if k := d.Keypad; k != nil {
			for i, p := range k.Rows {
				add("keypad", fmt.Sprintf("R%d", i+1), p)
			}
			for i, p := range k.Cols {
				add("keypad", fmt.Sprintf("C%d", i+1), p)
			}
		}
		for _, o := range []struct {
			name string
			cfg  *OutputConfig
		}{{"relay", d.Relay}, {"green LED", d.GreenLED}, {"red LED", d.RedLED}, {"buzzer", d.Buzzer}} {
			if o.cfg != nil {
				add(o.name, "IN", o.cfg.Pin)
				if o.name == "relay" {
					add(o.name, "VCC", "5V")
				}
				add(o.name, "GND", "GND")
			}
		}
		for _, in := range []struct {
			name string
			cfg  *InputConfig
		}{{"door contact", d.DoorContact}, {"exit button", d.ExitButton}, {"tamper", d.Tamper}} {
			if in.cfg != nil {
				add(in.name, "", in.cfg.Pin)
				ret := "GND"
				if in.cfg.Pull == "down" {
					ret = "3V3"
				}
				add(in.name, ret, ret)
			}
		}
	}
	return append(out, c.osdpWires()...)
}

// osdpWires are the header connections of the OSDP buses: a transceiver on
// the Pi's UART (DI on TXD, RO on RXD) and the DE pin of direction: gpio. A
// USB adapter takes none; the RS-485 pair itself (A/B/GND) runs from the
// adapter to the readers, off the header.
func (c Config) osdpWires() []Wire {
	var out []Wire
	for _, b := range c.OSDPBuses {
		add := func(sig, pin string) {
			out = append(out, Wire{Door: b.Name, Device: "RS-485", Signal: sig, Pin: pin})
		}
		if b.uart() {
			add("DI", "GPIO14")
			add("RO", "GPIO15")
		}
		if b.Direction == OSDPDirectionGPIO && b.DEPin != "" {
			add("DE+RE", b.DEPin)
		}
		if b.uart() || b.Direction == OSDPDirectionGPIO {
			add("VCC", "3V3")
			add("GND", "GND")
		}
	}
	return out
}
