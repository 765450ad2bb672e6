package sim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/mfrc522/mfrc522sim"
	"github.com/portier-io/portier/hal/wiegand"
)

// ErrUsage marks a command line that is not a valid command.
var ErrUsage = errors.New("sim: bad command")

const help = `commands:
  tap DOOR UID                   present a card that shows only its UID (hex, 4/7/10 bytes)
  card DOOR NAME                 present a named card (see cards)
  cards                          list the named cards
  wiegand DOOR FORMAT [FC] CARD  present a Wiegand card (H10301, H10306, C1000, H10302, H10304)
  frame DOOR BITS VALUE          send a raw Wiegand frame
  keys DOOR KEYS                 type keys (0-9 * #)
  open DOOR | close DOOR         door contact
  exit DOOR                      press and release the exit button
  tamper DOOR on|off             tamper switch
  osdp DOOR card FORMAT [FC] CARD | raw BITS VALUE | keys KEYS
                                 a card or keys at the door's OSDP reader (wiegand and keys
                                 go there too when the door has no Wiegand reader or keypad)
  osdp DOOR tamper on|off | power fault|ok | unplug | plug | reset | show
                                 the OSDP reader's tamper switch, power, cable, a power
                                 cycle, and its state, LED and buzzer
  wait DURATION                  pause (e.g. 2s, 500ms)
  show [DOOR]                    print the outputs
  help                           this list`

// Exec runs one command line and writes any output to w. Blank lines and
// comments do nothing: a line starting with #, or the rest of a line after
// " # " (# alone is also a key).
func (b *Board) Exec(ctx context.Context, line string, w io.Writer) error {
	if strings.HasPrefix(strings.TrimSpace(line), "#") {
		return nil
	}
	if i := strings.Index(line, " # "); i >= 0 {
		line = line[:i]
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return nil
	}
	usage := func(form string) error { return fmt.Errorf("%w: usage: %s", ErrUsage, form) }
	switch cmd, args := f[0], f[1:]; cmd {
	case "tap":
		if len(args) != 2 {
			return usage("tap DOOR UID")
		}
		uid, err := agent.ParseUID(args[1])
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUsage, err)
		}
		return b.Tap(args[0], uid)
	case "card":
		if len(args) != 2 {
			return usage("card DOOR NAME")
		}
		return b.Card(ctx, args[0], args[1])
	case "cards":
		if len(args) != 0 {
			return usage("cards")
		}
		if len(b.cards) == 0 {
			fmt.Fprintln(w, "no named cards: add some under hardware.sim_cards")
		}
		for _, name := range slices.Sorted(maps.Keys(b.cards)) {
			fmt.Fprintf(w, "%-12s %s\n", name, b.cards[name].describe())
		}
		return nil
	case "wiegand":
		if len(args) != 3 && len(args) != 4 {
			return usage("wiegand DOOR FORMAT [FACILITY] CARD")
		}
		nums, err := numbers(args[2:])
		if err != nil {
			return err
		}
		var fc uint64
		if len(nums) == 2 {
			fc = nums[0]
		}
		if b.routesToOSDP(args[0], func(w hal.DoorWiring) bool { return w.Wiegand != nil }) {
			return b.OSDPCard(args[0], strings.ToUpper(args[1]), fc, nums[len(nums)-1])
		}
		return b.Wiegand(args[0], strings.ToUpper(args[1]), fc, nums[len(nums)-1])
	case "frame":
		if len(args) != 3 {
			return usage("frame DOOR BITS VALUE")
		}
		fr, err := parseFrame(args[1], args[2])
		if err != nil {
			return err
		}
		return b.Frame(args[0], fr)
	case "keys":
		if len(args) != 2 {
			return usage("keys DOOR KEYS")
		}
		if b.routesToOSDP(args[0], func(w hal.DoorWiring) bool { return w.Keypad != nil || w.Wiegand != nil }) {
			return b.OSDPKeys(args[0], args[1])
		}
		return b.Keys(args[0], args[1])
	case "open", "close":
		if len(args) != 1 {
			return usage(cmd + " DOOR")
		}
		return b.SetInput(args[0], hal.DoorContact, cmd == "open")
	case "exit":
		if len(args) != 1 {
			return usage("exit DOOR")
		}
		if err := b.SetInput(args[0], hal.ExitButton, true); err != nil {
			return err
		}
		return b.SetInput(args[0], hal.ExitButton, false)
	case "tamper":
		if len(args) != 2 || (args[1] != "on" && args[1] != "off") {
			return usage("tamper DOOR on|off")
		}
		return b.SetInput(args[0], hal.Tamper, args[1] == "on")
	case "osdp":
		return b.osdpCommand(args, w)
	case "wait":
		if len(args) != 1 {
			return usage("wait DURATION")
		}
		d, err := time.ParseDuration(args[0])
		if err != nil || d < 0 {
			return fmt.Errorf("%w: %q is not a duration like 2s or 500ms", ErrUsage, args[0])
		}
		return b.clock.Sleep(ctx, d)
	case "show":
		doors := b.order
		if len(args) == 1 {
			if _, err := b.door(args[0]); err != nil {
				return err
			}
			doors = args
		} else if len(args) > 1 {
			return usage("show [DOOR]")
		}
		b.show(w, doors)
		return nil
	case "help":
		fmt.Fprintln(w, help)
		return nil
	default:
		return fmt.Errorf("%w: unknown command %q (try help)", ErrUsage, cmd)
	}
}

