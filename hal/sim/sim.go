// Package sim is a simulated door board: the same hal.Board the periph
// board is, driven by commands instead of hardware. It backs `driver: sim`
// at run time (demos, installers dry-running a config) and end-to-end tests.
//
// Commands, from a script or typed interactively (one per line; a line
// starting with # is a comment, as is the rest of a line after " # "):
//
//	tap DOOR UID                   present a card that shows only its UID (hex, 4/7/10 bytes) to the door's MFRC522
//	card DOOR NAME                 present a named card of hardware.sim_cards (a DESFire, a Classic copy…)
//	cards                          list the named cards
//	wiegand DOOR FORMAT [FC] CARD  present a Wiegand card (H10301, H10306, C1000, H10302, H10304)
//	frame DOOR BITS VALUE          send a raw Wiegand frame (e.g. a corrupted one: frame studio 26 0x1235)
//	keys DOOR KEYS                 type keys (0-9 * #) on the door's keypad
//	open DOOR / close DOOR         open or close the door (door contact)
//	exit DOOR                      press and release the exit button
//	tamper DOOR on|off             trigger or clear the tamper switch
//	osdp DOOR …                    the door's OSDP reader: card, raw, keys, tamper, power,
//	                               unplug, plug, reset, show (see help)
//	wait DURATION                  pause the script (e.g. wait 2s)
//	show [DOOR]                    print the outputs
//	help                           list the commands
//
// A card goes through the same Wiegand decoder as on real hardware, so
// parity and format settings behave the same; an MFRC522 card goes through
// the real MFRC522 driver and the door's card checks over a chip model
// (cards.go); an OSDP reader is a simulated reader on a simulated RS-485
// line, polled by the real OSDP code over Secure Channel (osdp.go), unless
// its bus is marked real: then it is a real reader on the bus's serial port
// (realosdp.go), and `osdp DOOR …` for it fails. Commands for a device the
// door does not have fail.
package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/desfire"
	"github.com/portier-io/portier/hal/desfire/desfiresim"
	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/wallclock"
	"github.com/portier-io/portier/hal/wiegand"
)

// Clock is the board's time source; Sleep serves the script's wait.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// Options configures a Board.
type Options struct {
	Clock  Clock        // nil: system clock
	Logger *slog.Logger // nil: discard
	// Queue bounds the events waiting for Run; 0: 256.
	Queue int
}

// Change is one output change, for observers.
type Change struct {
	At     time.Time
	Door   string
	Output hal.Output
	On     bool
}

// Board is the simulated board.
type Board struct {
	latch  string // SimLatchFile, "" for none
	clock  Clock
	log    *slog.Logger
	order  []string
	doors  map[string]*door
	cards  map[string]*simCard
	events chan queued
	osdp   *osdpSim

	mu      sync.Mutex
	changes []Change
	subs    map[int]chan Change
	nextSub int
	closed  bool
}

type door struct {
	id      string
	wiring  hal.DoorWiring
	decoder wiegand.Decoder
	rfid    *simReader          // nil: no MFRC522
	outputs map[hal.Output]bool // commanded state
	safe    map[hal.Output]bool
	inputs  map[hal.Input]bool
}

