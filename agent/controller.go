package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Errors of the controller's enqueue and command methods.
var (
	ErrControllerStopped = errors.New("door controller is not running")
	ErrInputQueueFull    = errors.New("door controller input queue is full")
)

// Default timings of a door.
const (
	DefaultAccessTime      = 5 * time.Second
	DefaultHeldOpenTime    = 30 * time.Second
	DefaultPINTimeout      = 10 * time.Second
	DefaultTwoFactorWindow = 15 * time.Second
	DefaultEnrolTimeout    = 60 * time.Second
	DefaultOpenGrace       = time.Second
	DefaultMaxUnlock       = 12 * time.Hour
	DefaultInputQueue      = 256
)

// ControllerConfig configures the controller of one door. Zero durations take
// the defaults above.
type ControllerConfig struct {
	Door Door
	// AccessTime is how long a grant or an exit press energises the relay.
	AccessTime time.Duration
	// HeldOpenTime is how long the door may stay open before held_open.
	HeldOpenTime time.Duration
	// PreAlarmAfter raises held_open_prealarm this long after opening;
	// zero means 4/5 of HeldOpenTime, negative disables the pre-alarm.
	PreAlarmAfter time.Duration
	// PINTimeout clears a half-typed PIN after this long without a key.
	PINTimeout time.Duration
	// TwoFactorWindow is how long a card_and_pin door waits for the PIN.
	TwoFactorWindow time.Duration
	// EnrolTimeout disarms "enrol the next tap" after this long.
	EnrolTimeout time.Duration
	// OpenGrace still counts a door opened this long after the relay
	// switched off as authorised: the contact is debounced and slower than
	// the relay.
	OpenGrace time.Duration
	// MaxUnlock bounds a remote unlock-for-duration.
	MaxUnlock time.Duration
	// Lockout is the wrong-PIN policy; zero fields take its defaults.
	Lockout LockoutPolicy
	// EasyOfficeMode makes office mode start only at the first granted
	// credential after it is turned on (Salto's "easy office mode").
	EasyOfficeMode bool
	// InputQueue bounds the queued hardware inputs (cards, keys, inputs).
	InputQueue int

	Clock  Clock        // default: SystemClock
	Logger *slog.Logger // default: discard

	Relay    Output // required
	GreenLED Output // optional
	RedLED   Output // optional
	Buzzer   Output // optional
	// Indicator (optional) shows the door's signal on readers that render
	// it themselves (OSDP); the wired LEDs and buzzer work alongside.
	Indicator Indicator
	// Readers names the door's supervised readers (OSDP): they are in the
	// status from the start, "starting" until their first report.
	Readers []string

	Decider    Deciding       // required
	Events     EventSink      // required
	Enrolments EnrolmentStore // optional: without it enrolment commands are refused
	// Cards records what taps teach about cards (first fingerprints, newer
	// DESFire generations); optional: without it nothing is learned and a
	// card stays "first seen" until a store is configured.
	Cards CardStore
}

func (cfg ControllerConfig) withDefaults() ControllerConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.AccessTime, DefaultAccessTime)
	def(&cfg.HeldOpenTime, DefaultHeldOpenTime)
	def(&cfg.PreAlarmAfter, cfg.HeldOpenTime*4/5)
	def(&cfg.PINTimeout, DefaultPINTimeout)
	def(&cfg.TwoFactorWindow, DefaultTwoFactorWindow)
	def(&cfg.EnrolTimeout, DefaultEnrolTimeout)
	def(&cfg.OpenGrace, DefaultOpenGrace)
	def(&cfg.MaxUnlock, DefaultMaxUnlock)
	cfg.Lockout = cfg.Lockout.withDefaults()
	if cfg.InputQueue <= 0 {
		cfg.InputQueue = DefaultInputQueue
	}
	if cfg.Clock == nil {
		cfg.Clock = NewSystemClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Validate checks the configuration (after defaults) is usable.
func (cfg ControllerConfig) Validate() error {
	cfg = cfg.withDefaults()
	if err := cfg.Door.Validate(); err != nil {
		return err
	}
	switch {
	case cfg.Relay == nil:
		return fmt.Errorf("door %q: no relay output", cfg.Door.ID)
	case cfg.Decider == nil:
		return fmt.Errorf("door %q: no decider", cfg.Door.ID)
	case cfg.Events == nil:
		return fmt.Errorf("door %q: no event sink", cfg.Door.ID)
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"access time", cfg.AccessTime}, {"held-open time", cfg.HeldOpenTime}, {"PIN timeout", cfg.PINTimeout},
		{"card_and_pin window", cfg.TwoFactorWindow}, {"enrolment timeout", cfg.EnrolTimeout},
		{"open grace", cfg.OpenGrace}, {"maximum unlock", cfg.MaxUnlock},
	} {
		if d.d < 0 {
			return fmt.Errorf("door %q: %s is negative", cfg.Door.ID, d.name)
		}
	}
	if cfg.PreAlarmAfter >= cfg.HeldOpenTime {
		return fmt.Errorf("door %q: pre-alarm (%s) must come before the held-open alarm (%s)", cfg.Door.ID, cfg.PreAlarmAfter, cfg.HeldOpenTime)
	}
	return cfg.Lockout.validate()
}

