package hal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/wallclock"
	"github.com/portier-io/portier/hal/wiegand"
)

// OSDPPort is an opened OSDP line.
type OSDPPort interface {
	osdp.Port
	Close() error
}

// OSDPReader is one door's OSDP reader on a bus.
type OSDPReader struct {
	Door      string
	Addr      byte
	Key       [16]byte // zero: no key yet: refused until installed
	Plaintext bool     // secure_channel: off
	Decoder   wiegand.Decoder
}

// OSDPBus is one OSDP line as a board runs it.
type OSDPBus struct {
	Name         string
	Port         string // the device, for messages
	Baud         int
	Direction    osdp.Direction
	PollInterval time.Duration
	Readers      []OSDPReader
	// Opened is the line already open (the board opened it to fail early);
	// Open opens it when it is not, and again after it failed.
	Opened OSDPPort
	Open   func() (OSDPPort, error)
}

// OSDPBusPlan turns the config's OSDP buses and readers into buses to run,
// each with its readers in door order; the caller sets Open (and a DE pin).
// The readers' keys are those the config loader read into it.
func (c Config) OSDPBusPlan(doorIDs []string) ([]OSDPBus, error) {
	var out []OSDPBus
	for _, bc := range c.OSDPBuses {
		b := OSDPBus{Name: bc.Name, Port: bc.Port, Baud: bc.baud(), PollInterval: bc.PollInterval}
		switch bc.Direction {
		case OSDPDirectionRTS:
			b.Direction.Mode = osdp.DirectionRTS
		case OSDPDirectionGPIO:
			b.Direction = osdp.Direction{Mode: osdp.DirectionPin, ActiveLow: bc.DEActiveLow}
		}
		for _, id := range orderedDoors(c.Doors, doorIDs) {
			o := c.Doors[id].OSDP
			if o == nil || o.Bus != bc.Name || o.Address == nil {
				continue
			}
			dec, err := o.Decoder()
			if err != nil {
				return nil, fmt.Errorf("hal: %s: osdp: %w", id, err)
			}
			b.Readers = append(b.Readers, OSDPReader{Door: id, Addr: byte(*o.Address), Key: o.Key, Plaintext: o.Plaintext(), Decoder: dec})
		}
		if len(b.Readers) > 0 {
			out = append(out, b)
		}
	}
	return out, nil
}

// OSDPOptions configures an OSDPRuntime.
type OSDPOptions struct {
	Clock Clock // event times and back-off; nil: system clock
	// BusClock is the buses' time; nil: Clock. The simulated board gives
	// its lines' simulated time.
	BusClock     osdp.Clock
	Logger       *slog.Logger  // nil: discard
	OfflineAfter time.Duration // 0: the specification's 8 s
	Rand         io.Reader     // Secure Channel challenges; nil: crypto/rand
}

// OSDPRuntime runs a board's OSDP buses: it polls the readers, turns their
// reports into Events, shows the doors' signals on them, installs them and
// reports their health. The periph board and the simulated board both run
// their OSDP readers through it.
type OSDPRuntime struct {
	opts    OSDPOptions
	lines   []*osdpLine
	readers []*osdpReader // door order within each bus, buses in order
	byDoor  map[string]*osdpReader
}

type osdpLine struct {
	cfg     OSDPBus
	readers []*osdpReader

	mu     sync.Mutex
	bus    *osdp.Bus // the running bus, nil between runs
	opened OSDPPort  // not yet taken by a run
}

type osdpReader struct {
	line *osdpLine

	mu       sync.Mutex
	cfg      OSDPReader
	conn     string // "OSDP bus (port) address N", for messages
	status   agent.ReaderStatus
	identity *osdp.Identity
	want     agent.Signal
	changed  chan struct{} // closed and replaced on every status change
}

// connection names the reader's place on its bus.
func connection(b OSDPBus, addr byte) string {
	return fmt.Sprintf("OSDP %s (%s) address %d", b.Name, b.Port, addr)
}