func (b *Board) show(w io.Writer, doors []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range doors {
		d := b.doors[id]
		var parts []string
		for _, out := range hal.Outputs() {
			if on, ok := d.outputs[out]; ok {
				parts = append(parts, fmt.Sprintf("%s=%s", out, onOff(on)))
			}
		}
		for _, in := range hal.Inputs() {
			if v, ok := d.inputs[in]; ok {
				parts = append(parts, fmt.Sprintf("%s=%s", in, onOff(v)))
			}
		}
		if _, ok := b.osdp.pds[id]; ok {
			parts = append(parts, b.describeReader(id))
		}
		if b.osdp.real.rt.HasReader(id) {
			// Its LED and buzzer are at the reader itself.
			parts = append(parts, "reader="+readerState(b.osdp.real.rt, id)+" (real)")
		}
		if len(parts) == 0 {
			parts = []string{"no devices"}
		}
		fmt.Fprintf(w, "%s: %s\n", id, strings.Join(parts, " "))
	}
}

// numbers parses decimal numbers of a command line.
func numbers(args []string) ([]uint64, error) {
	nums := make([]uint64, 0, len(args))
	for _, a := range args {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not a number", ErrUsage, a)
		}
		nums = append(nums, n)
	}
	return nums, nil
}

// parseFrame parses a raw frame's BITS and VALUE.
func parseFrame(bitsArg, value string) (wiegand.Frame, error) {
	bits, err := strconv.Atoi(bitsArg)
	if err != nil || bits < 1 || bits > wiegand.MaxBits {
		return wiegand.Frame{}, fmt.Errorf("%w: BITS must be 1–64", ErrUsage)
	}
	v, err := strconv.ParseUint(value, 0, 64)
	if err != nil {
		return wiegand.Frame{}, fmt.Errorf("%w: %q is not a number (0x… for hex, 0b… for binary)", ErrUsage, value)
	}
	return wiegand.Frame{Bits: bits, Raw: v}, nil
}

// routesToOSDP reports whether a card or keys for door go to its OSDP
// reader: it has one, and none of the devices own says would take them.
func (b *Board) routesToOSDP(doorID string, own func(hal.DoorWiring) bool) bool {
	d, err := b.door(doorID)
	if err != nil {
		return false
	}
	_, ok := b.osdp.pds[doorID]
	return (ok || b.osdp.real.rt.HasReader(doorID)) && !own(d.wiring)
}