// Controller runs one door: it turns cards, keys and inputs into decisions,
// relay pulses, feedback and events. Run's goroutine owns all door state;
// the enqueue and command methods only queue work for it and are safe for
// concurrent use. The relay's deadlines are enforced by the strike, outside
// that goroutine.
type Controller struct {
	cfg    ControllerConfig
	door   Door
	clock  Clock
	log    *slog.Logger
	strike *strike
	learnq chan learning // card records to store off the door's loop (see learn)

	qmu     sync.Mutex
	queue   []queued
	inputs  int // queued hardware inputs
	dropped int // hardware inputs refused since the last report
	running bool
	stopped bool
	wake    chan struct{}
	done    chan struct{}

	// Owned by Run's goroutine.
	timers        [numTimers]timerSlot
	pin           []byte
	blockedDigits int // digits typed while PIN entry was blocked
	pending       *pendingCard
	lockout       lockoutState
	doorOpen      bool
	relockOnClose bool
	forced        bool
	preAlarm      bool
	heldAlarm     bool
	tamper        bool
	lockdown      bool
	office        officeState
	enrol         *enrolArm
	overlay       feedbackKind
	outLevels     [numFeedbackOutputs]outputLevel
	shown         Signal // last signal the indicator took ("" unknown)
	readers       []ReaderStatus
	tampers       map[string]bool // active tamper sources: "" the wired input, else a reader
	lastEvent     *Event

	smu    sync.Mutex
	status DoorStatus
}

type queued struct {
	msg   any
	input bool
}

// Queue messages.
type (
	cardMsg   struct{ p Presented }
	keyMsg    struct{ key rune }
	readerMsg struct{ s ReaderStatus }
	inputMsg  struct {
		in     DoorInput
		active bool
	}
	timeoutMsg struct {
		kind timerKind
		gen  uint64
	}
	strikeMsg  struct{ change strikeChange }
	commandMsg struct {
		cmd   any
		reply chan commandReply
	}
	flushMsg struct{ done chan struct{} }
)

type commandReply struct {
	res   CommandResult
	enrol <-chan EnrolResult
}

// NewController builds the controller of cfg.Door. Run validates the
// configuration (see ControllerConfig.Validate to check it earlier).
func NewController(cfg ControllerConfig) *Controller {
	cfg = cfg.withDefaults()
	c := &Controller{
		cfg:    cfg,
		door:   cfg.Door,
		clock:  cfg.Clock,
		log:    cfg.Logger.With("door", cfg.Door.ID),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		learnq: make(chan learning, learnQueue),
	}
	if cfg.Relay != nil {
		c.strike = newStrike(cfg.Relay, cfg.Clock, c.log, func(ch strikeChange) { _ = c.post(strikeMsg{ch}, false) })
	}
	for _, name := range cfg.Readers {
		c.readers = append(c.readers, ReaderStatus{Reader: name, State: ReaderStarting})
	}
	c.tampers = map[string]bool{}
	c.status = DoorStatus{Door: cfg.Door.ID, Locked: true, Override: OverrideNone, OfficeMode: OfficeOff, Readers: c.readerStatuses()}
	return c
}

