package osdp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/portier-io/portier/hal/wallclock"
)

// Port is the serial line as the bus drives it. go.bug.st/serial's Port
// satisfies it (OpenSerial); osdpsim.Line is a simulated one.
type Port interface {
	// Read waits up to the read timeout for at least one byte and returns
	// 0, nil when none came.
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	SetReadTimeout(d time.Duration) error
	// ResetInputBuffer drops received bytes not yet read.
	ResetInputBuffer() error
	// Drain waits until every written byte has left the UART.
	Drain() error
}

// Clock is the bus's time source. Sleep must end early when ctx does.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// DirectionMode says who switches the RS-485 transceiver between transmit
// and receive.
type DirectionMode uint8

// Direction modes.
const (
	// DirectionAuto: the adapter switches by itself (USB adapters, HATs
	// with automatic direction control, the kernel's RS-485 mode).
	DirectionAuto DirectionMode = iota
	// DirectionRTS: the UART's RTS line drives DE and /RE.
	DirectionRTS
	// DirectionPin: a GPIO drives DE and /RE (tied together).
	DirectionPin
)

// Direction configures transmit/receive switching. The bus drives the
// transmitter only for the duration of its own frames: on before the first
// byte, off once Drain reports the last byte sent.
type Direction struct {
	Mode      DirectionMode
	Pin       gpio.PinOut // DirectionPin
	ActiveLow bool        // transmit when the line is low
}

// SecureMode selects Secure Channel per reader.
type SecureMode uint8

// Secure Channel modes.
const (
	// SecureRequired (the default): the reader is used only over Secure
	// Channel; one that cannot do it is refused.
	SecureRequired SecureMode = iota
	// SecureOff: plaintext, for readers without Secure Channel. Anyone on
	// the wire can read and inject card data.
	SecureOff
)

// ReaderConfig is one reader (PD) on the bus.
type ReaderConfig struct {
	Name string
	Addr byte // 0–126
	// Key is the reader's Secure Channel Base Key.
	Key [16]byte
	// Install uses SCBK-D, the published default key, instead of Key: only
	// for moving a new reader to its own key (Bus.Rekey, Install).
	Install bool
	// Uninstalled: the reader has no key of its own yet (Key is zero). It
	// is identified (osdp_ID, osdp_CAP), then refused with ReasonNoKey until
	// Bus.Install gives it one; it is never used under SCBK-D by itself.
	Uninstalled bool
	Secure      SecureMode
}

// Defaults. The reply timeout, inter-character timeout and the 8 s offline
// limit are the OSDP specification's.
const (
	DefaultReplyTimeout = 200 * time.Millisecond
	DefaultInterChar    = 20 * time.Millisecond
	DefaultOfflineAfter = 8 * time.Second
	// DefaultPollInterval is how often each reader is polled when the bus
	// has time to spare: a card waits at most this long plus the bus time
	// of one pass. Each poll costs about 0.1 ms of CPU (two wake-ups of the
	// thread: the reply, the idle-line gap), so 8 readers take 1.4–2.7 % of
	// a core on a 2-vCPU VM (BenchmarkIdleCPU, docs/hardware.md); a longer
	// interval trades card latency for it.
	DefaultPollInterval = 50 * time.Millisecond

	busyRetry  = 50 * time.Millisecond // wait after osdp_BUSY
	minBackoff = 500 * time.Millisecond
	lowEvery   = time.Second // a silent reader's turn at least this often (pick)
	maxBackoff = 8 * time.Second
	queueLimit = 16 // commands waiting per reader
)

// Config configures a Bus.
type Config struct {
	Port      Port
	Baud      int // 9600–230400; sets the character time for the idle-line gap
	Direction Direction
	Readers   []ReaderConfig

	PollInterval time.Duration // 0: DefaultPollInterval
	OfflineAfter time.Duration // 0: DefaultOfflineAfter; at most 8 s per the spec
	ReplyTimeout time.Duration // 0: DefaultReplyTimeout
	InterChar    time.Duration // 0: DefaultInterChar
	NoMark       bool          // do not send the v2.2 0xFF mark byte before SOM

	Clock  Clock        // nil: system clock
	Logger *slog.Logger // nil: discard
	Rand   io.Reader    // Secure Channel challenges; nil: crypto/rand
	// Report receives every report, from the Run goroutine; it must return
	// quickly (hand the report to a channel).
	Report func(Report)
}