// New builds a board from a wiring config. Doors without wiring have no
// devices. Outputs start in their safe state.
func New(cfg hal.Config, doorIDs []string, opts Options) (*Board, error) {
	if err := cfg.Validate(doorIDs); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if opts.Clock == nil {
		opts.Clock = wallclock.Clock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Queue <= 0 {
		opts.Queue = 256
	}
	b := &Board{latch: cfg.SimLatchFile, clock: opts.Clock, log: opts.Logger, doors: map[string]*door{},
		events: make(chan queued, opts.Queue), subs: map[int]chan Change{}}
	vendor, err := desfiresim.VendorKey(vendorSeed)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if b.cards, err = buildCards(cfg, vendor, opts.Clock.Now()); err != nil {
		return nil, err
	}
	// The simulated cards' vendor is trusted beside NXP, as a real site
	// trusts NXP: their originality signatures verify.
	cards := cfg.Cards
	if cards.Trusted == nil {
		cards.Trusted = desfire.NXPOriginalityKeys()
	}
	cards.Trusted = append(slices.Clone(cards.Trusted), desfiresim.TrustKey(vendor))
	for _, id := range doorIDs {
		w := cfg.Doors[id]
		d := &door{id: id, wiring: w, outputs: map[hal.Output]bool{}, safe: map[hal.Output]bool{}, inputs: map[hal.Input]bool{}}
		if w.Wiegand != nil {
			dec, err := w.Wiegand.Decoder()
			if err != nil {
				return nil, fmt.Errorf("sim: %s: %w", id, err)
			}
			d.decoder = dec
		}
		if w.MFRC522 != nil {
			if d.rfid, err = newSimReader(id, cards); err != nil {
				return nil, fmt.Errorf("sim: %w", err)
			}
		}
		for _, out := range hal.Outputs() {
			if oc := outputConfig(w, out); oc != nil {
				d.outputs[out], d.safe[out] = oc.SafeOn, oc.SafeOn
			}
		}
		for _, in := range hal.Inputs() {
			if inputConfig(w, in) != nil {
				d.inputs[in] = false
			}
		}
		b.order = append(b.order, id)
		b.doors[id] = d
	}
	if b.osdp, err = newOSDPSim(cfg, doorIDs, opts.Clock, opts.Logger); err != nil {
		return nil, err
	}
	if err := b.loadLatch(); err != nil {
		return nil, err
	}
	return b, nil
}

// loadLatch takes the output levels a previous process left in the latch
// file: until someone drives them, they stay as they were.
func (b *Board) loadLatch() error {
	if b.latch == "" {
		return nil
	}
	data, err := os.ReadFile(b.latch)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sim: latch file: %w", err)
	}
	var levels map[string]map[hal.Output]bool
	if err := json.Unmarshal(data, &levels); err != nil {
		return fmt.Errorf("sim: latch file %s: %w", b.latch, err)
	}
	for id, outs := range levels {
		d, ok := b.doors[id]
		if !ok {
			continue
		}
		for out, on := range outs {
			if _, wired := d.outputs[out]; wired {
				d.outputs[out] = on
			}
		}
	}
	return nil
}

// saveLatchLocked writes every output level to the latch file (atomically,
// so a kill never leaves half a file).
func (b *Board) saveLatchLocked() {
	if b.latch == "" {
		return
	}
	levels := map[string]map[hal.Output]bool{}
	for id, d := range b.doors {
		levels[id] = maps.Clone(d.outputs)
	}
	data, _ := json.Marshal(levels) // plain maps: cannot fail
	tmp := b.latch + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		b.log.Error("sim latch file", "err", err)
		return
	}
	if err := os.Rename(tmp, b.latch); err != nil {
		b.log.Error("sim latch file", "err", err)
	}
}

func outputConfig(w hal.DoorWiring, out hal.Output) *hal.OutputConfig {
	return map[hal.Output]*hal.OutputConfig{hal.Relay: w.Relay, hal.GreenLED: w.GreenLED, hal.RedLED: w.RedLED, hal.Buzzer: w.Buzzer}[out]
}

func inputConfig(w hal.DoorWiring, in hal.Input) *hal.InputConfig {
	return map[hal.Input]*hal.InputConfig{hal.DoorContact: w.DoorContact, hal.ExitButton: w.ExitButton, hal.Tamper: w.Tamper}[in]
}

// Doors returns the door ids in config order.
func (b *Board) Doors() []string { return slices.Clone(b.order) }

// queued is an event waiting for Run, or a Drain marker (done set).
type queued struct {
	ev   hal.Event
	done chan struct{}
}

// Run implements hal.Board: it runs the OSDP buses and delivers
// queued events until ctx ends.
func (b *Board) Run(ctx context.Context, emit func(hal.Event)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.osdp.run(ctx, func(e hal.Event) {
			select {
			case b.events <- queued{ev: e}:
			case <-ctx.Done():
			}
		})
	}()
	defer func() { <-done }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case q := <-b.events:
			if q.done != nil {
				close(q.done)
				continue
			}
			emit(q.ev)
		}
	}
}

// Signal implements hal.Board: the door's OSDP reader shows it.
func (b *Board) Signal(doorID string, s agent.Signal) error {
	if _, err := b.door(doorID); err != nil {
		return err
	}
	return b.osdp.runtime(doorID).Signal(doorID, s)
}