// addr is the reader's address now (an address change moves it).
func (r *osdpReader) addr() byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg.Addr
}

// NewOSDPRuntime prepares the buses; Run runs them.
func NewOSDPRuntime(buses []OSDPBus, opts OSDPOptions) *OSDPRuntime {
	if opts.Clock == nil {
		opts.Clock = wallclock.Clock{}
	}
	if opts.BusClock == nil {
		opts.BusClock = opts.Clock
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	o := &OSDPRuntime{opts: opts, byDoor: map[string]*osdpReader{}}
	for _, b := range buses {
		l := &osdpLine{cfg: b, opened: b.Opened}
		for _, rc := range b.Readers {
			r := &osdpReader{line: l, cfg: rc, want: agent.SignalIdle, conn: connection(b, rc.Addr), changed: make(chan struct{}),
				status: agent.ReaderStatus{Reader: OSDPReaderName, State: agent.ReaderStarting}}
			l.readers = append(l.readers, r)
			o.readers = append(o.readers, r)
			o.byDoor[rc.Door] = r
		}
		o.lines = append(o.lines, l)
	}
	return o
}

// HasReader reports whether door has an OSDP reader.
func (o *OSDPRuntime) HasReader(door string) bool { _, ok := o.byDoor[door]; return ok }

// Run runs every bus until ctx ends. A line that fails (the adapter
// unplugged) makes its readers offline, is reported as an EventFault per
// door and is opened again with back-off.
func (o *OSDPRuntime) Run(ctx context.Context, emit func(Event)) error {
	var wg sync.WaitGroup
	for _, l := range o.lines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.runLine(ctx, l, emit)
		}()
	}
	wg.Wait()
	return nil
}

func (o *OSDPRuntime) runLine(ctx context.Context, l *osdpLine, emit func(Event)) {
	backoff := agent.Backoff{Min: time.Second, Max: 30 * time.Second}
	for {
		ran, err := o.runOnce(ctx, l, emit)
		if ctx.Err() != nil {
			return
		}
		if ran {
			backoff = agent.Backoff{Min: backoff.Min, Max: backoff.Max}
		}
		wait := backoff.Next()
		o.opts.Logger.Warn("osdp line failed, opening it again", "bus", l.cfg.Name, "port", l.cfg.Port, "err", err, "after", wait)
		now := o.opts.Clock.Now()
		for _, r := range l.readers {
			emit(Event{Door: r.cfg.Door, Kind: EventFault, At: now, Device: "osdp", Err: fmt.Errorf("bus %s (%s): %w", l.cfg.Name, l.cfg.Port, err)})
			o.update(r, emit, now, func(s *agent.ReaderStatus) {
				s.State, s.Secure, s.Reason = agent.ReaderOffline, false, "port_error"
				s.Detail = fmt.Sprintf("%s: the serial port failed: %v", r.conn, err)
			})
		}
		if o.opts.Clock.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// runOnce opens the line if needed and runs a bus on it until ctx ends or
// the line fails; ran says whether the bus ran at all.
func (o *OSDPRuntime) runOnce(ctx context.Context, l *osdpLine, emit func(Event)) (bool, error) {
	l.mu.Lock()
	port := l.opened
	l.opened = nil
	l.mu.Unlock()
	if port == nil {
		if l.cfg.Open == nil {
			return false, errors.New("the line cannot be opened again")
		}
		var err error
		if port, err = l.cfg.Open(); err != nil {
			return false, err
		}
	}
	defer port.Close()
	var rcs []osdp.ReaderConfig
	for _, r := range l.readers {
		r.mu.Lock()
		rc := osdp.ReaderConfig{Name: r.cfg.Door, Addr: r.cfg.Addr, Key: r.cfg.Key, Uninstalled: r.cfg.Key == [16]byte{}}
		if r.cfg.Plaintext {
			rc.Secure, rc.Uninstalled = osdp.SecureOff, false
		}
		r.mu.Unlock()
		rcs = append(rcs, rc)
	}
	bus, err := osdp.NewBus(osdp.Config{
		Port: port, Baud: l.cfg.Baud, Direction: l.cfg.Direction, Readers: rcs,
		PollInterval: l.cfg.PollInterval, OfflineAfter: o.opts.OfflineAfter,
		Clock: o.opts.BusClock, Logger: o.opts.Logger, Rand: o.opts.Rand,
		Report: func(rep osdp.Report) { o.report(l, rep, emit) },
	})
	if err != nil {
		return false, err
	}
	l.mu.Lock()
	l.bus = bus
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.bus = nil
		l.mu.Unlock()
	}()
	return true, bus.Run(ctx)
}

// current is the line's running bus, nil when none runs.
func (l *osdpLine) current() *osdp.Bus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bus
}