// selfTestISO runs the periph board's ISO/IEC 14443-4 check on the door's
// simulated reader with a simulated DESFire card in the field.
func (b *Board) selfTestISO(ctx context.Context, door string, r *simReader) hal.Check {
	var card *simCard
	for _, name := range slices.Sorted(maps.Keys(b.cards)) {
		if c := b.cards[name]; c.des != nil && c.cfg.Fault == "" {
			card = c
			break
		}
	}
	if card == nil {
		return hal.Check{Name: fmt.Sprintf("%s: ISO/IEC 14443-4 (card mode %s)", door, r.station.Mode()), OK: true,
			Detail: "simulated; not exercised: no DESFire card under hardware.sim_cards to place on the reader"}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.chip.Place(card.field()); err != nil {
		return hal.Check{Name: door + ": ISO/IEC 14443-4", Detail: err.Error()}
	}
	defer r.chip.Clear()
	r.clock.Advance(mfrc522sim.PowerUp)
	c := r.testISO(ctx, door)
	c.Detail = fmt.Sprintf("simulated, with sim card %s on the reader: %s", card.name, c.Detail)
	return c
}

func onOff(v bool) string {
	if v {
		return "on"
	}
	return "off"
}

// ScriptOptions shape RunScript.
type ScriptOptions struct {
	// KeepGoing writes a failing command's error to w and reads on
	// (interactive use); otherwise the error stops the script with its line
	// number.
	KeepGoing bool
	// Prompt writes "> " before each line is read.
	Prompt bool
	// Extra runs before the board's own commands, for commands of the
	// program driving the board (portier run adds status and quit): handled
	// false passes the line on to the board. An error wrapping ErrStop ends
	// the script and RunScript returns it as is.
	Extra func(ctx context.Context, cmd string, args []string, w io.Writer) (handled bool, err error)
}

// ErrStop, returned by an Extra command, ends the script at once.
var ErrStop = errors.New("sim: stop")

// RunScript executes commands line by line until r ends or ctx is done.
func (b *Board) RunScript(ctx context.Context, r io.Reader, w io.Writer, o ScriptOptions) error {
	sc := bufio.NewScanner(r)
	for n := 1; ; n++ {
		if o.Prompt {
			fmt.Fprint(w, "> ")
		}
		if !sc.Scan() {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		err := b.execLine(ctx, sc.Text(), w, o.Extra)
		switch {
		case err == nil:
		case errors.Is(err, ErrStop):
			return err
		case ctx.Err() != nil:
			return nil
		case o.KeepGoing:
			fmt.Fprintln(w, "error:", err)
		default:
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("sim: read script: %w", err)
	}
	return nil
}

// execLine offers a line to extra, then to the board.
func (b *Board) execLine(ctx context.Context, line string, w io.Writer, extra func(context.Context, string, []string, io.Writer) (bool, error)) error {
	if extra != nil && !strings.HasPrefix(strings.TrimSpace(line), "#") {
		if i := strings.Index(line, " # "); i >= 0 {
			line = line[:i]
		}
		if f := strings.Fields(line); len(f) > 0 {
			if handled, err := extra(ctx, f[0], f[1:], w); handled || err != nil {
				return err
			}
		}
	}
	return b.Exec(ctx, line, w)
}

// SelfTest is the simulated counterpart of hal.SelfTest: every configured
// device is present; with actuate, each output is switched on and back to
// its safe state (visible in Changes). OSDPSelfTest checks the simulated
// OSDP readers.
func (b *Board) SelfTest(ctx context.Context, actuate bool) []hal.Check {
	checks := []hal.Check{{Name: "board", OK: true, Detail: "simulated (driver: sim): no GPIO or SPI is touched"}}
	for _, id := range b.order {
		d := b.doors[id]
		w := d.wiring
		if m := w.MFRC522; m != nil {
			checks = append(checks, hal.Check{Name: fmt.Sprintf("%s: MFRC522 on %s", id, m.SPI), OK: true, Detail: "simulated MFRC522 v2.0 (version register 0x92): the real driver over a chip model"})
			checks = append(checks, b.selfTestISO(ctx, id, d.rfid))
		}
		if wc := w.Wiegand; wc != nil {
			checks = append(checks, hal.Check{Name: fmt.Sprintf("%s: Wiegand D0 %s, D1 %s", id, wc.D0, wc.D1), OK: true, Detail: "simulated, lines idle high"})
		}
		if kp := w.Keypad; kp != nil {
			checks = append(checks, hal.Check{Name: fmt.Sprintf("%s: keypad %dx%d", id, len(kp.Rows), len(kp.Cols)), OK: true, Detail: "simulated"})
		}
		for _, in := range hal.Inputs() {
			ic := inputConfig(w, in)
			if ic == nil {
				continue
			}
			v, _ := b.InputState(id, in)
			checks = append(checks, hal.Check{Name: fmt.Sprintf("%s: %s on %s", id, in, ic.Pin), OK: true, Detail: "simulated, " + hal.DescribeInput(in, v)})
		}
		for _, out := range hal.Outputs() {
			oc := outputConfig(w, out)
			if oc == nil {
				continue
			}
			c := hal.Check{Name: fmt.Sprintf("%s: %s on %s", id, out, oc.Pin), OK: true, Detail: "simulated (not switched: run with --actuate to test it)"}
			if actuate {
				err := b.Set(id, out, !oc.SafeOn)
				if err == nil {
					err = b.Set(id, out, oc.SafeOn)
				}
				c.OK, c.Detail = err == nil, "simulated, switched and back to its safe state"
				if err != nil {
					c.Detail = err.Error()
				}
			}
			checks = append(checks, c)
		}
	}
	return checks
}