// Readers implements hal.Board.
func (b *Board) Readers() []agent.ReaderHealth { return b.osdp.readers() }

// InstallReader implements hal.Board: a simulated reader takes its new key
// as a real one does.
func (b *Board) InstallReader(ctx context.Context, doorID string, key [16]byte) error {
	if _, err := b.door(doorID); err != nil {
		return err
	}
	return b.osdp.runtime(doorID).InstallReader(ctx, doorID, key)
}

// SetReaderAddress implements hal.Board: a simulated reader moves as a
// real one does.
func (b *Board) SetReaderAddress(ctx context.Context, doorID string, addr, baud int) (hal.ReaderMove, error) {
	if _, err := b.door(doorID); err != nil {
		return hal.ReaderMove{}, err
	}
	return b.osdp.runtime(doorID).SetReaderAddress(ctx, doorID, addr, baud)
}

// ReaderOutput implements hal.Board: a simulated reader's output follows.
func (b *Board) ReaderOutput(ctx context.Context, doorID string, n int, action osdp.OutputAction, pulse time.Duration) error {
	if _, err := b.door(doorID); err != nil {
		return err
	}
	return b.osdp.runtime(doorID).ReaderOutput(ctx, doorID, n, action, pulse)
}

// Drain returns once Run has handed every event queued before the call to
// its emit function (a typed script's last tap is delivered before the
// program stops). It needs Run to be running.
func (b *Board) Drain(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case b.events <- queued{done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Set implements hal.Board.
func (b *Board) Set(doorID string, out hal.Output, on bool) error {
	d, err := b.door(doorID)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("sim: board is closed")
	}
	if _, ok := d.outputs[out]; !ok {
		return fmt.Errorf("sim: door %s has no %s wired", doorID, out)
	}
	b.setLocked(d, out, on)
	return nil
}

func (b *Board) setLocked(d *door, out hal.Output, on bool) {
	if d.outputs[out] == on {
		return
	}
	d.outputs[out] = on
	b.saveLatchLocked()
	c := Change{At: b.clock.Now(), Door: d.id, Output: out, On: on}
	b.changes = append(b.changes, c)
	for _, ch := range b.subs {
		select {
		case ch <- c:
		default: // a slow observer loses changes, never blocks the door
		}
	}
	b.log.Debug("sim output", "door", d.id, "output", out, "on", on)
}

// Halt implements hal.Board.
func (b *Board) Halt() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range b.order {
		d := b.doors[id]
		for _, out := range hal.Outputs() {
			if safe, ok := d.safe[out]; ok {
				b.setLocked(d, out, safe)
			}
		}
	}
	return nil
}

// Close implements hal.Board: outputs go to their safe state and later Sets
// fail.
func (b *Board) Close() error {
	err := errors.Join(b.Halt(), b.osdp.close())
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for id, ch := range b.subs {
		close(ch)
		delete(b.subs, id)
	}
	return err
}

// Output returns an output's commanded state.
func (b *Board) Output(doorID string, out hal.Output) (bool, error) {
	d, err := b.door(doorID)
	if err != nil {
		return false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	on, ok := d.outputs[out]
	if !ok {
		return false, fmt.Errorf("sim: door %s has no %s wired", doorID, out)
	}
	return on, nil
}

// Changes returns every output change so far.
func (b *Board) Changes() []Change {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.changes)
}

// Subscribe returns a channel receiving each later output change (buffered;
// a full channel drops changes rather than block a door) and a function that
// ends the subscription.
func (b *Board) Subscribe() (<-chan Change, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan Change, 64)
	id := b.nextSub
	b.nextSub++
	b.subs[id] = ch
	if b.closed {
		delete(b.subs, id)
		close(ch)
	}
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if c, ok := b.subs[id]; ok {
			close(c)
			delete(b.subs, id)
		}
	}
}

func (b *Board) door(id string) (*door, error) {
	d, ok := b.doors[id]
	if !ok {
		return nil, fmt.Errorf("sim: no door %q (doors: %v)", id, b.order)
	}
	return d, nil
}

