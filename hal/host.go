package hal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/gpioioctl"

	"github.com/portier-io/portier/hal/desfire"
	"github.com/portier-io/portier/hal/doorio"
	"github.com/portier-io/portier/hal/keypad"
	"github.com/portier-io/portier/hal/mfrc522"
	"github.com/portier-io/portier/hal/mfrc522/cardcheck"
	"github.com/portier-io/portier/hal/mfrc522/iso14443"
	"github.com/portier-io/portier/hal/wiegand"
)

// This file is the one place that calls periph's host registries
// (host.Init, gpioreg, spireg, gpioioctl). Everything else works on
// periph.io/x/conn interfaces.

// initHost loads periph's host drivers. host.Init only errors for registry
// problems; a driver that fails lands in State.Failed, so callers must check
// that what they need resolved.
func initHost() (*driverreg.State, error) {
	st, err := host.Init()
	if err != nil {
		return nil, fmt.Errorf("hal: periph host drivers: %w", err)
	}
	return st, nil
}

// hostDiagnosis explains why GPIO or SPI may be missing, for error messages.
func hostDiagnosis(st *driverreg.State) string {
	var b strings.Builder
	if len(gpioioctl.Chips) == 0 {
		b.WriteString(gpioFix())
	}
	for _, f := range st.Failed {
		fmt.Fprintf(&b, "\n  periph driver %s failed: %v", f.D, f.Err)
	}
	return b.String()
}

// gpioFix tells why no GPIO chip was found.
func gpioFix() string {
	chips, _ := filepath.Glob("/dev/gpiochip*")
	if len(chips) == 0 {
		return "no GPIO character device (/dev/gpiochip*): this machine has no GPIO (not a Raspberry Pi, or a kernel without GPIO support); use driver: sim to dry-run the config"
	}
	if f, err := os.Open(chips[0]); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return fmt.Sprintf("%s is not accessible: add the service user to the gpio group (sudo usermod -aG gpio portier) and restart", chips[0])
		}
		return fmt.Sprintf("%s: %v", chips[0], err)
	} else {
		f.Close()
	}
	return "GPIO chips exist but periph registered none: check the periph driver errors below"
}

// spiProblem says why an SPI device could not be opened and what to do, in
// the installer's words: periph's own message for a missing port ("did you
// forget to call Init()?") is about periph's API, never shown.
func spiProblem(name string, err error) (detail, fix string) {
	ports := spireg.All()
	msg := err.Error()
	switch {
	case strings.Contains(msg, "permission denied"):
		return msg, "add the service user to the spi group (sudo usermod -aG spi portier) and restart"
	case strings.Contains(msg, "busy"):
		return msg, "another program or a kernel driver holds the SPI device: stop it (check `sudo lsof /dev/spidev*` and dtoverlay lines in config.txt)"
	case len(ports) == 0 && len(gpioioctl.Chips) == 0:
		return name + " not available: this machine has no SPI port", "this machine has no GPIO or SPI at all (not a Raspberry Pi, or its drivers could not be loaded): run on the gateway, or try the config with hardware.driver: sim"
	case len(ports) == 0:
		return name + " not available: SPI is not enabled", "add dtparam=spi=on to /boot/firmware/config.txt (for SPI1: dtoverlay=spi1-1cs) and reboot"
	}
	var names []string
	for _, p := range ports {
		names = append(names, p.Name)
	}
	return msg, fmt.Sprintf("no %s: wrong chip select? This gateway has %s; SDA goes to CE0 (header pin 24) for SPI0.0, CE1 (pin 26) for SPI0.1", name, strings.Join(names, ", "))
}

// hostCheck is the self-test's verdict on periph's host drivers: a machine
// with neither GPIO nor SPI is not a gateway it can test.
func hostCheck(st *driverreg.State, gpioChips, spiPorts int) Check {
	c := Check{Name: "periph host drivers", OK: true}
	var loaded, failed []string
	for _, d := range st.Loaded {
		loaded = append(loaded, d.String())
	}
	for _, f := range st.Failed {
		failed = append(failed, fmt.Sprintf("%s failed: %v", f.D, f.Err))
	}
	if gpioChips == 0 && spiPorts == 0 {
		c.OK = false
		c.Detail = "this machine has no GPIO and no SPI: it is not a Raspberry Pi (or a board like it), or its kernel's GPIO and SPI drivers could not be loaded"
		if len(failed) > 0 {
			c.Detail += " (" + strings.Join(failed, "; ") + ")"
		}
		c.Fix = "run portier doctor on the gateway itself; on a Raspberry Pi, /dev/gpiochip0 must exist and, for MFRC522 readers, SPI be enabled (dtparam=spi=on in /boot/firmware/config.txt, then reboot); to try this config on this machine, use hardware.driver: sim"
		return c
	}
	c.Detail = "loaded: " + strings.Join(loaded, ", ")
	if len(failed) > 0 {
		c.Detail += "; " + strings.Join(failed, "; ")
	}
	return c
}

