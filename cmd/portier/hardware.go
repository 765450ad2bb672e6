package main

import (
	"context"
	"fmt"
	"html"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/portier-io/portier/cmd/portier/config"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/sim"
)

// cmdDoctor is the installer's hardware self-test.
func cmdDoctor(ctx context.Context, e *env, args []string) int {
	s := newSession(e, "doctor", "[--config FILE] [--actuate]", needHardware)
	actuate := s.fs.Bool("actuate", false, "also click each relay, flash each LED and sound each buzzer (people at the doors will notice)")
	if code, ok := s.parse(args, 0); !ok {
		return code
	}
	if code, ok := s.open(ctx); !ok {
		return code
	}
	defer s.close()
	cfg, ids := s.cfg, s.cfg.DoorIDs()
	// The readers' keys, as run reads them (a bad key file is a failed check).
	keyProblems, _ := cfg.LoadOSDPKeys()
	hw, cards := cardsCheck(cfg)
	var checks []hal.Check
	for _, p := range keyProblems {
		checks = append(checks, hal.Check{Name: "OSDP key file", Detail: p, Fix: "write the key file as `portier reader install` does (32 hex digits, mode 0600), or install the reader again"})
	}
	switch cfg.Hardware.Driver {
	case hal.DriverSim:
		b, err := sim.New(hw, ids, sim.Options{})
		if err != nil {
			return fail(e, exitUsage, "%v", err)
		}
		checks = append(checks, b.SelfTest(ctx, *actuate)...)
		checks = append(checks, osdpChecks(ctx, s, func() []hal.Check { return b.OSDPSelfTest(ctx) })...)
		_ = b.Close()
	default:
		checks = append(checks, hal.SelfTest(ctx, hw, ids, *actuate, nil)...)
		checks = append(checks, osdpChecks(ctx, s, func() []hal.Check { return hal.OSDPSelfTest(ctx, hw, ids, nil) })...)
	}
	checks = append(checks, cards)
	checks = append(checks, storageCheck(cfg.Database))
	fmt.Fprintf(e.stdout, "portier doctor: driver %s, %s\n\n", cfg.Hardware.Driver, configName(*s.cfgPath))
	failed, warned := printChecks(e.stdout, checks)
	if failed > 0 {
		fmt.Fprintf(e.stdout, "\n%d of %d checks failed.\n", failed, len(checks))
		return exitFailed
	}
	if warned > 0 {
		fmt.Fprintf(e.stdout, "\nAll %d checks passed, %d with a warning.\n", len(checks), warned)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "\nAll %d checks passed.\n", len(checks))
	return exitOK
}

// cardsCheck reports the doors' card modes and the DESFire keys the
// readers get, and returns the hardware config with them (without them
// when the key file fails, so the rest can still be checked).
func cardsCheck(cfg *config.Config) (hal.Config, hal.Check) {
	c := hal.Check{Name: "cards: credential modes and DESFire keys"}
	hw, err := cfg.HardwareConfig()
	if err != nil {
		c.Detail, c.Fix = err.Error(), "fix cards.desfire_key_file (portier check-config says what is wrong)"
		hw = cfg.Hardware
		hw.SimCards = nil
		return hw, c
	}
	var modes []string
	for _, d := range cfg.Doors {
		modes = append(modes, d.ID+" "+string(d.CardMode()))
	}
	c.OK = true
	c.Detail = strings.Join(modes, ", ")
	if p := cfg.Cards.Unfingerprinted; p != "" {
		c.Detail += "; unfingerprinted cards: " + p
	}
	var sets []string
	for _, k := range hw.Cards.Sites {
		role := "read key"
		if k.PICC != nil {
			role = "all masters: an issuing station"
		}
		sets = append(sets, fmt.Sprintf("version %d (%s)", k.Version, role))
	}
	switch {
	case len(sets) > 0 && config.IsDemo(hw.Cards.Sites):
		c.Detail += "; DESFire keys: Portier's public DEMO keys, " + strings.Join(sets, ", ")
	case len(sets) > 0:
		c.Detail += "; DESFire keys: " + strings.Join(sets, ", ")
	default:
		c.Detail += "; no DESFire key file"
	}
	return hw, c
}

// printChecks writes the result table and returns the number of failures
// and of warnings.
func printChecks(w io.Writer, checks []hal.Check) (failed, warned int) {
	width := 0
	for _, c := range checks {
		width = max(width, len(c.Name))
	}
	for _, c := range checks {
		mark := "pass"
		switch {
		case !c.OK:
			mark = "FAIL"
			failed++
		case c.Warn:
			mark = "WARN"
			warned++
		}
		fmt.Fprintf(w, "%s  %-*s  %s\n", mark, width, c.Name, c.Detail)
		if (!c.OK || c.Warn) && c.Fix != "" {
			fmt.Fprintf(w, "      %-*s  fix: %s\n", width, "", c.Fix)
		}
	}
	return failed, warned
}