func (b *Board) emit(e hal.Event) error {
	select {
	case b.events <- queued{ev: e}:
		return nil
	default:
		return errors.New("sim: event queue full (is the board running?)")
	}
}

// Tap presents a card that shows only its UID (a MIFARE Classic for 4
// bytes, an Ultralight otherwise, or a copy of one) to the door's MFRC522.
func (b *Board) Tap(doorID string, uid []byte) error {
	if _, err := agent.UIDKey(uid); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return b.present(context.Background(), doorID, plainCard(uid))
}

// Wiegand presents a card on the door's Wiegand reader: the frame is
// encoded and goes through the door's decoder.
func (b *Board) Wiegand(doorID, format string, facility, card uint64) error {
	fr, err := encodeWiegand(format, facility, card)
	if err != nil {
		return err
	}
	return b.Frame(doorID, fr)
}

// encodeWiegand encodes a card in a Wiegand format, for the Wiegand and
// OSDP readers' commands.
func encodeWiegand(format string, facility, card uint64) (wiegand.Frame, error) {
	f, ok := wiegand.FormatByName(format)
	if !ok {
		return wiegand.Frame{}, fmt.Errorf("sim: unknown Wiegand format %q", format)
	}
	fr, err := f.Encode(facility, card)
	if err != nil {
		return wiegand.Frame{}, fmt.Errorf("sim: %w", err)
	}
	return fr, nil
}

// Frame sends a raw frame to the door's Wiegand decoder; a frame it rejects
// becomes an EventFault, as on hardware.
func (b *Board) Frame(doorID string, fr wiegand.Frame) error {
	d, err := b.door(doorID)
	if err != nil {
		return err
	}
	if d.wiring.Wiegand == nil {
		return fmt.Errorf("sim: door %s has no Wiegand reader", doorID)
	}
	r, err := d.decoder.Decode(fr)
	return b.emit(hal.WiegandEvent(doorID, r, err, b.clock.Now()))
}

// Keys types keys on the door's keypad (matrix keypad, or Wiegand keypad
// bursts in 4-bit mode).
func (b *Board) Keys(doorID, keys string) error {
	d, err := b.door(doorID)
	if err != nil {
		return err
	}
	allowed := "0123456789*#"
	if kp := d.wiring.Keypad; kp != nil && kp.Layout != nil {
		allowed = ""
		for _, row := range kp.Layout {
			allowed += row
		}
	}
	for _, k := range keys {
		if !containsRune(allowed, k) {
			return fmt.Errorf("sim: no key %q on door %s's keypad (keys: %s)", k, doorID, allowed)
		}
	}
	switch {
	case d.wiring.Keypad != nil:
		for _, k := range keys {
			if err := b.emit(hal.Event{Door: doorID, Kind: hal.EventKey, At: b.clock.Now(), Key: k}); err != nil {
				return err
			}
		}
		return nil
	case d.wiring.Wiegand != nil:
		for _, k := range keys {
			fr, err := wiegand.EncodeKey(k, 4)
			if err != nil {
				return fmt.Errorf("sim: %w", err)
			}
			if err := b.Frame(doorID, fr); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("sim: door %s has no keypad", doorID)
}

func containsRune(s string, r rune) bool {
	for _, c := range s {
		if c == r {
			return true
		}
	}
	return false
}

// SetInput changes a door input; an unchanged level produces no event, like
// a debounced line.
func (b *Board) SetInput(doorID string, in hal.Input, active bool) error {
	d, err := b.door(doorID)
	if err != nil {
		return err
	}
	b.mu.Lock()
	cur, ok := d.inputs[in]
	if ok {
		d.inputs[in] = active
	}
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("sim: door %s has no %s wired", doorID, in)
	}
	if cur == active {
		return nil
	}
	return b.emit(hal.Event{Door: doorID, Kind: hal.EventInput, At: b.clock.Now(), Input: in, Active: active})
}

// InputState returns an input's current state.
func (b *Board) InputState(doorID string, in hal.Input) (bool, error) {
	d, err := b.door(doorID)
	if err != nil {
		return false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := d.inputs[in]
	if !ok {
		return false, fmt.Errorf("sim: door %s has no %s wired", doorID, in)
	}
	return v, nil
}

var _ hal.Board = (*Board)(nil)