// lookupPin finds a GPIO by name, nil when this gateway has none such.
func lookupPin(name string) gpio.PinIO { return gpioreg.ByName(name) }

// resolver looks every configured name up before anything is driven.
type resolver struct {
	problems []string
	closers  []func() error
}

func (r *resolver) fail(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (r *resolver) pin(key, name string) gpio.PinIO {
	if name == "" {
		return nil
	}
	p := gpioreg.ByName(name)
	if p == nil {
		r.fail("%s: %s not found on this gateway", key, name)
		return nil
	}
	return p
}

// chipFor finds the GPIO chip that has every named line.
func (r *resolver) chipFor(key string, names ...string) *gpioioctl.GPIOChip {
	for _, c := range gpioioctl.Chips {
		all := true
		for _, n := range names {
			if c.ByName(n) == nil {
				all = false
			}
		}
		if all {
			return c
		}
	}
	r.fail("%s: no GPIO chip has all of %s", key, strings.Join(names, ", "))
	return nil
}

func (r *resolver) spi(key, name string) spi.PortCloser {
	p, err := spireg.Open(name)
	if err != nil {
		detail, fix := spiProblem(name, err)
		r.fail("%s: %s (%s)", key, detail, fix)
		return nil
	}
	r.closers = append(r.closers, p.Close)
	return p
}

func (r *resolver) close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		_ = r.closers[i]()
	}
	r.closers = nil
}