// report turns one of a bus's reports into events; it runs on the bus's
// goroutine.
func (o *OSDPRuntime) report(l *osdpLine, rep osdp.Report, emit func(Event)) {
	r, ok := o.byDoor[rep.Reader]
	if !ok {
		return
	}
	door, now := r.cfg.Door, o.opts.Clock.Now()
	switch rep.Kind {
	case osdp.ReportCard:
		emit(r.cardEvent(rep.Card, now))
	case osdp.ReportKeypad:
		for _, k := range rep.Keys {
			emit(Event{Door: door, Kind: EventKey, At: now, Key: k})
		}
	case osdp.ReportTamper:
		o.update(r, emit, now, func(s *agent.ReaderStatus) { s.Tamper = rep.Active })
	case osdp.ReportPower:
		o.update(r, emit, now, func(s *agent.ReaderStatus) { s.PowerFault = rep.Active })
	case osdp.ReportOnline:
		o.update(r, emit, now, func(s *agent.ReaderStatus) {
			s.State, s.Secure, s.Reason = agent.ReaderOnline, rep.Secure, ""
			s.Detail = r.conn + ": secure channel established"
			if !rep.Secure {
				s.Detail = r.conn + ": PLAINTEXT (secure_channel: off)"
			}
		})
		r.mu.Lock()
		want := r.want
		r.mu.Unlock()
		if err := o.show(r, want); err != nil {
			o.opts.Logger.Warn("osdp reader feedback", "door", door, "err", err)
		}
	case osdp.ReportOffline:
		o.update(r, emit, now, func(s *agent.ReaderStatus) {
			s.State, s.Secure, s.Reason = agent.ReaderOffline, false, rep.Reason.String()
			switch rep.Reason {
			case osdp.ReasonNoSecureChannel, osdp.ReasonWrongKey, osdp.ReasonNoKey:
				s.State = agent.ReaderRefused
			}
			s.Detail = fmt.Sprintf("%s: %s: %v", r.conn, rep.Reason, rep.Err)
			if rep.Reason == osdp.ReasonNoKey {
				s.Detail = fmt.Sprintf("%s: no key of its own yet: run `portier reader install --door %s`", r.conn, door)
			}
		})
	case osdp.ReportIdentity:
		r.mu.Lock()
		id := rep.Identity
		r.identity = &id
		r.mu.Unlock()
		o.opts.Logger.Info("osdp reader identified", "door", door, "bus", l.cfg.Name, "addr", rep.Addr, "identity", rep.Identity.String())
	case osdp.ReportNAK:
		o.opts.Logger.Warn("osdp reader refused a command", "door", door, "command", fmt.Sprintf("0x%02X", rep.Command), "nak", rep.NAK.String())
	}
}

