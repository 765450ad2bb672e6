package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cmd/portier/config"
	"github.com/portier-io/portier/cmd/portier/control"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/osdp"
)

// OSDP readers in the daemon and for installers: the door's signal on the
// reader, the reader install (through the daemon, which owns the bus), and
// doctor's and pinout's OSDP parts.

// boardIndicator shows a door's signal on its readers through the board.
type boardIndicator struct {
	b    hal.Board
	door string
}

func (i boardIndicator) Show(s agent.Signal) error { return i.b.Signal(i.door, s) }

// installTimeout bounds a reader install: a reader that does not answer
// within it is given up.
const installTimeout = time.Minute

// installReader moves door's new OSDP reader from the default install key to
// a fresh key of its own: it generates the key (crypto/rand), stores it in
// the reader's key file (mode 0600) before the reader is told, has the bus
// send it (KEYSET under the install key) and prove it (a new secure session
// under it). It never runs by itself: an installer asks for it (cmd). A
// failure before the reader took the key puts the key file back as it was.
// Its outcome is recorded, reader_installed or reader_setup_failed.
func (d *daemon) installReader(ctx context.Context, door string, cmd agent.Command, progress func(string)) (err error) {
	o, err := d.cfg.OSDPReader(door)
	if err != nil {
		return err
	}
	defer func() {
		d.recordReaderChange(ctx, door, agent.ReaderChange{Command: cmd, Op: agent.ReaderOpInstall}, err)
	}()
	if o.Plaintext() {
		return fmt.Errorf("door %s's reader is configured with secure_channel: off: it has no key to install (set secure_channel: on first)", door)
	}
	for _, h := range d.board.Readers() {
		if h.Door == door && h.State == agent.ReaderOnline && h.Secure && !h.DefaultKey {
			return fmt.Errorf("door %s's reader is online under its own key already: nothing to install", door)
		}
	}
	progress(fmt.Sprintf("door %s: OSDP reader on bus %s at address %d; its key goes to %s", door, o.Bus, *o.Address, o.KeyFile))
	var key [16]byte
	for key == ([16]byte{}) {
		if _, err := rand.Read(key[:]); err != nil {
			return fmt.Errorf("generate a key: %w", err)
		}
	}
	progress("generated a new 128-bit key (crypto/rand)")
	undo, err := storeReaderKey(o.KeyFile, key, progress)
	if err != nil {
		return err
	}
	progress("asking the reader for its default install key (SCBK-D) and sending it the new key (osdp_KEYSET)…")
	ictx, cancel := context.WithTimeout(ctx, installTimeout)
	defer cancel()
	if err := d.board.InstallReader(ictx, door, key); err != nil {
		if errors.Is(err, osdp.ErrKeyNotProven) {
			// The reader acknowledged the key: the file keeps it.
			return fmt.Errorf("the reader took the new key but a session under it failed: %v (its key stays in %s; run portier doctor)", err, o.KeyFile)
		}
		if uerr := undo(); uerr != nil {
			err = errors.Join(err, fmt.Errorf("restore the key file: %w", uerr))
		}
		return installAdvice(door, err)
	}
	o.Key = key
	progress("the reader proved the new key: its secure channel is re-established under it")
	return nil
}

// storeReaderKey writes key to path (0600, atomically) after moving an
// existing file aside to path.previous; undo puts things back as they were.
func storeReaderKey(path string, key [16]byte, progress func(string)) (undo func() error, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("key file directory: %w", err)
	}
	previous := path + ".previous"
	kept := false
	if _, err := os.Lstat(path); err == nil {
		if err := os.Rename(path, previous); err != nil {
			return nil, fmt.Errorf("keep the previous key file: %w", err)
		}
		kept = true
		progress("kept the previous key file as " + previous)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("key file: %w", err)
	}
	undo = func() error {
		if kept {
			return os.Rename(previous, path)
		}
		return os.Remove(path)
	}
	if err := config.WriteSecret(path, config.FormatOSDPKey(key)); err != nil {
		uerr := undo()
		return nil, errors.Join(fmt.Errorf("store the key: %w (the daemon must be able to write there: the default key file is in the state directory)", err), uerr)
	}
	progress("stored the key in " + path + " (mode 0600) before telling the reader")
	return undo, nil
}