// OpenPeriph turns a validated config into devices on this gateway's GPIO
// and SPI. It resolves every pin and SPI device first and refuses, naming
// each missing one and why, before driving anything; then it sets every
// output to its safe state before it configures inputs and readers.
func OpenPeriph(cfg Config, doorIDs []string, log *slog.Logger) (*DeviceBoard, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.checkWiring(doorIDs); err != nil {
		return nil, fmt.Errorf("hal: invalid wiring: %w", err)
	}
	st, err := initHost()
	if err != nil {
		return nil, err
	}
	for _, f := range st.Failed {
		log.Warn("periph driver failed", "driver", f.D.String(), "err", f.Err)
	}
	r := &resolver{}
	type plan struct {
		id      string
		w       DoorWiring
		outs    map[Output]gpio.PinIO
		ins     map[Input]gpio.PinIO
		spi     spi.PortCloser
		rst     gpio.PinIO
		irq     gpio.PinIO
		wgChip  *gpioioctl.GPIOChip
		kpChip  *gpioioctl.GPIOChip
		kpRows  []gpio.PinIO
		decoder wiegand.Decoder
	}
	var plans []plan
	for _, id := range orderedDoors(cfg.Doors, doorIDs) {
		w := cfg.Doors[id]
		k := "hardware.doors." + id + "."
		p := plan{id: id, w: w, outs: map[Output]gpio.PinIO{}, ins: map[Input]gpio.PinIO{}}
		for out, oc := range outputConfigs(w) {
			p.outs[out] = r.pin(k+string(out)+".pin", oc.Pin)
		}
		for in, ic := range inputConfigs(w) {
			p.ins[in] = r.pin(k+string(in)+".pin", ic.Pin)
		}
		if m := w.MFRC522; m != nil {
			p.rst = r.pin(k+"mfrc522.reset", m.Reset)
			p.irq = r.pin(k+"mfrc522.irq", m.IRQ)
			p.spi = r.spi(k+"mfrc522.spi", m.SPI)
		}
		if wc := w.Wiegand; wc != nil {
			p.wgChip = r.chipFor(k+"wiegand", wc.D0, wc.D1)
			if p.decoder, err = wc.Decoder(); err != nil {
				r.fail("%swiegand.formats: %v", k, err)
			}
		}
		if kc := w.Keypad; kc != nil {
			for i, name := range kc.Rows {
				p.kpRows = append(p.kpRows, r.pin(fmt.Sprintf("%skeypad.rows[%d]", k, i), name))
			}
			p.kpChip = r.chipFor(k+"keypad.cols", kc.Cols...)
		}
		plans = append(plans, p)
	}
	buses := openOSDP(cfg, doorIDs, r)
	if len(r.problems) > 0 {
		CloseOSDPPorts(buses)
		r.close()
		return nil, fmt.Errorf("hal: this gateway lacks configured hardware:\n  %s\n%s", strings.Join(r.problems, "\n  "), hostDiagnosis(st))
	}

	doors := make([]DoorDevices, len(plans))
	closers := r.closers
	osdpRun := NewOSDPRuntime(buses, OSDPOptions{Logger: log})
	fail := func(err error) (*DeviceBoard, error) {
		_ = NewDeviceBoard(doors, BoardOptions{Closers: closers, OSDP: osdpRun}).Close()
		return nil, err
	}
	// Outputs first: safe state before anything else moves.
	for i, p := range plans {
		d := &doors[i]
		*d = DoorDevices{Door: p.id, Outputs: map[Output]*doorio.Output{}, Inputs: map[Input]*doorio.Input{}}
		for out, oc := range outputConfigs(p.w) {
			o, err := doorio.NewOutput(p.id+" "+string(out), p.outs[out], doorio.OutputConfig{ActiveLow: oc.ActiveLow, SafeOn: oc.SafeOn})
			if err != nil {
				return fail(fmt.Errorf("hal: %w", err))
			}
			d.Outputs[out] = o
		}
	}
	for i, p := range plans {
		d := &doors[i]
		for in, ic := range inputConfigs(p.w) {
			x, err := doorio.NewInput(p.id+" "+string(in), p.ins[in], doorio.InputConfig{
				ActiveLow: ic.ActiveLow(), Pull: pull(ic.Pull), Debounce: ic.Debounce,
			})
			if err != nil {
				return fail(fmt.Errorf("hal: %w", err))
			}
			d.Inputs[in] = x
			d.Halts = append(d.Halts, x.Halt)
		}
		if m := p.w.MFRC522; m != nil {
			mc := mfrc522.Config{Logger: log}
			if p.rst != nil {
				mc.Reset = p.rst
			}
			if p.irq != nil {
				mc.IRQ = p.irq
			}
			dev, err := mfrc522.New(p.spi, mc)
			if err != nil {
				return fail(fmt.Errorf("hal: %s: %w", p.id, err))
			}
			if d.Cards, err = NewCardStation(p.id, cfg.Cards); err != nil {
				return fail(err)
			}
			d.RFID = mfrc522.NewReader(dev, mfrc522.ReaderConfig{PollInterval: m.PollInterval, Inspect: d.Cards.Inspect})
		}
		if wc := p.w.Wiegand; wc != nil {
			ls, err := p.wgChip.LineSet(gpioioctl.LineInput, gpio.FallingEdge, gpio.PullUp, wc.D0, wc.D1)
			if err != nil {
				return fail(fmt.Errorf("hal: %s: wiegand lines %s/%s: %w", p.id, wc.D0, wc.D1, err))
			}
			closers = append(closers, ls.Close)
			d.Halts = append(d.Halts, ls.Halt)
			d.Wiegand = wiegand.NewReader(ls, wiegand.ReaderConfig{
				D0: p.wgChip.ByName(wc.D0).Number(), D1: p.wgChip.ByName(wc.D1).Number(),
				FrameGap: wc.FrameGap, Decoder: p.decoder, Logger: log,
			})
		}
		if kc := p.w.Keypad; kc != nil {
			ls, err := p.kpChip.LineSet(gpioioctl.LineInput, gpio.FallingEdge, gpio.PullUp, kc.Cols...)
			if err != nil {
				return fail(fmt.Errorf("hal: %s: keypad columns: %w", p.id, err))
			}
			closers = append(closers, ls.Close)
			d.Halts = append(d.Halts, ls.Halt)
			rows := make([]gpio.PinOut, len(p.kpRows))
			for i, r := range p.kpRows {
				rows[i] = r
			}
			kp, err := keypad.New(rows, ls, len(kc.Cols), keypad.Config{Layout: kc.Layout, Debounce: kc.Debounce})
			if err != nil {
				return fail(fmt.Errorf("hal: %s: %w", p.id, err))
			}
			d.Keypad = kp
		}
	}
	return NewDeviceBoard(doors, BoardOptions{Logger: log, Closers: closers, OSDP: osdpRun}), nil
}

func pull(s string) gpio.Pull {
	switch s {
	case "down":
		return gpio.PullDown
	case "none":
		return gpio.Float
	}
	return gpio.PullUp
}