// update changes r's condition and reports it.
func (o *OSDPRuntime) update(r *osdpReader, emit func(Event), now time.Time, change func(*agent.ReaderStatus)) {
	r.mu.Lock()
	prev := r.status
	change(&r.status)
	if r.status.State != prev.State {
		r.status.Since = now
	}
	close(r.changed)
	r.changed = make(chan struct{})
	s := r.status
	r.mu.Unlock()
	emit(Event{Door: r.cfg.Door, Kind: EventReader, At: now, Reader: s})
}

// OSDPTextFormat is the Wiegand format name of a card number an OSDP reader
// sent as characters (osdp_FMT): the credential wiegand FMT:0:NUMBER, cache
// key wg:FMT:0:NUMBER, enrolled like any Wiegand card.
const OSDPTextFormat = "FMT"

// maxFMTDigits is the longest osdp_FMT card number taken: 19 decimal digits
// always fit the 64-bit card number.
const maxFMTDigits = 19

// fmtCredential turns the characters of an osdp_FMT report into a card
// number. The reader formatted the card for us: what it sends is a decimal
// card number (as a Wiegand reader's card number, without a facility code);
// anything else is refused. Errors never carry the characters: they are a
// credential.
func fmtCredential(c osdp.Card) (agent.Wiegand, error) {
	text := c.Text
	switch {
	case c.Reverse:
		return agent.Wiegand{}, errors.New("osdp: the reader sent card characters read in reverse direction (osdp_FMT): not taken, present the card again")
	case text == "":
		return agent.Wiegand{}, errors.New("osdp: the reader sent an empty card number (osdp_FMT)")
	case len(text) > maxFMTDigits:
		return agent.Wiegand{}, fmt.Errorf("osdp: the reader sent a card number of %d characters (osdp_FMT): at most %d digits are taken; set the reader to send raw card bits (osdp_RAW)", len(text), maxFMTDigits)
	}
	for i := 0; i < len(text); i++ {
		switch ch := text[i]; {
		case ch < 0x20 || ch > 0x7E:
			return agent.Wiegand{}, fmt.Errorf("osdp: the reader sent non-printable card characters (osdp_FMT, at character %d): garbage, not taken", i+1)
		case ch < '0' || ch > '9':
			return agent.Wiegand{}, fmt.Errorf("osdp: the reader sent card characters that are not a decimal card number (osdp_FMT, %d characters): set it to send decimal card numbers or raw card bits (osdp_RAW)", len(text))
		}
	}
	n, err := strconv.ParseUint(text, 10, 64)
	if err != nil {
		return agent.Wiegand{}, fmt.Errorf("osdp: the reader sent a card number too large for 64 bits (osdp_FMT, %d digits)", len(text))
	}
	return agent.Wiegand{Format: OSDPTextFormat, Card: n}, nil
}

// cardEvent decodes a card read: raw bits go through the door's Wiegand
// formats, characters (osdp_FMT) are a decimal card number; what neither
// takes is a fault.
func (r *osdpReader) cardEvent(c osdp.Card, at time.Time) Event {
	fault := func(err error) Event {
		return Event{Door: r.cfg.Door, Kind: EventFault, At: at, Device: "osdp", Err: err}
	}
	if c.Format == osdp.FormatASCII {
		w, err := fmtCredential(c)
		if err != nil {
			return fault(err)
		}
		return Event{Door: r.cfg.Door, Kind: EventCredential, At: at, Credential: agent.CardWiegand(w)}
	}
	v, ok := c.Uint64()
	if !ok {
		return fault(fmt.Errorf("osdp: a %d-bit card: no Wiegand format is longer than 64 bits", c.Bits))
	}
	rd, err := r.cfg.Decoder.Decode(wiegand.Frame{Bits: c.Bits, Raw: v})
	e := WiegandEvent(r.cfg.Door, rd, err, at)
	if e.Kind == EventFault {
		e.Device = "osdp"
	}
	return e
}