// cmdPinout draws the 40-pin header with the configured wiring.
func cmdPinout(ctx context.Context, e *env, args []string) int {
	s := newSession(e, "pinout", "[--config FILE] [--svg FILE]", needHardware)
	svgPath := s.fs.String("svg", "", "also write the picture as an SVG `file`")
	if code, ok := s.parse(args, 0); !ok {
		return code
	}
	if code, ok := s.open(ctx); !ok {
		return code
	}
	defer s.close()
	wires := s.cfg.Hardware.Wires(s.cfg.DoorIDs())
	labels := pinLabels(wires)
	wiegand := slices.ContainsFunc(wires, func(w hal.Wire) bool { return w.Device == "Wiegand" })
	writePinout(e.stdout, labels, wiegand)
	writeOSDPWiring(e.stdout, s.cfg)
	if *svgPath != "" {
		var b strings.Builder
		writeSVG(&b, labels, wiegand)
		if err := os.WriteFile(*svgPath, []byte(b.String()), 0o644); err != nil {
			return fail(e, exitFailed, "pinout: %v", err)
		}
		fmt.Fprintf(e.stdout, "\nWrote %s.\n", *svgPath)
	}
	return exitOK
}

// pinLabels assigns each wire to a physical header pin: GPIO wires to their
// pin, power and ground wires spread over the header's 3V3, 5V and GND pins
// so each device gets its own.
func pinLabels(wires []hal.Wire) map[int][]string {
	byName := map[string][]int{}
	for _, p := range hal.Header() {
		byName[p.Name] = append(byName[p.Name], p.Physical)
	}
	next := map[string]int{}
	labels := map[int][]string{}
	for _, w := range wires {
		pins := byName[w.Pin]
		if len(pins) == 0 {
			continue
		}
		phys := pins[0]
		if len(pins) > 1 { // a power rail: round-robin over its pins
			phys = pins[next[w.Pin]%len(pins)]
			next[w.Pin]++
		}
		l := w.Door + " " + w.Device
		if w.Signal != "" {
			l += " " + w.Signal
		}
		labels[phys] = append(labels[phys], l)
	}
	return labels
}

// writePinout prints the header; the 5 V warning only where Wiegand readers
// are wired.
func writePinout(w io.Writer, labels map[int][]string, wiegand bool) {
	header := hal.Header()
	left := 0
	for i := 0; i < len(header); i += 2 {
		left = max(left, len(strings.Join(labels[header[i].Physical], ", ")))
	}
	fmt.Fprintln(w, "Raspberry Pi 40-pin header, pin 1 at the SD-card end, seen from above (BCM names):")
	fmt.Fprintln(w)
	for i := 0; i < len(header); i += 2 {
		l, r := header[i], header[i+1]
		line := fmt.Sprintf("%*s  %-6s %2d (%s)(%s) %-2d %-6s  %s",
			left, strings.Join(labels[l.Physical], ", "), l.Name, l.Physical,
			dot(labels[l.Physical]), dot(labels[r.Physical]), r.Physical, r.Name, strings.Join(labels[r.Physical], ", "))
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	if wiegand {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Wiegand readers drive 5 V: put a level shifter or optocoupler between D0/D1 and the Pi.")
	}
}

func dot(labels []string) string {
	if len(labels) > 0 {
		return "*"
	}
	return " "
}

// writeSVG draws the header as two columns of pads with labels outside.
func writeSVG(w io.Writer, labels map[int][]string, wiegand bool) {
	const (
		rowH    = 24
		labelW  = 330
		nameW   = 70
		padX    = labelW + nameW
		top     = 60
		width   = 2*padX + 60
		fontCSS = "font-family:monospace;font-size:12px"
	)
	header := hal.Header()
	height := top + 20*rowH + 40
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%d" y="30" style="%s;font-size:15px" text-anchor="middle">Raspberry Pi 40-pin header (pin 1 top left, SD-card end)</text>`+"\n", width/2, fontCSS)
	fmt.Fprintf(w, `<rect x="%d" y="%d" width="60" height="%d" rx="6" fill="#333"/>`+"\n", padX, top-14, 20*rowH+4)
	for i, p := range header {
		row, col := i/2, i%2
		y := top + row*rowH
		cx := padX + 18 + col*24
		fmt.Fprintf(w, `<circle cx="%d" cy="%d" r="8" fill="%s" stroke="%s" stroke-width="2"/>`+"\n", cx, y, padColor(p.Name), strokeColor(labels[p.Physical]))
		fmt.Fprintf(w, `<text x="%d" y="%d" style="%s;font-size:8px" fill="white" text-anchor="middle">%d</text>`+"\n", cx, y+3, fontCSS, p.Physical)
		anchor, nameX, labelX := "end", padX-6, padX-nameW
		if col == 1 {
			anchor, nameX, labelX = "start", padX+66, padX+60+nameW
		}
		fmt.Fprintf(w, `<text x="%d" y="%d" style="%s" text-anchor="%s">%s</text>`+"\n", nameX, y+4, fontCSS, anchor, p.Name)
		if l := labels[p.Physical]; len(l) > 0 {
			fmt.Fprintf(w, `<text x="%d" y="%d" style="%s;font-weight:bold" fill="#0050a0" text-anchor="%s">%s</text>`+"\n", labelX, y+4, fontCSS, anchor, html.EscapeString(strings.Join(l, ", ")))
		}
	}
	if wiegand {
		fmt.Fprintf(w, `<text x="%d" y="%d" style="%s" text-anchor="middle">Wiegand readers drive 5 V: use a level shifter or optocoupler on D0/D1.</text>`+"\n", width/2, height-14, fontCSS)
	}
	fmt.Fprintln(w, "</svg>")
}

func padColor(name string) string {
	switch name {
	case "3V3":
		return "#e8a000"
	case "5V":
		return "#d00000"
	case "GND":
		return "#000000"
	}
	return "#2a8a2a"
}

func strokeColor(labels []string) string {
	if len(labels) > 0 {
		return "#00a0ff"
	}
	return "#555555"
}
