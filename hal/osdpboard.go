package hal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	conn string

	mu       sync.Mutex
	cfg      OSDPReader
	status   agent.ReaderStatus
	identity *osdp.Identity
	want     agent.Signal
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
			r := &osdpReader{line: l, cfg: rc, want: agent.SignalIdle,
				conn:   fmt.Sprintf("OSDP %s (%s) address %d", b.Name, b.Port, rc.Addr),
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
	s := r.status
	r.mu.Unlock()
	emit(Event{Door: r.cfg.Door, Kind: EventReader, At: now, Reader: s})
}

// cardEvent decodes a card read: raw bits go through the door's Wiegand
// formats; what they cannot take is a fault.
func (r *osdpReader) cardEvent(c osdp.Card, at time.Time) Event {
	fault := func(err error) Event {
		return Event{Door: r.cfg.Door, Kind: EventFault, At: at, Device: "osdp", Err: err}
	}
	if c.Format == osdp.FormatASCII {
		return fault(errors.New("osdp: the reader sent card characters (osdp_FMT): set it to send raw card bits (osdp_RAW)"))
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
	err := bus.Feedback(r.cfg.Addr, feedback(s))
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
	if err := bus.Install(ctx, r.cfg.Addr, key); err != nil {
		return err
	}
	r.mu.Lock()
	r.cfg.Key = key // a line that fails and reopens keeps it
	r.mu.Unlock()
	return nil
}

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