// feedback is how a reader shows a door signal.
func feedback(s agent.Signal) osdp.Feedback {
	switch s {
	case agent.SignalGranted:
		return osdp.FeedbackGrant
	case agent.SignalDenied:
		return osdp.FeedbackDeny
	case agent.SignalAwaitPIN:
		return osdp.FeedbackAwaitPIN
	case agent.SignalAlarm:
		return osdp.FeedbackAlarm
	}
	return osdp.FeedbackIdle
}

// Signal shows a door's signal on its OSDP reader; a door without one
// has nothing to show it on. A reader that is away gets it when it is back.
func (o *OSDPRuntime) Signal(door string, s agent.Signal) error {
	r, ok := o.byDoor[door]
	if !ok {
		return nil
	}
	r.mu.Lock()
	r.want = s
	r.mu.Unlock()
	return o.show(r, s)
}

func (o *OSDPRuntime) show(r *osdpReader, s agent.Signal) error {
	bus := r.line.current()
	if bus == nil {
		return nil // shown once the line runs and the reader is online
	}
	err := bus.Feedback(r.addr(), feedback(s))
	if errors.Is(err, osdp.ErrOffline) {
		return nil
	}
	return err
}

// InstallReader moves door's OSDP reader from the default install key to
// key on its running bus and proves the new key (osdp.Bus.Install). The
// caller stores key first.
func (o *OSDPRuntime) InstallReader(ctx context.Context, door string, key [16]byte) error {
	r, ok := o.byDoor[door]
	if !ok {
		return fmt.Errorf("hal: door %s has no OSDP reader", door)
	}
	r.mu.Lock()
	plaintext := r.cfg.Plaintext
	r.mu.Unlock()
	if plaintext {
		return fmt.Errorf("hal: door %s's OSDP reader is configured without Secure Channel (secure_channel: off): it has no key", door)
	}
	bus := r.line.current()
	if bus == nil {
		return fmt.Errorf("hal: OSDP bus %s (%s) is not running: its port failed (see the log)", r.line.cfg.Name, r.line.cfg.Port)
	}
	if err := bus.Install(ctx, r.addr(), key); err != nil {
		return err
	}
	r.mu.Lock()
	r.cfg.Key = key // a line that fails and reopens keeps it
	r.mu.Unlock()
	return nil
}

// ReaderMove is an OSDP reader's address change as it happened.
type ReaderMove struct {
	Door     string
	Bus      string
	From, To byte
	Baud     int
}