// installAdvice says what an install failure means for the installer.
func installAdvice(door string, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the reader did not come up under the default install key within %s: check its wiring, baud rate and address with `portier doctor`: %w", installTimeout, err)
	case errors.Is(err, osdp.ErrRefused):
		return fmt.Errorf("the reader refused the default install key: it holds another key (installed before, elsewhere?): reset it to factory settings (its vendor's tool or configuration card), then run `portier reader install --door %s` again: %w", door, err)
	}
	return err
}

// readerUsage is `portier reader`'s synopsis.
const readerUsage = `Usage:
  portier reader install --door DOOR [--config FILE]
      move a new OSDP reader from its default install key to a key of its own
  portier reader set-address --door DOOR --address N [--baud B] [--config FILE]
      move a door's OSDP reader to address N (0–126) with osdp_COMSET, for
      several readers on one bus; B must be the bus's own rate
  portier reader output --door DOOR --output N (--on | --off | --pulse DURATION) [--config FILE]
      switch one of the reader's outputs (numbered from 0) to test its wiring

They go through the running portier: it owns the bus.`

// cmdReader is `portier reader install|set-address|output`.
func cmdReader(ctx context.Context, e *env, args []string) int {
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "install":
		return cmdReaderInstall(ctx, e, args[1:])
	case "set-address":
		return cmdReaderAddress(ctx, e, args[1:])
	case "output":
		return cmdReaderOutput(ctx, e, args[1:])
	}
	return opUsage(e, "reader", args, readerUsage+"\n")
}

// readerSession opens a `portier reader` subcommand's session: its flags
// (--door and the command's own, added by flags), the config, and the door's
// OSDP reader in it. false means: return code.
func readerSession(ctx context.Context, e *env, name, synopsis string, args []string, flags func(*flag.FlagSet)) (*session, string, int, bool) {
	s := newSession(e, name, synopsis, needControl)
	door := s.fs.String("door", "", "the door whose OSDP reader to work on")
	if flags != nil {
		flags(s.fs)
	}
	if code, ok := s.parse(args, 0); !ok {
		return nil, "", code, false
	}
	if *door == "" {
		return nil, "", argsError(e, s.fs, "--door is required: the door whose OSDP reader it is"), false
	}
	if code, ok := s.open(ctx); !ok {
		s.close()
		return nil, "", code, false
	}
	if _, err := s.cfg.OSDPReader(*door); err != nil {
		s.close()
		return nil, "", fail(e, exitUsage, "%v", err), false
	}
	return s, *door, 0, true
}

// cmdReaderInstall is `portier reader install --door DOOR`.
func cmdReaderInstall(ctx context.Context, e *env, args []string) int {
	s, door, code, ok := readerSession(ctx, e, "reader install", "--door DOOR [--config FILE]", args, nil)
	if !ok {
		return code
	}
	defer s.close()
	fmt.Fprintf(e.stdout, "Installing the OSDP reader of door %s through the running portier (it owns the bus)…\n", door)
	err := s.control().InstallReader(ctx, door, func(step string) { fmt.Fprintln(e.stdout, "  "+step) })
	if err != nil {
		return fail(e, exitFailed, "reader install: %v", err)
	}
	fmt.Fprintf(e.stdout, "Done: door %s's reader has a key of its own. Keep a copy of its key file with the gateway's backups.\n", door)
	return exitOK
}

// cmdReaderAddress is `portier reader set-address --door DOOR --address N`.
// The config is the installer's: it says which line to change, never
// rewrites it.
func cmdReaderAddress(ctx context.Context, e *env, args []string) int {
	var addr, baud *int
	s, door, code, ok := readerSession(ctx, e, "reader set-address", "--door DOOR --address N [--baud B] [--config FILE]", args, func(fs *flag.FlagSet) {
		addr = fs.Int("address", -1, "the reader's new OSDP address, 0–126")
		baud = fs.Int("baud", 0, "the line rate to confirm (default: the bus's; only the bus's is taken)")
	})
	if !ok {
		return code
	}
	defer s.close()
	if *addr < 0 {
		s.fs.Usage()
		return exitUsage
	}
	fmt.Fprintf(e.stdout, "Moving the OSDP reader of door %s to address %d through the running portier (it owns the bus)…\n", door, *addr)
	err := s.control().SetReaderAddress(ctx, door, control.ReaderAddressRequest{Address: *addr, Baud: *baud}, func(step string) { fmt.Fprintln(e.stdout, "  "+step) })
	if err != nil {
		return fail(e, exitFailed, "reader set-address: %v", err)
	}
	where := "your config"
	if *s.cfgPath != "" {
		where = *s.cfgPath
		if abs, err := filepath.Abs(where); err == nil {
			where = abs
		}
	}
	fmt.Fprintf(e.stdout, "Done: the reader answers at address %d now (portier follows it until it stops).\n", *addr)
	fmt.Fprintf(e.stdout, "Now set hardware.doors.%s.osdp.address: %d in %s: until then a restart will not find the reader (it keeps its new address across power cycles).\n", door, *addr, where)
	return exitOK
}

