package sim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/osdp/osdpsim"
	"github.com/portier-io/portier/hal/simtime"
	"github.com/portier-io/portier/hal/wiegand"
)

// The simulated OSDP readers sit on simulated RS-485 lines (osdpsim): every
// byte takes its time at the bus's baud rate in the lines' simulated time,
// and the bus waits (between polls, for a reader that does not answer) on
// the board's clock, so at run time a silent reader takes as long to be
// declared offline as on a real bus. A reader's key is the configured key
// file's: a door whose key file does not exist yet has a factory-fresh
// reader, in install mode, waiting for `portier reader install`.

// simOutputs is how many outputs a simulated reader has (`portier reader
// output` drives them; `osdp DOOR show` shows them).
const simOutputs = 2

// simVendor is the simulated readers' vendor OUI (locally administered).
var simVendor = [3]byte{0x02, 0x50, 0x54}

// osdpSim is the board's OSDP side: simulated readers on simulated lines,
// and the buses the config marks real (osdp_buses[].real) on their ports.
type osdpSim struct {
	clock *simtime.Clock // the lines' time
	rt    *hal.OSDPRuntime
	pds   map[string]*osdpsim.PD // by door

	real *realOSDP
}

// newOSDPSim builds the simulated readers and lines of cfg's OSDP buses,
// and the runtime of its real ones.
func newOSDPSim(cfg hal.Config, doorIDs []string, board Clock, log *slog.Logger) (*osdpSim, error) {
	simulated, real := splitBuses(cfg)
	buses, err := simulated.OSDPBusPlan(doorIDs)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	s := &osdpSim{clock: simtime.New(), pds: map[string]*osdpsim.PD{}}
	if s.real, err = newRealOSDP(cfg, real, doorIDs, board, log); err != nil {
		return nil, err
	}
	s.clock.AdvanceTo(board.Now())
	for i := range buses {
		b := &buses[i]
		var pds []*osdpsim.PD
		for _, r := range b.Readers {
			h := fnv.New32a()
			io.WriteString(h, r.Door)
			pd := osdpsim.NewPD(osdpsim.Config{
				Addr: r.Addr, Key: r.Key, Install: r.Key == [16]byte{} && !r.Plaintext,
				Identity: osdp.Identity{Vendor: simVendor, Model: 1, Version: 1, Serial: h.Sum32(), Firmware: [3]byte{2, 2, 0}},
				Outputs:  simOutputs,
			})
			s.pds[r.Door] = pd
			pds = append(pds, pd)
		}
		if b.Direction.Mode == osdp.DirectionPin {
			b.Direction = osdp.Direction{} // no DE pin to drive on a simulated line
		}
		b.Port = "simulated line"
		baud := b.Baud
		b.Open = func() (hal.OSDPPort, error) {
			return &pacedLine{Line: osdpsim.NewLine(s.clock, baud, pds...), clock: board, timeout: time.Second}, nil
		}
	}
	s.rt = hal.NewOSDPRuntime(buses, hal.OSDPOptions{Clock: board, BusClock: busClock{s.clock, board}, Logger: log})
	return s, nil
}

// busClock is the simulated buses' time: the lines' simulated clock, moved
// on by the board's clock whenever a bus waits.
type busClock struct {
	sim   *simtime.Clock
	board Clock
}

func (c busClock) Now() time.Time { return c.sim.Now() }

func (c busClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := c.board.Sleep(ctx, d); err != nil {
		return err
	}
	c.sim.Advance(d)
	return nil
}

// pacedLine is a simulated line as a bus's port: a read that finds nothing
// (the line advanced its simulated time by the read timeout) also waits the
// timeout on the board's clock.
type pacedLine struct {
	*osdpsim.Line
	clock   Clock
	timeout time.Duration
}

func (p *pacedLine) SetReadTimeout(d time.Duration) error {
	p.timeout = d
	return p.Line.SetReadTimeout(d)
}

func (p *pacedLine) Read(b []byte) (int, error) {
	n, err := p.Line.Read(b)
	if n == 0 && err == nil {
		_ = p.clock.Sleep(context.Background(), p.timeout)
	}
	return n, err
}

// runtime is the runtime that runs door's OSDP reader: the real buses'
// or the simulated ones' (which has none for a door without a reader).
func (s *osdpSim) runtime(door string) *hal.OSDPRuntime {
	if s.real.rt.HasReader(door) {
		return s.real.rt
	}
	return s.rt
}

// run runs the simulated and the real buses until ctx ends.
func (s *osdpSim) run(ctx context.Context, emit func(hal.Event)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.real.rt.Run(ctx, emit)
	}()
	s.rt.Run(ctx, emit)
	<-done
}

// readers is every OSDP reader's health: the simulated buses', then the
// real ones'.
func (s *osdpSim) readers() []agent.ReaderHealth {
	return append(s.rt.Readers(), s.real.rt.Readers()...)
}

// close releases the lines opened and never run.
func (s *osdpSim) close() error { return errors.Join(s.rt.Close(), s.real.rt.Close()) }

// reader returns door's simulated OSDP reader.
func (b *Board) reader(doorID string) (*osdpsim.PD, error) {
	if _, err := b.door(doorID); err != nil {
		return nil, err
	}
	if err := b.osdp.real.simulate(doorID); err != nil {
		return nil, err
	}
	pd, ok := b.osdp.pds[doorID]
	if !ok {
		return nil, fmt.Errorf("sim: door %s has no OSDP reader", doorID)
	}
	return pd, nil
}