// SetReaderAddress moves door's OSDP reader to addr with osdp_COMSET over its
// channel (Secure Channel under its key), then proves it answers there. The
// running bus follows the reader to its new address until the process ends;
// the configuration is the caller's to change. baud 0 keeps the bus's rate;
// another rate is refused: every reader on a bus runs at the bus's rate, and
// moving a bus to another rate means reopening it with all its readers
// moved first, which this does not do.
func (o *OSDPRuntime) SetReaderAddress(ctx context.Context, door string, addr, baud int) (ReaderMove, error) {
	r, ok := o.byDoor[door]
	if !ok {
		return ReaderMove{}, fmt.Errorf("hal: door %s has no OSDP reader", door)
	}
	l := r.line
	if baud == 0 {
		baud = l.cfg.Baud
	}
	switch {
	case addr < 0 || addr > int(osdp.MaxAddr):
		return ReaderMove{}, fmt.Errorf("hal: address %d is outside 0–126 (127 is the broadcast address)", addr)
	case !slices.Contains(osdp.Bauds, baud):
		return ReaderMove{}, fmt.Errorf("hal: %d baud is not an OSDP line rate (use one of %v)", baud, osdp.Bauds)
	case baud != l.cfg.Baud:
		return ReaderMove{}, fmt.Errorf("hal: bus %s runs at %d baud and every reader on it must too: changing a reader's baud rate through portier is not supported (set the reader's rate with its vendor's tool, or set the bus's baud to the reader's)", l.cfg.Name, l.cfg.Baud)
	}
	move := ReaderMove{Door: door, Bus: l.cfg.Name, From: r.addr(), To: byte(addr), Baud: baud}
	if move.From == move.To {
		return move, fmt.Errorf("hal: door %s's reader is at address %d already", door, addr)
	}
	for _, other := range l.readers {
		if other != r && other.addr() == move.To {
			return move, fmt.Errorf("hal: address %d on bus %s is taken by door %s's reader: every reader on a bus needs its own", addr, l.cfg.Name, other.cfg.Door)
		}
	}
	bus := l.current()
	if bus == nil {
		return move, fmt.Errorf("hal: OSDP bus %s (%s) is not running: its port failed (see the log)", l.cfg.Name, l.cfg.Port)
	}
	if err := bus.SetComm(ctx, move.From, move.To, baud); err != nil {
		return move, fmt.Errorf("hal: door %s's reader did not take the new address: %w", door, err)
	}
	// The bus took the address the reader's osdp_COM names.
	for _, st := range bus.Status() {
		if st.Name == door && st.Addr != move.To {
			return move, fmt.Errorf("hal: door %s's reader answered that it moved to address %d, not %d", door, st.Addr, addr)
		}
	}
	r.mu.Lock()
	r.cfg.Addr, r.conn = move.To, connection(l.cfg, move.To) // a line that reopens keeps it
	r.mu.Unlock()
	if err := o.confirm(ctx, bus, r); err != nil {
		return move, fmt.Errorf("hal: door %s's reader acknowledged address %d but does not answer there: %w", door, addr, err)
	}
	o.opts.Logger.Warn("osdp reader moved to a new address: change the configuration to match", "door", door, "bus", l.cfg.Name, "from", move.From, "to", move.To, "baud", baud)
	return move, nil
}

// confirm waits until r answers at its address over its channel: a reader
// that restarted its session meanwhile is waited for until it is online.
func (o *OSDPRuntime) confirm(ctx context.Context, bus *osdp.Bus, r *osdpReader) error {
	for {
		err := bus.Ping(ctx, r.addr())
		if !errors.Is(err, osdp.ErrOffline) {
			return err
		}
		r.mu.Lock()
		online, changed := r.status.State == agent.ReaderOnline, r.changed
		r.mu.Unlock()
		if online {
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%w (it is offline: %w)", ctx.Err(), err)
		}
	}
}

// ReaderOutput drives output n (from 0, as OSDP counts) of door's OSDP
// reader with osdp_OUT and waits for the reader's acknowledgement: on, off,
// or OutputPulseOn for pulse. The reader must list the output in its
// capabilities (PDCAP). It is the installer's test of a reader's outputs;
// no door function drives them.
func (o *OSDPRuntime) ReaderOutput(ctx context.Context, door string, n int, action osdp.OutputAction, pulse time.Duration) error {
	r, ok := o.byDoor[door]
	if !ok {
		return fmt.Errorf("hal: door %s has no OSDP reader", door)
	}
	bus := r.line.current()
	if bus == nil {
		return fmt.Errorf("hal: OSDP bus %s (%s) is not running: its port failed (see the log)", r.line.cfg.Name, r.line.cfg.Port)
	}
	var st *osdp.ReaderStatus
	for _, s := range bus.Status() {
		if s.Name == door {
			st = &s
		}
	}
	switch {
	case st == nil || !st.Online:
		return fmt.Errorf("hal: door %s's reader is not online: see `portier doctor`", door)
	case st.Caps.Outputs() == 0:
		return fmt.Errorf("hal: door %s's reader has no outputs (its capabilities, PDCAP, list none)", door)
	case n < 0 || n >= st.Caps.Outputs():
		return fmt.Errorf("hal: door %s's reader has %d outputs, numbered 0–%d: it has no output %d", door, st.Caps.Outputs(), st.Caps.Outputs()-1, n)
	}
	out := osdp.Output{Number: byte(n), Action: action}
	switch action {
	case osdp.OutputOn, osdp.OutputOff:
	case osdp.OutputPulseOn:
		if pulse < 100*time.Millisecond || pulse > MaxOSDPPulse {
			return fmt.Errorf("hal: pulse %s is outside 100ms–%s (OSDP times outputs in 100 ms steps)", pulse, MaxOSDPPulse)
		}
		out.Timer = pulse
	default:
		return fmt.Errorf("hal: unsupported output action %d", action)
	}
	if err := bus.SetOutputs(ctx, st.Addr, out); err != nil {
		return fmt.Errorf("hal: door %s's reader output %d: %w", door, n, err)
	}
	o.opts.Logger.Info("osdp reader output set", "door", door, "output", n, "action", action.String(), "pulse", pulse)
	return nil
}