// cmdReaderOutput is `portier reader output --door DOOR --output N --on|--off|--pulse D`.
func cmdReaderOutput(ctx context.Context, e *env, args []string) int {
	var n *int
	var on, off *bool
	var pulse *time.Duration
	s, door, code, ok := readerSession(ctx, e, "reader output", "--door DOOR --output N (--on | --off | --pulse DURATION) [--config FILE]", args, func(fs *flag.FlagSet) {
		n = fs.Int("output", -1, "the reader's output, numbered from 0 as OSDP counts")
		on = fs.Bool("on", false, "switch it on (until --off)")
		off = fs.Bool("off", false, "switch it off")
		pulse = fs.Duration("pulse", 0, "switch it on for this long (100ms steps), then off")
	})
	if !ok {
		return code
	}
	defer s.close()
	req := control.ReaderOutputRequest{Output: *n}
	actions := 0
	if *on {
		req.Action, actions = control.OutputOn, actions+1
	}
	if *off {
		req.Action, actions = control.OutputOff, actions+1
	}
	if *pulse != 0 {
		req.Action, req.Pulse, actions = control.OutputPulse, pulse.String(), actions+1
	}
	if *n < 0 || actions != 1 {
		s.fs.Usage()
		return exitUsage
	}
	if err := s.control().ReaderOutput(ctx, door, req); err != nil {
		return fail(e, exitFailed, "reader output: %v", err)
	}
	what := map[string]string{control.OutputOn: "on", control.OutputOff: "off", control.OutputPulse: "on for " + req.Pulse}[req.Action]
	fmt.Fprintf(e.stdout, "Door %s's reader switched its output %d %s.\n", door, *n, what)
	return exitOK
}

// setReaderAddress moves door's OSDP reader to another address (osdp_COMSET
// over its channel) and proves it answers there. The bus follows the reader;
// the config file is the installer's to change (the command says which line).
// Its outcome is recorded, reader_address_changed or reader_setup_failed.
func (d *daemon) setReaderAddress(ctx context.Context, door string, cmd agent.Command, req control.ReaderAddressRequest, progress func(string)) (err error) {
	o, err := d.cfg.OSDPReader(door)
	if err != nil {
		return err
	}
	var move hal.ReaderMove
	defer func() {
		d.recordReaderChange(ctx, door, agent.ReaderChange{Command: cmd, Op: agent.ReaderOpSetAddress,
			Bus: move.Bus, From: int(move.From), To: req.Address, Baud: move.Baud}, err)
	}()
	progress(fmt.Sprintf("door %s: OSDP reader on bus %s; sending it osdp_COMSET for address %d over its channel…", door, o.Bus, req.Address))
	sctx, cancel := context.WithTimeout(ctx, installTimeout)
	defer cancel()
	move, err = d.board.SetReaderAddress(sctx, door, req.Address, req.Baud)
	if err != nil {
		return err
	}
	progress(fmt.Sprintf("the reader confirmed (osdp_COM): it moved from address %d to %d at %d baud and keeps it across power cycles", move.From, move.To, move.Baud))
	progress(fmt.Sprintf("it answers at address %d over its channel", move.To))
	d.log.Warn("osdp reader moved to a new address: the config must follow", "door", door, "bus", move.Bus, "from", move.From, "to", move.To,
		"config", fmt.Sprintf("hardware.doors.%s.osdp.address: %d", door, move.To))
	return nil
}