func outputConfigs(w DoorWiring) map[Output]*OutputConfig {
	m := map[Output]*OutputConfig{}
	for out, c := range map[Output]*OutputConfig{Relay: w.Relay, GreenLED: w.GreenLED, RedLED: w.RedLED, Buzzer: w.Buzzer} {
		if c != nil {
			m[out] = c
		}
	}
	return m
}

func inputConfigs(w DoorWiring) map[Input]*InputConfig {
	m := map[Input]*InputConfig{}
	for in, c := range map[Input]*InputConfig{DoorContact: w.DoorContact, ExitButton: w.ExitButton, Tamper: w.Tamper} {
		if c != nil {
			m[in] = c
		}
	}
	return m
}

// SelfTest checks a configured gateway's hardware for an installer: periph
// drivers, the GPIO chip, every pin, each MFRC522 (SPI device, version
// register, CRC unit), Wiegand idle levels and inputs (OSDPSelfTest checks
// the OSDP buses). Only with actuate does
// it click relays, flash LEDs and sound buzzers. Each failed check says how
// to fix it.
func SelfTest(ctx context.Context, cfg Config, doorIDs []string, actuate bool, log *slog.Logger) []Check {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var checks []Check
	add := func(c Check) { checks = append(checks, c) }
	if err := cfg.checkWiring(doorIDs); err != nil {
		add(Check{Name: "wiring config", Detail: err.Error(), Fix: "correct the hardware: section of the config"})
		return checks
	}
	st, err := initHost()
	if err != nil {
		add(Check{Name: "periph host drivers", Detail: err.Error(), Fix: "report this as a bug: periph's driver registry is inconsistent"})
		return checks
	}
	host := hostCheck(st, len(gpioioctl.Chips), len(spireg.All()))
	add(host)
	gpioOK := len(gpioioctl.Chips) > 0
	switch {
	case gpioOK:
		var names []string
		for _, c := range gpioioctl.Chips {
			names = append(names, fmt.Sprintf("%s (%s, %d lines)", c.Name(), c.Label(), c.LineCount()))
		}
		add(Check{Name: "GPIO chip", OK: true, Detail: strings.Join(names, ", ")})
	case !host.OK:
		add(Check{Name: "GPIO chip", Detail: "none found", Fix: "no GPIO on this machine (see the periph host drivers line)"})
	default:
		add(Check{Name: "GPIO chip", Detail: "none found", Fix: gpioFix()})
	}
	findPin := func(name, pinName string) gpio.PinIO {
		c := Check{Name: name}
		if !gpioOK {
			c.Detail, c.Fix = pinName+" not available", "no GPIO chip (see above)"
			add(c)
			return nil
		}
		p := gpioreg.ByName(pinName)
		if p == nil {
			c.Detail, c.Fix = pinName+" not found", "check the pin name; this gateway's GPIO chip does not have it"
			add(c)
			return nil
		}
		return p
	}
	for _, id := range orderedDoors(cfg.Doors, doorIDs) {
		w := cfg.Doors[id]
		if m := w.MFRC522; m != nil {
			checks = append(checks, testMFRC522(ctx, id, m, cfg.Cards, gpioOK, log)...)
		}
		if wc := w.Wiegand; wc != nil {
			name := fmt.Sprintf("%s: Wiegand D0 %s, D1 %s", id, wc.D0, wc.D1)
			if !gpioOK {
				add(Check{Name: name, Detail: "lines not available", Fix: "no GPIO chip (see above)"})
			} else {
				add(testWiegandLines(name, wc))
			}
		}
		if kc := w.Keypad; kc != nil {
			name := fmt.Sprintf("%s: keypad %dx%d", id, len(kc.Rows), len(kc.Cols))
			ok := true
			for _, p := range append(append([]string(nil), kc.Rows...), kc.Cols...) {
				if findPin(name, p) == nil {
					ok = false
					break
				}
			}
			if ok {
				add(Check{Name: name, OK: true, Detail: "all lines found"})
			}
		}
		for _, in := range Inputs() {
			ic := inputConfigs(w)[in]
			if ic == nil {
				continue
			}
			name := fmt.Sprintf("%s: %s on %s", id, in, ic.Pin)
			p := findPin(name, ic.Pin)
			if p == nil {
				continue
			}
			x, err := doorio.NewInput(name, p, doorio.InputConfig{ActiveLow: ic.ActiveLow(), Pull: pull(ic.Pull)})
			if err != nil {
				add(Check{Name: name, Detail: err.Error(), Fix: lineFix(err)})
				continue
			}
			add(Check{Name: name, OK: true, Detail: DescribeInput(in, x.Level())})
		}
		for _, out := range Outputs() {
			oc := outputConfigs(w)[out]
			if oc == nil {
				continue
			}
			name := fmt.Sprintf("%s: %s on %s", id, out, oc.Pin)
			p := findPin(name, oc.Pin)
			if p == nil {
				continue
			}
			if !actuate {
				add(Check{Name: name, OK: true, Detail: "line found (not switched: run with --actuate to test it)"})
				continue
			}
			add(actuateOutput(ctx, name, out, p, oc))
		}
	}
	return checks
}