// Present queues a presented credential (a card from a reader; a whole PIN
// from a reader that sends one is handled as a submitted PIN).
func (c *Controller) Present(p Presented) error { return c.post(cardMsg{p}, true) }

// PressKey queues a keypad key: '0'–'9', '*' (clear) or '#' (submit).
func (c *Controller) PressKey(key rune) error { return c.post(keyMsg{key}, true) }

// SetInput queues a debounced input change.
func (c *Controller) SetInput(in DoorInput, active bool) error {
	return c.post(inputMsg{in, active}, true)
}

// Flush waits until everything queued before it, and everything that caused
// in turn, has been handled: the controller is idle.
func (c *Controller) Flush(ctx context.Context) error {
	done := make(chan struct{})
	if err := c.post(flushMsg{done}, false); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-c.done:
		return ErrControllerStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when Run has returned and the door is in its safe state.
func (c *Controller) Done() <-chan struct{} { return c.done }

// post queues m and wakes the loop. It never blocks: timer and relay
// callbacks call it, and they must not wait for a busy loop.
func (c *Controller) post(m any, input bool) error {
	c.qmu.Lock()
	if c.stopped {
		c.qmu.Unlock()
		return ErrControllerStopped
	}
	if input && c.inputs >= c.cfg.InputQueue {
		c.dropped++
		c.qmu.Unlock()
		return ErrInputQueueFull
	}
	c.queue = append(c.queue, queued{m, input})
	if input {
		c.inputs++
	}
	c.qmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

func (c *Controller) next() (any, bool) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if len(c.queue) == 0 {
		return nil, false
	}
	q := c.queue[0]
	c.queue[0] = queued{}
	c.queue = c.queue[1:]
	if q.input {
		c.inputs--
	}
	return q.msg, true
}

// Run operates the door until ctx ends. The relay is driven off before
// anything else is handled and on every way out; Run returns nil when ctx
// ends and an error when the door cannot be operated safely.
func (c *Controller) Run(ctx context.Context) error {
	c.qmu.Lock()
	if c.running || c.stopped {
		c.qmu.Unlock()
		return fmt.Errorf("door %q: controller already ran", c.door.ID)
	}
	c.running = true
	c.qmu.Unlock()
	if err := c.cfg.Validate(); err != nil {
		if c.cfg.Relay != nil {
			_ = c.cfg.Relay.Set(false) // safe even when misconfigured
		}
		c.qmu.Lock()
		c.stopped = true
		c.qmu.Unlock()
		close(c.done)
		return fmt.Errorf("door controller: %w", err)
	}
	if c.cfg.Cards != nil {
		lctx, stop := context.WithCancel(ctx)
		learned := make(chan struct{})
		go func() { defer close(learned); c.learn(lctx) }()
		defer func() { stop(); <-learned }() // after shutdown: the learner stops last
	}
	defer c.shutdown()

	if err := c.strike.safe(); err != nil {
		return fmt.Errorf("door %q: safe state: %w", c.door.ID, err)
	}
	c.applyOutputs()
	c.emit(ctx, Event{Type: EventControllerStarted, Detail: fmt.Sprintf("relay off; mode %s, access time %s", c.door.Mode, c.cfg.AccessTime)})
	c.publishStatus()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.wake:
		}
		for ctx.Err() == nil {
			m, ok := c.next()
			if !ok {
				break
			}
			c.handle(ctx, m)
			c.reconcile(ctx)
		}
	}
}

// shutdown puts the door in its safe state and fails pending work. Events
// are not recorded any more (the context is gone); the next start records
// controller_started.
func (c *Controller) shutdown() {
	c.qmu.Lock()
	c.stopped = true
	c.queue = nil
	c.qmu.Unlock()
	for k := range c.timers {
		c.disarm(timerKind(k))
	}
	if err := c.strike.safe(); err != nil {
		c.log.Error("relay safe state on shutdown failed", "err", err)
	}
	c.clearPIN()
	c.forced, c.preAlarm, c.heldAlarm, c.lockdown, c.overlay = false, false, false, false, fbNone
	c.lockout.until = time.Time{}
	c.office = officeState{}
	c.setOutputsSafe()
	if c.enrol != nil {
		c.finishEnrolment(EnrolResult{Outcome: EnrolStopped, TagNumber: c.enrol.tag})
	}
	c.publishStatus()
	c.smu.Lock()
	c.status.Running = false
	c.smu.Unlock()
	close(c.done)
}

