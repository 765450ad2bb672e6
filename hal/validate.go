package hal

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal/wiegand"
)

// Validate checks the hardware config against the door ids of the doors:
// list. It refuses unknown drivers, unknown door ids, pin names that are not
// BCM GPIOs of the 40-pin header (GPIO0–GPIO27), pins used twice, GPIO pins
// taken by an enabled SPI bus, and malformed device settings. Every message
// names the config key; all problems are reported at once.
func (c Config) Validate(doorIDs []string) error {
	var errs []error
	switch c.Driver {
	case DriverSim, DriverPeriph:
	case "":
		errs = append(errs, errors.New("hardware.driver: not set (use sim or periph)"))
	default:
		errs = append(errs, fmt.Errorf("hardware.driver: %q is not a driver (use sim or periph)", c.Driver))
	}
	for _, id := range orderedDoors(c.Doors, doorIDs) {
		if !slices.Contains(doorIDs, id) {
			errs = append(errs, fmt.Errorf("hardware.doors.%s: no door %q in doors: (doors: %s)", id, id, strings.Join(doorIDs, ", ")))
		}
	}
	if err := c.checkWiring(doorIDs); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.checkSimCards()...)
	return errors.Join(errs...)
}

// checkSimCards checks the simulated board's named cards.
func (c Config) checkSimCards() []error {
	var errs []error
	if len(c.SimCards) > 0 && c.Driver != DriverSim {
		return []error{fmt.Errorf("hardware.sim_cards: only the simulated board (driver: sim) has sim cards")}
	}
	names := slices.Sorted(maps.Keys(c.SimCards))
	for _, name := range names {
		sc := c.SimCards[name]
		k := "hardware.sim_cards." + name
		fail := func(key, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s%s: %s", k, key, fmt.Sprintf(format, args...)))
		}
		if name == "" || strings.ContainsAny(name, " \t#") {
			fail("", "a card name is one word")
		}
		switch sc.Type {
		case SimDESFireEV1, SimDESFireEV2, SimDESFireEV3, SimClassic, SimUltralight:
		default:
			fail(".type", "%q is not desfire_ev1, desfire_ev2, desfire_ev3, classic or ultralight", sc.Type)
		}
		uid, err := agent.ParseUID(sc.UID)
		switch {
		case err != nil:
			fail(".uid", "%v", err)
		case uid[0] == 0x88:
			fail(".uid", "a UID cannot start with the cascade tag 88")
		case sc.IsDESFire() && len(uid) != 7:
			fail(".uid", "a DESFire card has a 7-byte UID, not %d", len(uid))
		case len(uid) == 10:
			fail(".uid", "simulated cards have 4- or 7-byte UIDs")
		}
		if sc.TagNumber != "" {
			if _, err := agent.NormalizeTagNumber(sc.TagNumber); err != nil {
				fail(".tag_number", "%v", err)
			}
		}
		if !sc.IsDESFire() && (sc.TagNumber != "" || sc.Generation != 0 || sc.ForeignSite || sc.Fault != "") {
			fail("", "tag_number, generation, foreign_site and fault are for DESFire cards")
		}
		if sc.TagNumber == "" && (sc.Generation != 0 || sc.ForeignSite) {
			fail("", "generation and foreign_site are for an issued card: give its tag_number")
		}
		switch sc.Fault {
		case "", SimFaultRemovedMidAuth, SimFaultReplayAuth, SimFaultReplayRead:
		default:
			fail(".fault", "%q is not removed_mid_auth, replay_auth or replay_read", sc.Fault)
		}
	}
	return errs
}