// Bus is an OSDP Control Panel on one RS-485 line: it polls its readers in
// turn, runs their Secure Channel sessions and supervises them. Run drives
// the line; the other methods may be called from any goroutine.
type Bus struct {
	cfg      Config
	port     Port
	clock    Clock
	log      *slog.Logger
	rand     io.Reader
	report   func(Report)
	charTime time.Duration
	// gap waits out the idle line before a frame in the calling thread,
	// where the port can (SerialPort.Gap); nil: through the clock.
	gap func(time.Duration)

	readers []*reader
	rr      int       // round-robin position
	lastLow time.Time // the last turn of a silent or probed reader (pick)

	rx      Receiver
	rbuf    [64]byte
	rxBytes atomic.Uint64 // every byte read from the line, for diagnosis
	tx      []byte
	lastRx  time.Time
	rto     time.Duration // read timeout last set on the port
	dirty   bool          // the last exchange did not end with a clean reply

	done chan struct{} // closed when Run returns

	mu     sync.Mutex // guards each reader's shared part and wake
	wake   context.CancelFunc
	kicked bool
}

// NewBus checks cfg and returns a bus ready to Run.
func NewBus(cfg Config) (*Bus, error) {
	if cfg.Port == nil {
		return nil, errors.New("osdp: no port")
	}
	if cfg.Baud < 9600 || cfg.Baud > 230400 {
		return nil, fmt.Errorf("osdp: baud %d outside 9600–230400", cfg.Baud)
	}
	switch cfg.Direction.Mode {
	case DirectionAuto:
	case DirectionRTS:
		if _, ok := cfg.Port.(interface{ SetRTS(bool) error }); !ok {
			return nil, errors.New("osdp: RTS direction control needs a port with SetRTS")
		}
	case DirectionPin:
		if cfg.Direction.Pin == nil {
			return nil, errors.New("osdp: pin direction control without a pin")
		}
	default:
		return nil, fmt.Errorf("osdp: unknown direction mode %d", cfg.Direction.Mode)
	}
	if len(cfg.Readers) == 0 {
		return nil, errors.New("osdp: no readers")
	}
	if cfg.OfflineAfter > DefaultOfflineAfter {
		return nil, fmt.Errorf("osdp: offline_after %v exceeds the specification's 8 s", cfg.OfflineAfter)
	}
	b := &Bus{cfg: cfg, port: cfg.Port, clock: cfg.Clock, log: cfg.Logger, rand: cfg.Rand, report: cfg.Report, dirty: true, done: make(chan struct{})}
	if b.clock == nil {
		b.clock = wallclock.Clock{}
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.rand == nil {
		b.rand = rand.Reader
	}
	if b.report == nil {
		b.report = func(Report) {}
	}
	if b.cfg.PollInterval <= 0 {
		b.cfg.PollInterval = DefaultPollInterval
	}
	if b.cfg.OfflineAfter <= 0 {
		b.cfg.OfflineAfter = DefaultOfflineAfter
	}
	if b.cfg.ReplyTimeout <= 0 {
		b.cfg.ReplyTimeout = DefaultReplyTimeout
	}
	if b.cfg.InterChar <= 0 {
		b.cfg.InterChar = DefaultInterChar
	}
	b.charTime = time.Duration(10 * int64(time.Second) / int64(cfg.Baud)) // 8N1: 10 bits
	if g, ok := cfg.Port.(interface{ Gap(time.Duration) }); ok {
		b.gap = g.Gap
	}
	seen := map[byte]bool{}
	for _, rc := range cfg.Readers {
		if rc.Addr > MaxAddr {
			return nil, fmt.Errorf("osdp: reader %q: address %d outside 0–126", rc.Name, rc.Addr)
		}
		if seen[rc.Addr] {
			return nil, fmt.Errorf("osdp: reader %q: address %d used twice on one bus", rc.Name, rc.Addr)
		}
		seen[rc.Addr] = true
		if rc.Secure == SecureRequired && !rc.Install && !rc.Uninstalled && rc.Key == ([16]byte{}) {
			return nil, fmt.Errorf("osdp: reader %q: secure channel required but no key", rc.Name)
		}
		b.readers = append(b.readers, newReader(rc))
	}
	return b, nil
}

// Run polls the readers until ctx ends; it returns nil then, or the port's
// error. Call it once.
func (b *Bus) Run(ctx context.Context) error {
	defer close(b.done)
	if err := b.direction(false); err != nil {
		return err
	}
	start := b.clock.Now()
	for _, r := range b.readers {
		r.lastOK, r.next = start, start
	}
	for ctx.Err() == nil {
		now := b.clock.Now()
		r, wait := b.pick(now)
		if r == nil {
			b.idle(ctx, wait)
			continue
		}
		if err := b.turn(ctx, r); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// pick returns the next reader due, or how long until one is.
//
// Readers that answer go before silent ones (two commands in a row without
// a reply, or a probe while offline): a silent reader's turn costs the
// whole reply timeout, and a reader built on libosdp ends its secure
// session after 0.8 s without a command, so several readers losing power
// together must not starve the ones still working. Silent readers take
// their turns longest overdue first, and at least every lowEvery, so each
// is found offline (and back) in time even on a bus too slow to be ever
// idle.
func (b *Bus) pick(now time.Time) (*reader, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	wait := time.Duration(-1)
	var high, low *reader
	highAt, lowAt := 0, 0
	for i := range b.readers {
		k := (b.rr + i) % len(b.readers)
		r := b.readers[k]
		due := !now.Before(r.next)
		if !due && r.pending == nil && r.phase == phaseOnline && (len(r.queue) > 0 || r.rekey != nil) {
			due = true
		}
		if r.installReq != nil || r.installStop {
			due = true
		}
		switch {
		case due && (r.probing || r.silent):
			// The longest overdue first: each silent reader gets its turn,
			// not the one after the reader polled last.
			if low == nil || r.next.Before(low.next) {
				low, lowAt = r, k
			}
		case due:
			if high == nil {
				high, highAt = r, k
			}
		}
		if d := r.next.Sub(now); wait < 0 || d < wait {
			wait = d
		}
	}
	switch {
	case low != nil && (high == nil || now.Sub(b.lastLow) >= lowEvery):
		b.rr, b.lastLow = lowAt+1, now
		return low, 0
	case high != nil:
		b.rr = highAt + 1
		return high, 0
	}
	// A reader due within a quarter interval goes now: polls then come in
	// bursts with one sleep between them instead of one sleep per poll.
	if wait >= 0 && wait <= b.cfg.PollInterval/4 {
		for i := range b.readers {
			k := (b.rr + i) % len(b.readers)
			if r := b.readers[k]; r.next.Sub(now) == wait {
				b.rr = k + 1
				return r, 0
			}
		}
	}
	return nil, wait
}

// idle waits d, or until a command is queued.
func (b *Bus) idle(ctx context.Context, d time.Duration) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.mu.Lock()
	if b.kicked {
		b.kicked = false
		b.mu.Unlock()
		return
	}
	b.wake = cancel
	b.mu.Unlock()
	_ = b.clock.Sleep(wctx, d)
	b.mu.Lock()
	b.wake, b.kicked = nil, false
	b.mu.Unlock()
}

// kick wakes an idle Run; b.mu is held.
func (b *Bus) kick() {
	if b.wake != nil {
		b.wake()
		return
	}
	b.kicked = true
}

func (b *Bus) direction(tx bool) error {
	level := tx != b.cfg.Direction.ActiveLow
	switch b.cfg.Direction.Mode {
	case DirectionRTS:
		if err := b.port.(interface{ SetRTS(bool) error }).SetRTS(level); err != nil {
			return fmt.Errorf("osdp: set RTS: %w", err)
		}
	case DirectionPin:
		if err := b.cfg.Direction.Pin.Out(gpio.Level(level)); err != nil {
			return fmt.Errorf("osdp: set DE pin: %w", err)
		}
	}
	return nil
}

// Exchange outcomes that are not the port's fault.
var (
	errTimeout = errors.New("osdp: no reply")
	errGarbled = errors.New("osdp: garbled reply")
)

// exchange sends one frame and waits for the matching reply. It returns
// errTimeout or errGarbled for a reply that did not come through, and
// other errors for port failures.
func (b *Bus) exchange(ctx context.Context, addr byte, frame []byte, seq byte) (Frame, error) {
	// At least two character times of idle line before transmitting
	// (spec 5.7). A port that can hold its own thread for that long does:
	// through the scheduler, a wait this short cost more than the poll.
	if gap := b.lastRx.Add(2 * b.charTime).Sub(b.clock.Now()); gap > 0 {
		if b.gap != nil {
			b.gap(gap)
		} else if err := b.clock.Sleep(ctx, gap); err != nil {
			return Frame{}, err
		}
	}
	// Stale bytes (a late reply, noise) are likely only after an exchange
	// that went wrong; flushing every time would cost a syscall per poll.
	if b.dirty {
		if err := b.port.ResetInputBuffer(); err != nil {
			return Frame{}, fmt.Errorf("osdp: reset input: %w", err)
		}
	}
	b.dirty = true
	if err := b.direction(true); err != nil {
		return Frame{}, err
	}
	_, werr := b.port.Write(frame)
	// Only a transmitter we switch ourselves needs to know when the last
	// byte has left; otherwise the reply deadline accounts for it.
	wire := time.Duration(len(frame)) * b.charTime
	if werr == nil && b.cfg.Direction.Mode != DirectionAuto {
		werr, wire = b.port.Drain(), 0
	}
	if err := b.direction(false); err != nil && werr == nil {
		werr = err
	}
	if werr != nil {
		return Frame{}, fmt.Errorf("osdp: write: %w", werr)
	}
	deadline := b.clock.Now().Add(wire + b.cfg.ReplyTimeout)
	b.rx.Reset()
	for {
		if err := ctx.Err(); err != nil {
			return Frame{}, err
		}
		timeout := b.cfg.InterChar
		if !b.rx.InFrame() {
			timeout = deadline.Sub(b.clock.Now())
			if timeout <= 0 {
				return Frame{}, errTimeout
			}
		}
		if timeout != b.rto {
			if err := b.port.SetReadTimeout(timeout); err != nil {
				return Frame{}, fmt.Errorf("osdp: set read timeout: %w", err)
			}
			b.rto = timeout
		}
		n, err := b.port.Read(b.rbuf[:])
		if err != nil {
			return Frame{}, fmt.Errorf("osdp: read: %w", err)
		}
		now := b.clock.Now()
		if n == 0 {
			if b.rx.InFrame() { // inter-character timeout: the frame is lost
				b.rx.Reset()
				return Frame{}, fmt.Errorf("%w: inter-character timeout", errGarbled)
			}
			continue
		}
		b.lastRx = now
		b.rxBytes.Add(uint64(n))
		for _, c := range b.rbuf[:n] {
			raw := b.rx.Push(c, now)
			if raw == nil {
				continue
			}
			f, err := ParseFrame(raw)
			if err != nil {
				return Frame{}, fmt.Errorf("%w: %w", errGarbled, err)
			}
			// Frames for someone else, or a late reply to an earlier
			// command, are not ours: keep listening.
			if !f.Reply || f.Addr != addr || (f.Seq != seq && !(f.Code == ReplyBUSY && f.Seq == 0)) {
				continue
			}
			b.dirty = false
			return f, nil
		}
	}
}

func (b *Bus) find(addr byte) *reader {
	for _, r := range b.readers {
		if r.cfg.Addr == addr {
			return r
		}
	}
	return nil
}

// enqueue queues commands for the reader at addr; b.mu is not held.
func (b *Bus) enqueue(addr byte, ops ...*op) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.find(addr)
	switch {
	case r == nil:
		return fmt.Errorf("%w %d", ErrUnknownReader, addr)
	case !r.online:
		return fmt.Errorf("%w: %s", ErrOffline, r.cfg.Name)
	case len(r.queue)+len(ops) > queueLimit:
		return fmt.Errorf("%w: %s", ErrQueueFull, r.cfg.Name)
	}
	r.queue = append(r.queue, ops...)
	b.kick()
	return nil
}

// LED queues an osdp_LED command. It does not wait for the reader.
func (b *Bus) LED(addr byte, l LED) error {
	return b.enqueue(addr, &op{code: CmdLED, data: l.Encode()})
}

// Buzzer queues an osdp_BUZ command.
func (b *Bus) Buzzer(addr byte, z Buzzer) error {
	return b.enqueue(addr, &op{code: CmdBUZ, data: z.Encode()})
}

// Output queues an osdp_OUT command for one or more outputs.
func (b *Bus) Output(addr byte, outs ...Output) error {
	var d []byte
	for _, o := range outs {
		d = append(d, o.Encode()...)
	}
	if len(d) == 0 {
		return errors.New("osdp: no outputs")
	}
	return b.enqueue(addr, &op{code: CmdOUT, data: d})
}

// Feedback queues the LED (and buzzer) commands of a decision pattern.
func (b *Bus) Feedback(addr byte, f Feedback) error {
	led, buz := FeedbackCommands(f)
	ops := []*op{{code: CmdLED, data: led.Encode()}}
	if buz != nil {
		ops = append(ops, &op{code: CmdBUZ, data: buz.Encode()})
	}
	return b.enqueue(addr, ops...)
}

// call queues one command and waits for its outcome.
func (b *Bus) call(ctx context.Context, addr byte, o *op) error {
	o.done = make(chan error, 1)
	if err := b.enqueue(addr, o); err != nil {
		return err
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetComm sends osdp_COMSET: the reader at addr moves to newAddr and baud
// and keeps them across power cycles. The bus follows the address change;
// a new baud takes a new bus (reopen the port at that rate).
func (b *Bus) SetComm(ctx context.Context, addr, newAddr byte, baud int) error {
	if newAddr > MaxAddr {
		return fmt.Errorf("osdp: address %d outside 0–126", newAddr)
	}
	b.mu.Lock()
	taken := newAddr != addr && b.find(newAddr) != nil
	b.mu.Unlock()
	if taken {
		return fmt.Errorf("osdp: address %d is taken on this bus", newAddr)
	}
	d := []byte{newAddr, byte(baud), byte(baud >> 8), byte(baud >> 16), byte(baud >> 24)}
	return b.call(ctx, addr, &op{code: CmdCOMSET, data: d})
}

// Rekey sends the reader at addr a new Secure Channel Base Key with
// osdp_KEYSET over its established session (under SCBK-D for a reader in
// install mode), then proves the key by establishing a new session with it.
// It returns nil only once the proof succeeded. Store the key before
// calling: once the reader has acknowledged KEYSET it accepts only the new
// key, even if the proof then fails.
func (b *Bus) Rekey(ctx context.Context, addr byte, key [16]byte) error {
	b.mu.Lock()
	r, o, err := b.keyset(addr, key)
	switch {
	case err != nil:
	case !r.online:
		err = fmt.Errorf("%w: %s", ErrOffline, r.cfg.Name)
	case r.rekey != nil:
		err = errors.New("osdp: a rekey is already running")
	}
	if err != nil {
		b.mu.Unlock()
		return err
	}
	r.rekey = o
	b.kick()
	b.mu.Unlock()
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// keyset checks a new key for the reader at addr and makes its osdp_KEYSET
// command; b.mu is held.
func (b *Bus) keyset(addr byte, key [16]byte) (*reader, *op, error) {
	if key == ([16]byte{}) {
		return nil, nil, errors.New("osdp: refusing an all-zero key")
	}
	r := b.find(addr)
	switch {
	case r == nil:
		return nil, nil, fmt.Errorf("%w %d", ErrUnknownReader, addr)
	case r.cfg.Secure == SecureOff:
		return nil, nil, fmt.Errorf("%w: %s is configured without", ErrNoSecureChannel, r.cfg.Name)
	}
	return r, &op{code: CmdKEYSET, data: append([]byte{keyTypeSCBK, 16}, key[:]...), key: key, done: make(chan error, 1)}, nil
}

// ReceivedBytes counts every byte read from the line since Run started,
// valid or not: a bus that never received one has no reader answering at
// all (A/B swapped, no power, the wrong port), one that receives bytes but
// no valid reply runs at the wrong baud rate.
func (b *Bus) ReceivedBytes() uint64 { return b.rxBytes.Load() }

// Status returns a snapshot of every reader, in configuration order.
func (b *Bus) Status() []ReaderStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]ReaderStatus, len(b.readers))
	for i, r := range b.readers {
		out[i] = r.st
		out[i].Caps = append(Capabilities(nil), r.st.Caps...)
		if r.st.Identity != nil {
			id := *r.st.Identity
			out[i].Identity = &id
		}
	}
	return out
}

// emit delivers a report; b.mu is not held.
func (b *Bus) emit(r *reader, rep Report) {
	rep.Reader, rep.Addr, rep.At = r.cfg.Name, r.cfg.Addr, b.clock.Now()
	switch rep.Kind {
	case ReportOnline, ReportOffline, ReportTamper, ReportPower, ReportNAK:
		b.log.Info(rep.String())
	default:
		b.log.Debug(rep.String())
	}
	b.report(rep)
}