// readerOutput drives one output of door's OSDP reader. Its outcome is
// recorded, reader_output_tested or reader_setup_failed.
func (d *daemon) readerOutput(ctx context.Context, door string, cmd agent.Command, req control.ReaderOutputRequest) (err error) {
	if _, err := d.cfg.OSDPReader(door); err != nil {
		return err
	}
	pulse, err := req.PulseFor()
	if err != nil {
		return err
	}
	defer func() {
		d.recordReaderChange(ctx, door, agent.ReaderChange{Command: cmd, Op: agent.ReaderOpOutput, Output: req.Output, Action: req.Action, Pulse: pulse}, err)
	}()
	action := map[string]osdp.OutputAction{control.OutputOn: osdp.OutputOn, control.OutputOff: osdp.OutputOff, control.OutputPulse: osdp.OutputPulseOn}[req.Action]
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return d.board.ReaderOutput(octx, door, req.Output, action, pulse)
}

// recordReaderChange records an installer's action on door's OSDP reader
// (err: how it failed) with the reader as the board knows it now, for the
// audit trail. It is recorded also when the caller gave up (ctx ended): the
// action happened, or failed, all the same.
func (d *daemon) recordReaderChange(ctx context.Context, door string, c agent.ReaderChange, err error) {
	c.Err, c.Reader = err, agent.ReaderHealth{Door: door}
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		c.Err = fmt.Errorf("the installer's command gave up before it ended: %w", err)
	}
	for _, h := range d.board.Readers() {
		if h.Door == door {
			c.Reader = h
		}
	}
	e := c.Event(d.e.now())
	if rerr := d.events.Record(context.WithoutCancel(ctx), e); rerr != nil {
		d.log.Error("record reader event", "type", string(e.Type), "door", door, "err", rerr)
	}
}

// osdpChecks are doctor's OSDP checks: from the running daemon when it
// answers (it owns the buses: nobody else may open their ports), else by
// running the buses for a few seconds; plus the warning for every reader
// configured without Secure Channel, every time.
func osdpChecks(ctx context.Context, s *session, probe func() []hal.Check) []hal.Check {
	var checks []hal.Check
	for _, w := range s.cfg.Hardware.OSDPWarnings(s.cfg.DoorIDs()) {
		checks = append(checks, hal.Check{Name: "OSDP secure channel", OK: true, Warn: true, Detail: w, Fix: "use a reader with OSDP Secure Channel and set secure_channel: on"})
	}
	if len(s.cfg.Hardware.OSDPBuses) == 0 {
		return checks
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	st, err := s.control().Status(cctx)
	cancel()
	if err == nil {
		checks = append(checks, hal.Check{Name: "OSDP buses", OK: true, Detail: "portier is running and owns the buses: its live view of the readers"})
		return append(checks, hal.ReaderChecks(st.Readers)...)
	}
	return append(checks, probe()...)
}

// writeOSDPWiring describes the OSDP buses for pinout: the pair runs from the
// adapter, not the header.
func writeOSDPWiring(w io.Writer, cfg *config.Config) {
	for _, b := range cfg.Hardware.OSDPBuses {
		var readers []string
		for _, id := range cfg.DoorIDs() {
			if wr, ok := cfg.Hardware.Doors[id]; ok && wr.OSDP != nil && wr.OSDP.Bus == b.Name && wr.OSDP.Address != nil {
				readers = append(readers, fmt.Sprintf("%s (address %d)", id, *wr.OSDP.Address))
			}
		}
		baud := b.Baud
		if baud == 0 {
			baud = hal.DefaultOSDPBaud
		}
		dir := b.Direction
		if dir == "" {
			dir = hal.OSDPDirectionAuto
		}
		fmt.Fprintf(w, "\nOSDP bus %s on %s, %d baud, direction %s: readers %s.\n", b.Name, b.Port, baud, dir, strings.Join(readers, ", "))
		fmt.Fprintln(w, "  RS-485 adapter A → every reader's A, B → B (some vendors print D+/D− or +/−, and swap them), GND → reader GND;")
		fmt.Fprintln(w, "  one twisted pair daisy-chained from reader to reader (no star), 120 Ω across A/B at both ends of the chain.")
		if b.Direction == hal.OSDPDirectionGPIO {
			fmt.Fprintf(w, "  The transceiver's DE and /RE (tied together) go to %s.\n", b.DEPin)
		}
	}
}