func (c *Controller) handle(ctx context.Context, m any) {
	switch m := m.(type) {
	case cardMsg:
		c.onCard(ctx, m.p)
	case keyMsg:
		c.onKey(ctx, m.key)
	case inputMsg:
		c.onInput(ctx, m.in, m.active)
	case readerMsg:
		c.onReader(ctx, m.s)
	case timeoutMsg:
		if c.timers[m.kind].gen != m.gen {
			return // disarmed or re-armed after it fired
		}
		c.timers[m.kind].t = nil
		c.onTimeout(ctx, m.kind)
	case strikeMsg:
		c.onStrike(ctx, m.change)
	case commandMsg:
		m.reply <- c.onCommand(ctx, m.cmd)
	case flushMsg:
		// Requeue behind work that handling queued (relay changes), so a
		// flush returns only once the controller is idle.
		c.qmu.Lock()
		busy := slices.ContainsFunc(c.queue, func(q queued) bool {
			_, flush := q.msg.(flushMsg)
			return !flush // other flushes must not keep each other waiting
		})
		if busy {
			c.queue = append(c.queue, queued{msg: m})
		}
		c.qmu.Unlock()
		if !busy {
			c.flushLearning(ctx, m.done)
		}
	}
}

// reconcile brings derived state in line after each message: held-open
// timers, outputs, overflow reports and the status snapshot.
func (c *Controller) reconcile(ctx context.Context) {
	c.reconcileHeld()
	c.applyOutputs()
	c.qmu.Lock()
	dropped := c.dropped
	c.dropped = 0
	c.qmu.Unlock()
	if dropped > 0 {
		c.emit(ctx, Event{Type: EventInputQueueOverflow, Detail: fmt.Sprintf("%d hardware inputs dropped: the controller was busy", dropped)})
	}
	c.publishStatus()
}

// decisionTime is the one place the controller reads the time a decision is
// made at, so the clock policy (clock_unsynced) can be applied here.
func (c *Controller) decisionTime() time.Time { return c.clock.Now() }

func (c *Controller) decide(ctx context.Context, presented ...Presented) Decision {
	d, err := c.cfg.Decider.Decide(ctx, c.door, c.decisionTime(), presented...)
	if err != nil {
		c.log.Error("access decision failed, denying", "err", err)
		d.Granted = false
		if d.Reason == "" || d.Reason == ReasonGranted {
			d.Reason = ReasonCacheUnavailable
		}
	}
	d.Door = c.door.ID
	return d
}

// emit records e (stamped with the door and, unless set, the time) and logs
// it. A sink failure is logged; the sink is the outbox and owns its alarms.
func (c *Controller) emit(ctx context.Context, e Event) {
	e.Door = c.door.ID
	if e.Time.IsZero() {
		e.Time = c.clock.Now()
	}
	last := e
	c.lastEvent = &last
	c.record(ctx, e)
}

// record logs and records a complete event (door and time set). Unlike
// emit it touches no controller state, so the card learner may call it.
func (c *Controller) record(ctx context.Context, e Event) {
	attrs := []any{"type", string(e.Type)}
	if e.Reason != "" {
		attrs = append(attrs, "reason", string(e.Reason))
	}
	if e.User != nil {
		attrs = append(attrs, "user", e.User.ID)
	}
	if e.Credential != "" {
		attrs = append(attrs, "credential", e.Credential)
	}
	if e.Detail != "" {
		attrs = append(attrs, "detail", e.Detail)
	}
	level := slog.LevelInfo
	if e.Type == EventRelayOn || e.Type == EventRelayOff {
		level = slog.LevelDebug
	}
	c.log.Log(ctx, level, "door event", attrs...)
	if err := c.cfg.Events.Record(ctx, e); err != nil {
		c.log.Error("event not recorded", "type", string(e.Type), "err", err)
	}
}