// OSDPCard presents a card on the door's OSDP reader, as the raw bits of a
// Wiegand format.
func (b *Board) OSDPCard(doorID, format string, facility, card uint64) error {
	fr, err := encodeWiegand(format, facility, card)
	if err != nil {
		return err
	}
	return b.OSDPRaw(doorID, fr)
}

// OSDPRaw presents raw card bits on the door's OSDP reader.
func (b *Board) OSDPRaw(doorID string, fr wiegand.Frame) error {
	pd, err := b.reader(doorID)
	if err != nil {
		return err
	}
	pd.PresentWiegand(fr.Raw, fr.Bits)
	return nil
}

// OSDPKeys types keys on the door's OSDP reader's keypad.
func (b *Board) OSDPKeys(doorID, keys string) error {
	pd, err := b.reader(doorID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if !strings.ContainsRune("0123456789*#", k) {
			return fmt.Errorf("sim: no key %q on an OSDP reader's keypad (keys: 0-9 * #)", k)
		}
	}
	pd.PressKeys(keys)
	return nil
}

// OSDPReader returns the door's simulated OSDP reader, to set its tamper,
// power and faults.
func (b *Board) OSDPReader(doorID string) (*osdpsim.PD, error) { return b.reader(doorID) }

// osdpCommand runs `osdp DOOR …`.
func (b *Board) osdpCommand(args []string, w io.Writer) error {
	usage := fmt.Errorf("%w: usage: osdp DOOR card FORMAT [FC] CARD | raw BITS VALUE | keys KEYS | tamper on|off | power fault|ok | unplug | plug | reset | show", ErrUsage)
	if len(args) < 2 {
		return usage
	}
	door, verb, rest := args[0], args[1], args[2:]
	pd, err := b.reader(door)
	if err != nil {
		return err
	}
	switch {
	case verb == "card" && (len(rest) == 2 || len(rest) == 3):
		nums, err := numbers(rest[1:])
		if err != nil {
			return err
		}
		var fc uint64
		if len(nums) == 2 {
			fc = nums[0]
		}
		return b.OSDPCard(door, strings.ToUpper(rest[0]), fc, nums[len(nums)-1])
	case verb == "raw" && len(rest) == 2:
		fr, err := parseFrame(rest[0], rest[1])
		if err != nil {
			return err
		}
		return b.OSDPRaw(door, fr)
	case verb == "keys" && len(rest) == 1:
		return b.OSDPKeys(door, rest[0])
	case verb == "tamper" && len(rest) == 1 && (rest[0] == "on" || rest[0] == "off"):
		pd.SetTamper(rest[0] == "on")
	case verb == "power" && len(rest) == 1 && (rest[0] == "fault" || rest[0] == "ok"):
		pd.SetPower(rest[0] == "fault")
	case verb == "unplug" && len(rest) == 0:
		pd.SetFaults(osdpsim.Faults{Silent: true})
	case verb == "plug" && len(rest) == 0:
		pd.SetFaults(osdpsim.Faults{})
	case verb == "reset" && len(rest) == 0:
		pd.Reset()
	case verb == "show" && len(rest) == 0:
		fmt.Fprintln(w, b.describeReader(door))
	default:
		return usage
	}
	return nil
}

// describeReader is one line about a door's OSDP reader: its state as the
// gateway sees it, and its LED and buzzer as a person at the door does.
func (b *Board) describeReader(door string) string {
	pd := b.osdp.pds[door]
	state := readerState(b.osdp.rt, door)
	now := b.osdp.clock.Now()
	buzz := "off"
	if pd.Buzzing(now) {
		buzz = "on"
	}
	outs := make([]string, simOutputs)
	for i := range outs {
		outs[i] = "off"
		if pd.Output(i, now) {
			outs[i] = "on"
		}
	}
	line := fmt.Sprintf("reader=%s led=%s reader_buzzer=%s reader_outputs=%s", state, ledWord(pd.LED(now)), buzz, strings.Join(outs, ","))
	// The last pattern the gateway sent, as the reader showed it then: a
	// deny lasts 3 s, which simulated time can pass before anyone looks.
	cmds := pd.Commands()
	for i := len(cmds) - 1; i >= 0; i-- {
		if cmds[i].Code == osdp.CmdLED {
			return line + " last_led_command=" + ledWord(pd.LED(cmds[i].At))
		}
	}
	return line
}

// readerState is door's reader's state as the gateway sees it.
func readerState(rt *hal.OSDPRuntime, door string) string {
	state := "starting"
	for _, h := range rt.Readers() {
		if h.Door == door {
			state = string(h.State)
			if h.Reason != "" {
				state += " (" + h.Reason + ")"
			}
			if h.State == "online" && h.Secure {
				state += " secure"
			}
		}
	}
	return state
}

// ledWord is an LED view as one word.
func ledWord(v osdpsim.LEDView) string { return strings.ReplaceAll(v.String(), " ", "_") }

// osdpProbe bounds how long the self-test waits for the simulated readers.
const osdpProbe = 5 * time.Second

// OSDPSelfTest is the simulated counterpart of hal.OSDPSelfTest: it runs
// the simulated OSDP buses briefly and checks each reader as doctor checks
// a real one.
func (b *Board) OSDPSelfTest(ctx context.Context) []hal.Check {
	var checks []hal.Check
	if len(b.osdp.pds) > 0 {
		checks = hal.ReaderChecks(b.osdp.rt.Probe(ctx, osdpProbe))
	}
	return append(checks, b.osdp.real.selfTest(ctx)...)
}
