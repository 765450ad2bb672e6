package hal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal/doorio"
	"github.com/portier-io/portier/hal/keypad"
	"github.com/portier-io/portier/hal/mfrc522"
	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/wallclock"
	"github.com/portier-io/portier/hal/wiegand"
)

// DoorDevices are one door's opened devices. OpenPeriph builds them from the
// host's GPIO and SPI; anything else that yields periph.io/x/conn pins and
// ports (an I/O expander, a test's simulators) can build them too.
type DoorDevices struct {
	Door    string
	Outputs map[Output]*doorio.Output
	Inputs  map[Input]*doorio.Input
	RFID    *mfrc522.Reader
	// Cards is the RFID reader's card station (its Inspect must be the
	// reader's); nil: cards are reported by UID alone.
	Cards   *CardStation
	Wiegand *wiegand.Reader
	Keypad  *keypad.Keypad
	// Halts unblock the devices' edge waits at shutdown (Input.Halt,
	// LineSet.Halt), so Run returns at once instead of at their timeouts.
	Halts []func() error
}

// Clock is the board's time source for event times and restart back-off.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// BoardOptions configures a DeviceBoard.
type BoardOptions struct {
	Logger  *slog.Logger   // nil: discard
	Clock   Clock          // nil: system clock
	Closers []func() error // released by Close, last first
	// OSDP runs the board's OSDP buses (nil: none); the board runs it,
	// routes door signals to it and closes it.
	OSDP *OSDPRuntime
}

// DeviceBoard is a Board over opened device drivers: the real board.
type DeviceBoard struct {
	log     *slog.Logger
	clock   Clock
	doors   []DoorDevices
	byID    map[string]*DoorDevices
	closers []func() error
	osdp    *OSDPRuntime
	emitMu  sync.Mutex
}

// NewDeviceBoard assembles a board. The outputs should already be in their
// safe state (doorio.NewOutput does that).
func NewDeviceBoard(doors []DoorDevices, opts BoardOptions) *DeviceBoard {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = wallclock.Clock{}
	}
	if opts.OSDP == nil {
		opts.OSDP = NewOSDPRuntime(nil, OSDPOptions{})
	}
	b := &DeviceBoard{log: opts.Logger, clock: opts.Clock, doors: doors, byID: map[string]*DoorDevices{}, closers: opts.Closers, osdp: opts.OSDP}
	for i := range b.doors {
		b.byID[b.doors[i].Door] = &b.doors[i]
	}
	return b
}

// Run implements Board.
func (b *DeviceBoard) Run(ctx context.Context, emit func(Event)) error {
	send := func(e Event) {
		b.emitMu.Lock()
		defer b.emitMu.Unlock()
		emit(e)
	}
	var wg sync.WaitGroup
	start := func(door, device string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.supervise(ctx, door, device, fn, send)
		}()
	}
	for _, d := range b.doors {
		for in, x := range d.Inputs {
			start(d.Door, string(in), func(ctx context.Context) error {
				return x.Run(ctx, func(active bool, at time.Time) {
					send(Event{Door: d.Door, Kind: EventInput, At: at, Input: in, Active: active})
				})
			})
		}
		if d.RFID != nil {
			start(d.Door, "mfrc522", func(ctx context.Context) error {
				return d.RFID.Run(ctx, func(c mfrc522.Card) {
					if d.Cards == nil {
						send(CardEvent(d.Door, c.UID, b.clock.Now()))
					} else if ev, ok := d.Cards.Event(c, b.clock.Now()); ok {
						send(ev)
					}
				}, func(err error) {
					send(Event{Door: d.Door, Kind: EventFault, At: b.clock.Now(), Device: "mfrc522", Err: err})
				})
			})
		}
		if d.Wiegand != nil {
			start(d.Door, "wiegand", func(ctx context.Context) error {
				return d.Wiegand.Run(ctx, func(r wiegand.Reading, err error) {
					send(WiegandEvent(d.Door, r, err, b.clock.Now()))
				})
			})
		}
		if d.Keypad != nil {
			start(d.Door, "keypad", func(ctx context.Context) error {
				return d.Keypad.Run(ctx, func(k rune) {
					send(Event{Door: d.Door, Kind: EventKey, At: b.clock.Now(), Key: k})
				})
			})
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.osdp.Run(ctx, send)
	}()
	<-ctx.Done()
	for _, d := range b.doors {
		for _, h := range d.Halts {
			_ = h() // unblock edge waits now rather than at their timeouts
		}
	}
	wg.Wait()
	return nil
}