// gpioAvailable loads periph's host drivers and reports whether this
// gateway has a GPIO chip.
func gpioAvailable() bool {
	if _, err := initHost(); err != nil {
		return false
	}
	return len(gpioioctl.Chips) > 0
}

// DescribeInput says what an input state means, for self-test reports.
func DescribeInput(in Input, active bool) string {
	switch {
	case in == DoorContact && active:
		return "reads open"
	case in == DoorContact:
		return "reads closed"
	case in == ExitButton && active:
		return "reads pressed (if nobody presses it, check switch: no/nc)"
	case in == ExitButton:
		return "reads released"
	case active:
		return "reads TRIGGERED (check the tamper loop and switch: no/nc)"
	}
	return "reads normal"
}

func lineFix(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "busy"):
		return "another program or kernel driver holds this line (an overlay in config.txt, another daemon): free it or pick another pin"
	case strings.Contains(msg, "permission denied"):
		return "add the service user to the gpio group (sudo usermod -aG gpio portier) and restart"
	}
	return "check the pin and its wiring"
}

// testMFRC522 checks the chip and, with a card on the reader, ISO/IEC
// 14443-4 through it.
func testMFRC522(ctx context.Context, door string, m *MFRC522Config, cards CardsConfig, gpioOK bool, log *slog.Logger) []Check {
	c := Check{Name: fmt.Sprintf("%s: MFRC522 on %s", door, m.SPI)}
	port, err := spireg.Open(m.SPI)
	if err != nil {
		c.Detail, c.Fix = spiProblem(m.SPI, err)
		return []Check{c}
	}
	defer port.Close()
	mc := mfrc522.Config{Logger: log, CommandTimeout: 50 * time.Millisecond}
	if gpioOK && m.Reset != "" {
		if p := gpioreg.ByName(m.Reset); p != nil {
			mc.Reset = p
		}
	}
	dev, err := mfrc522.New(port, mc)
	if err != nil {
		c.Detail, c.Fix = err.Error(), "check the SPI device name"
		return []Check{c}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := dev.Init(ctx); err != nil {
		c.Detail = err.Error()
		switch {
		case errors.Is(err, mfrc522.ErrNoChip):
			c.Fix = "no chip answers: check 3.3 V (pin 1/17) and GND, MISO→pin 21, MOSI→pin 19, SCK→pin 23, and SDA→CE0 (pin 24) for SPI0.0 or CE1 (pin 26) for SPI0.1"
		case errors.Is(err, mfrc522.ErrSelfTest), errors.Is(err, mfrc522.ErrTimeout):
			c.Fix = "the chip answers but does not work: shorten the wires, check 3.3 V under load, or replace the module"
		default:
			c.Fix = "check the SPI wiring and that nothing else uses this SPI device"
		}
		return []Check{c}
	}
	c.OK = true
	c.Detail = fmt.Sprintf("%s (version register 0x%02X), CRC unit OK", mfrc522.ChipName(dev.Version()), dev.Version())
	iso := TestISO14443_4(ctx, door, dev, cards)
	_ = dev.AntennaOff()
	return []Check{c, iso}
}

// TestISO14443_4 checks that the reader carries ISO/IEC 14443-4 (what
// DESFire cards and fingerprints need): with a card on the reader it runs
// RATS and asks the card for its version and originality signature (no key
// needed). Without a card there is nothing to test; the check says so and
// passes, since the chip itself was checked.
func TestISO14443_4(ctx context.Context, door string, dev *mfrc522.Dev, cards CardsConfig) Check {
	c := Check{Name: fmt.Sprintf("%s: ISO/IEC 14443-4 (card mode %s)", door, cards.Mode(door))}
	const retry = "hold a DESFire card flat on the reader and run portier doctor again"
	atqa, err := dev.Request(ctx, true)
	var card mfrc522.Card
	if err == nil {
		card, err = dev.Select(ctx, atqa)
	}
	switch {
	case errors.Is(err, mfrc522.ErrNoCard):
		c.OK, c.Detail = true, "not tested: no card on the reader ("+retry+" to test RATS and the card's answers)"
		return c
	case err != nil && cardcheck.ChipFailed(err):
		c.Detail, c.Fix = "selecting the card: "+err.Error(), "the chip stopped answering: check the SPI wiring and 3.3 V under load"
		return c
	case err != nil:
		c.OK, c.Detail = true, "not tested: the card on the reader did not answer cleanly ("+err.Error()+"); "+retry
		return c
	}
	fp := desfire.Fingerprint{UID: card.UID, ATQA: card.ATQA, SAK: card.SAK}
	if !card.ISODEP() {
		c.OK = true
		c.Detail = fmt.Sprintf("not tested: the card on the reader is a %s, which does not speak ISO/IEC 14443-4; %s", fp.Describe(), retry)
		return c
	}
	link, err := iso14443.Activate(ctx, dev, dev.Clock(), iso14443.Config{})
	if err != nil {
		c.Detail = "RATS failed: " + err.Error()
		c.Fix = "the chip selects cards but ISO/IEC 14443-4 frames fail: keep the card still on the reader, shorten the wires, check 3.3 V under load; if it persists, try another MFRC522 module"
		return c
	}
	fp.ATS = link.ATS().Raw
	trusted := cards.Trusted
	if trusted == nil {
		trusted = desfire.NXPOriginalityKeys()
	}
	fp, err = desfire.CaptureFingerprint(ctx, link, fp, trusted)
	_ = link.Deselect(ctx)
	if err != nil {
		c.Detail = "RATS worked, then the card stopped answering: " + err.Error()
		c.Fix = "keep the card still on the reader and run portier doctor again; if it persists, shorten the wires or check 3.3 V under load"
		return c
	}
	c.OK = true
	c.Detail = fmt.Sprintf("RATS and card commands work (ATS % X): %s", fp.ATS, fp.Describe())
	return c
}

func testWiegandLines(name string, wc *WiegandConfig) Check {
	c := Check{Name: name}
	var chip *gpioioctl.GPIOChip
	for _, ch := range gpioioctl.Chips {
		if ch.ByName(wc.D0) != nil && ch.ByName(wc.D1) != nil {
			chip = ch
		}
	}
	if chip == nil {
		c.Detail, c.Fix = "lines not found on one GPIO chip", "check the pin names"
		return c
	}
	ls, err := chip.LineSet(gpioioctl.LineInput, gpio.NoEdge, gpio.PullUp, wc.D0, wc.D1)
	if err != nil {
		c.Detail, c.Fix = err.Error(), lineFix(err)
		return c
	}
	defer ls.Close()
	v, err := ls.Read(0b11)
	if err != nil {
		c.Detail, c.Fix = err.Error(), lineFix(err)
		return c
	}
	if v&0b11 != 0b11 {
		c.Detail = fmt.Sprintf("idle levels D0=%d D1=%d, want both high", v&1, v>>1&1)
		c.Fix = "idle Wiegand lines are high: check the reader's power, the level shifter or optocoupler orientation, and D0/D1 swapped with GND"
		return c
	}
	c.OK, c.Detail = true, "both lines idle high"
	return c
}

func actuateOutput(ctx context.Context, name string, out Output, p gpio.PinIO, oc *OutputConfig) Check {
	c := Check{Name: name}
	o, err := doorio.NewOutput(name, p, doorio.OutputConfig{ActiveLow: oc.ActiveLow, SafeOn: oc.SafeOn})
	if err != nil {
		c.Detail, c.Fix = err.Error(), lineFix(err)
		return c
	}
	on := map[Output]time.Duration{Relay: 300 * time.Millisecond, Buzzer: 100 * time.Millisecond}[out]
	if on == 0 {
		on = 500 * time.Millisecond
	}
	err = o.Set(!oc.SafeOn)
	if err == nil {
		t := time.NewTimer(on)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if herr := o.Halt(); err == nil {
		err = herr
	}
	if err != nil {
		c.Detail, c.Fix = err.Error(), lineFix(err)
		return c
	}
	c.OK = true
	c.Detail = fmt.Sprintf("switched for %s and back to its safe state: did you hear or see it? If not, check active_low and the wiring", on)
	return c
}