// MaxOSDPPulse is the longest timed output osdp_OUT carries: 65535 steps of
// 100 ms.
const MaxOSDPPulse = 0xFFFF * 100 * time.Millisecond

// Readers reports every OSDP reader's health, in door order per bus.
func (o *OSDPRuntime) Readers() []agent.ReaderHealth {
	var out []agent.ReaderHealth
	for _, l := range o.lines {
		var sts []osdp.ReaderStatus
		var bytes uint64
		if bus := l.current(); bus != nil {
			sts, bytes = bus.Status(), bus.ReceivedBytes()
		}
		for _, r := range l.readers {
			r.mu.Lock()
			h := agent.ReaderHealth{Door: r.cfg.Door, ReaderStatus: r.status, Connection: r.conn, Plaintext: r.cfg.Plaintext, LineBytes: bytes}
			id := r.identity
			r.mu.Unlock()
			for _, st := range sts {
				if st.Name != r.cfg.Door {
					continue
				}
				h.DefaultKey, h.LastReply = st.DefaultKey, st.LastReply
				h.Polls, h.Timeouts, h.BadFrames, h.NAKs = st.Polls, st.Timeouts, st.CheckErrors, st.NAKs
				h.SessionRestarts = st.SessionRestarts
				h.Outputs = st.Caps.Outputs()
				if st.Identity != nil {
					id = st.Identity
				}
			}
			if id != nil {
				h.Vendor, h.Model, h.Serial, h.Firmware = id.VendorOUI(), fmt.Sprintf("%d v%d", id.Model, id.Version), fmt.Sprintf("%08X", id.Serial), id.FirmwareVersion()
			}
			out = append(out, h)
		}
	}
	return out
}

// Close releases lines that were opened and never run.
func (o *OSDPRuntime) Close() error {
	var errs []error
	for _, l := range o.lines {
		l.mu.Lock()
		p := l.opened
		l.opened = nil
		l.mu.Unlock()
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	return errors.Join(errs...)
}

// Probe runs the buses until every reader has answered or been given up
// (or within has passed on the runtime's clock) and returns their health:
// the installer's check of a bus nobody else runs.
func (o *OSDPRuntime) Probe(ctx context.Context, within time.Duration) []agent.ReaderHealth {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.Run(ctx, func(Event) {})
	}()
	// The deadline is in the buses' time: a simulated bus's time moves
	// with its work, not with the board's clock.
	deadline := o.opts.BusClock.Now().Add(within)
	var health []agent.ReaderHealth
	for {
		// The deadline first, then the readers: a simulated bus can live
		// through seconds between two looks, and the answer must be the
		// readers as they were at the deadline or later.
		expired := !o.opts.BusClock.Now().Before(deadline)
		health = o.Readers()
		settled := true
		for _, h := range health {
			if h.State == agent.ReaderStarting || h.State == agent.ReaderOnline && h.Polls == 0 {
				settled = false
			}
		}
		if settled || expired || o.opts.Clock.Sleep(ctx, 50*time.Millisecond) != nil {
			break
		}
	}
	cancel()
	<-done
	return health
}