// orderedDoors returns the wired door ids in config order, unknown ones
// last in name order, so messages and pictures are stable.
func orderedDoors(doors map[string]DoorWiring, doorIDs []string) []string {
	var out, rest []string
	for _, id := range doorIDs {
		if _, ok := doors[id]; ok {
			out = append(out, id)
		}
	}
	for id := range doors {
		if !slices.Contains(doorIDs, id) {
			rest = append(rest, id)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// checkWiring checks pins and device settings, without the door list.
func (c Config) checkWiring(doorIDs []string) error {
	v := &pinCheck{used: map[string]string{}}
	doors := orderedDoors(c.Doors, doorIDs)
	// SPI buses first, so a GPIO that collides with a bus names the bus.
	maxCS := map[int]int{}
	spiUser := map[string]string{}
	for _, id := range doors {
		m := c.Doors[id].MFRC522
		if m == nil {
			continue
		}
		key := "hardware.doors." + id + ".mfrc522.spi"
		dev, err := parseSPI(m.SPI)
		if err != nil {
			v.fail(key, err.Error())
			continue
		}
		if other, ok := spiUser[m.SPI]; ok {
			v.fail(key, fmt.Sprintf("%s is already used by %s", m.SPI, other))
			continue
		}
		spiUser[m.SPI] = key
		if cs, ok := maxCS[dev.bus]; !ok || dev.cs > cs {
			maxCS[dev.bus] = dev.cs
		}
	}
	for _, bus := range []int{0, 1} {
		cs, ok := maxCS[bus]
		if !ok {
			continue
		}
		for pin, fn := range spiPins(bus, cs) {
			v.used[pin] = fmt.Sprintf("%s (SPI%d is enabled for an MFRC522)", fn, bus)
		}
	}
	c.checkOSDPBuses(v)
	osdpAddrs := map[string]map[int]string{}
	for _, id := range doors {
		d := c.Doors[id]
		k := "hardware.doors." + id + "."
		if m := d.MFRC522; m != nil {
			v.optional(k+"mfrc522.reset", m.Reset)
			v.optional(k+"mfrc522.irq", m.IRQ)
			v.nonNegative(k+"mfrc522.poll_interval", m.PollInterval)
		}
		if w := d.Wiegand; w != nil {
			v.pin(k+"wiegand.d0", w.D0)
			v.pin(k+"wiegand.d1", w.D1)
			v.nonNegative(k+"wiegand.frame_gap", w.FrameGap)
			for i, f := range w.Formats {
				if _, ok := wiegand.FormatByName(f); !ok {
					v.fail(fmt.Sprintf("%swiegand.formats[%d]", k, i), fmt.Sprintf("unknown format %q (known: %s)", f, formatNames()))
				}
			}
		}
		if o := d.OSDP; o != nil {
			c.checkOSDPReader(v, id, o, osdpAddrs)
		}
		if kp := d.Keypad; kp != nil {
			if len(kp.Rows) == 0 || len(kp.Cols) == 0 {
				v.fail(k+"keypad", "needs rows and cols")
			}
			for i, p := range kp.Rows {
				v.pin(fmt.Sprintf("%skeypad.rows[%d]", k, i), p)
			}
			for i, p := range kp.Cols {
				v.pin(fmt.Sprintf("%skeypad.cols[%d]", k, i), p)
			}
			layout := kp.Layout
			if layout == nil {
				layout = []string{"123", "456", "789", "*0#"}
			}
			if len(layout) != len(kp.Rows) {
				v.fail(k+"keypad.layout", fmt.Sprintf("has %d rows, %d row pins are wired", len(layout), len(kp.Rows)))
			}
			for i, row := range layout {
				if len([]rune(row)) != len(kp.Cols) {
					v.fail(fmt.Sprintf("%skeypad.layout[%d]", k, i), fmt.Sprintf("%q has %d keys, %d column pins are wired", row, len([]rune(row)), len(kp.Cols)))
				}
			}
			v.nonNegative(k+"keypad.debounce", kp.Debounce)
		}
		for _, o := range []struct {
			key string
			cfg *OutputConfig
		}{{"relay", d.Relay}, {"green_led", d.GreenLED}, {"red_led", d.RedLED}, {"buzzer", d.Buzzer}} {
			if o.cfg != nil {
				v.pin(k+o.key+".pin", o.cfg.Pin)
			}
		}
		for _, in := range []struct {
			key string
			cfg *InputConfig
		}{{"door_contact", d.DoorContact}, {"exit_button", d.ExitButton}, {"tamper", d.Tamper}} {
			if in.cfg == nil {
				continue
			}
			v.pin(k+in.key+".pin", in.cfg.Pin)
			if in.cfg.Switch != "" && in.cfg.Switch != "no" && in.cfg.Switch != "nc" {
				v.fail(k+in.key+".switch", fmt.Sprintf("%q is not no (normally open) or nc (normally closed)", in.cfg.Switch))
			}
			if in.cfg.Pull != "" && in.cfg.Pull != "up" && in.cfg.Pull != "down" && in.cfg.Pull != "none" {
				v.fail(k+in.key+".pull", fmt.Sprintf("%q is not up, down or none", in.cfg.Pull))
			}
			v.nonNegative(k+in.key+".debounce", in.cfg.Debounce)
		}
	}
	return errors.Join(v.errs...)
}

func formatNames() string {
	var n []string
	for _, f := range wiegand.StandardFormats() {
		n = append(n, f.Name)
	}
	return strings.Join(n, ", ")
}

type pinCheck struct {
	used map[string]string // pin → key or function using it
	errs []error
}

func (v *pinCheck) fail(key, msg string) { v.errs = append(v.errs, fmt.Errorf("%s: %s", key, msg)) }

func (v *pinCheck) pin(key, name string) {
	switch {
	case name == "":
		v.fail(key, "not set (a BCM name such as GPIO17)")
	case !validPin(name):
		v.fail(key, fmt.Sprintf("%q is not a GPIO of the 40-pin header (use BCM names GPIO0–GPIO27, e.g. GPIO17 for header pin 11)", name))
	case v.used[name] != "":
		v.fail(key, fmt.Sprintf("%s is already used by %s", name, v.used[name]))
	default:
		v.used[name] = key
	}
}

func (v *pinCheck) optional(key, name string) {
	if name != "" {
		v.pin(key, name)
	}
}

func (v *pinCheck) nonNegative(key string, d time.Duration) {
	if d < 0 {
		v.fail(key, fmt.Sprintf("%s is negative", d))
	}
}