// supervise runs one device loop and restarts it with back-off after a
// failure, reporting each failure as an EventFault.
func (b *DeviceBoard) supervise(ctx context.Context, door, device string, fn func(context.Context) error, emit func(Event)) {
	backoff := agent.Backoff{Min: time.Second, Max: 30 * time.Second}
	for {
		err := fn(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("device loop stopped")
		}
		wait := backoff.Next()
		b.log.Warn("device failed, restarting", "door", door, "device", device, "err", err, "after", wait)
		emit(Event{Door: door, Kind: EventFault, At: b.clock.Now(), Device: device, Err: err})
		if b.clock.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// CardJob runs job on the next card presented at door's RFID reader (see
// CardStation.Job).
func (b *DeviceBoard) CardJob(ctx context.Context, door string, job CardJob, ready func()) error {
	d, ok := b.byID[door]
	if !ok {
		return fmt.Errorf("hal: no door %q on this board", door)
	}
	if d.Cards == nil {
		return fmt.Errorf("hal: door %s has no RFID reader", door)
	}
	return d.Cards.Job(ctx, job, ready)
}

// Set implements Board.
func (b *DeviceBoard) Set(door string, out Output, on bool) error {
	d, ok := b.byID[door]
	if !ok {
		return fmt.Errorf("hal: no door %q on this board", door)
	}
	o, ok := d.Outputs[out]
	if !ok {
		return fmt.Errorf("hal: door %s has no %s wired", door, out)
	}
	return o.Set(on)
}

// Signal implements Board.
func (b *DeviceBoard) Signal(door string, s agent.Signal) error {
	if _, ok := b.byID[door]; !ok && !b.osdp.HasReader(door) {
		return fmt.Errorf("hal: no door %q on this board", door)
	}
	return b.osdp.Signal(door, s)
}

// Readers implements Board.
func (b *DeviceBoard) Readers() []agent.ReaderHealth { return b.osdp.Readers() }

// InstallReader implements Board.
func (b *DeviceBoard) InstallReader(ctx context.Context, door string, key [16]byte) error {
	return b.osdp.InstallReader(ctx, door, key)
}

// SetReaderAddress implements Board.
func (b *DeviceBoard) SetReaderAddress(ctx context.Context, door string, addr, baud int) (ReaderMove, error) {
	return b.osdp.SetReaderAddress(ctx, door, addr, baud)
}

// ReaderOutput implements Board.
func (b *DeviceBoard) ReaderOutput(ctx context.Context, door string, n int, action osdp.OutputAction, pulse time.Duration) error {
	return b.osdp.ReaderOutput(ctx, door, n, action, pulse)
}

// Halt implements Board.
func (b *DeviceBoard) Halt() error {
	var errs []error
	for _, d := range b.doors {
		for _, o := range d.Outputs {
			errs = append(errs, o.Halt())
		}
	}
	return errors.Join(errs...)
}

// Close implements Board.
func (b *DeviceBoard) Close() error {
	errs := []error{b.Halt(), b.osdp.Close()}
	for i := len(b.closers) - 1; i >= 0; i-- {
		errs = append(errs, b.closers[i]())
	}
	b.closers = nil
	return errors.Join(errs...)
}

var _ Board = (*DeviceBoard)(nil)
