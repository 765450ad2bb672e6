package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/cloud/saltoks/accesscode"
	"github.com/portier-io/portier/cloud/saltoks/sitefile"
	"github.com/portier-io/portier/cloud/saltoks/sitesync"
	"github.com/portier-io/portier/cmd/portier/config"
	"github.com/portier-io/portier/cmd/portier/control"
	"github.com/portier-io/portier/cmd/portier/defaults"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/sim"
	"github.com/portier-io/portier/sqlite"
)

func cmdRun(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "run", "[--config FILE] [--sim-input FILE|-]")
	cfgPath := fs.String("config", "", "config file (default: the embedded demo config on a simulated board)")
	simInput := fs.String("sim-input", "", "with driver sim: read sim commands (tap, keys, open, exit, status, quit, …) from FILE (the agent keeps running after it), or - for standard input (its end stops the agent)")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		return wrongArgs(e, fs, 0)
	}
	// The same checks as check-config. A config that does not load says
	// nothing about the outputs, so nothing is touched; otherwise the
	// outputs are made safe before its problems are reported.
	rep := config.Check(*cfgPath, e.getenv)
	problems := append(rep.Problems, rep.Lacks("run")...)
	if rep.Config == nil {
		for _, p := range problems {
			fmt.Fprintln(e.stderr, p)
		}
		return fail(e, exitUsage, "%s in the config (portier check-config --for run shows the same)", countProblems(len(problems)))
	}
	log := newLogger(e, rep.Config.LogLevel)
	for _, w := range rep.Warnings {
		log.Warn(w)
	}
	d := &daemon{cfg: rep.Config, problems: problems, e: e, log: log, simInput: *simInput}
	if err := d.run(ctx); err != nil {
		log.Error("portier stopped", "err", err)
		fmt.Fprintf(e.stderr, "portier: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitFailed
	}
	return exitOK
}

// usageError marks start-up errors caused by the configuration or data (exit 2).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func newLogger(e *env, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil || level == "" {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: l}))
}

// daemon is one running gateway: the board, the cache, a controller per door,
// the clock guard, the sync loop and the control socket.
type daemon struct {
	cfg      *config.Config
	problems []string // what config.Check found and what run lacks: reported once the outputs are safe
	e        *env
	log      *slog.Logger
	simInput string

	board   hal.Board
	sim     *sim.Board
	db      *sqlite.DB
	events  *agent.EventSpool // every event goes through it to the outbox in db
	key     agent.PINKey
	guard   *agent.ClockGuard
	engine  *sitesync.Engine
	codes   *accesscode.Service
	link    *mqtt.Link
	doors   *agent.Doors
	started time.Time
}

func (d *daemon) run(ctx context.Context) (err error) {
	d.started = d.e.now()
	// Outputs first: nothing else happens before every relay is in its safe
	// state (DESIGN decision 5), including after a crash that left one on.
	boardErr := d.openBoard()
	if boardErr == nil {
		defer func() {
			if herr := d.board.Close(); herr != nil {
				d.log.Error("close board", "err", herr)
				err = errors.Join(err, herr)
			}
		}()
	}
	if len(d.problems) > 0 {
		return usageError{fmt.Errorf("%s in the config (portier check-config --for run shows the same):\n%s", countProblems(len(d.problems)), strings.Join(d.problems, "\n"))}
	}
	if boardErr != nil {
		return boardErr
	}
	if err := d.openCache(ctx); err != nil {
		return err
	}
	defer d.db.Close()
	d.events = agent.NewEventSpool(agent.EventSpoolConfig{Store: d.db, Clock: agent.NewSystemClock(), Logger: d.log.With("component", "events")})
	if err := d.startClockGuard(ctx); err != nil {
		return err
	}
	if err := d.buildSync(ctx); err != nil {
		return err
	}
	if err := d.buildControllers(); err != nil {
		return err
	}
	if d.cfg.MQTT.Enabled() {
		if d.link, err = d.buildLink(); err != nil {
			return err
		}
	}
	ctl, err := control.Listen(d.cfg.ControlSocket, controlBackend{d})
	if err != nil {
		return usageError{err}
	}
	defer ctl.Close()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	goRun := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(runCtx); err != nil && runCtx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	goRun("events", d.events.Run)
	goRun("doors", d.doors.Run)
	// Healthy returns once every controller's loop is up and idle (its relay
	// is in the safe state by then).
	sctx, scancel := context.WithTimeout(runCtx, 10*time.Second)
	if err := d.doors.Healthy(sctx); err != nil && runCtx.Err() == nil {
		d.log.Error("a door did not start", "err", err)
	}
	scancel()
	d.reportInitialInputs()
	goRun("board", func(ctx context.Context) error { return d.board.Run(ctx, d.dispatch) })
	goRun("clock", func(ctx context.Context) error { return d.guard.Run(ctx, time.Minute, agent.NewSystemClock()) })
	goRun("control", ctl.Run)
	if d.engine != nil {
		goRun("sync", d.engine.Run)
		goRun("access codes", d.expireCodes)
	}
	if d.link != nil {
		goRun("mqtt", d.link.Run)
	}
	// quit, or the end of typed sim input, stops the agent like SIGTERM.
	stopAsked := make(chan string, 1)
	if d.sim != nil && d.simInput != "" {
		// Not waited for at shutdown: a read of standard input cannot be
		// interrupted, and the reader holds nothing that needs cleaning up.
		go func() {
			why, err := d.runSimInput(runCtx)
			switch {
			case runCtx.Err() != nil:
			case err != nil:
				errs <- fmt.Errorf("sim input: %w", err)
			case why != "":
				// What was typed before is decided and recorded first.
				sctx, scancel := context.WithTimeout(runCtx, 10*time.Second)
				if err := d.sim.Drain(sctx); err == nil {
					err = d.doors.Healthy(sctx)
				}
				scancel()
				stopAsked <- why
			}
		}()
	}
	d.notify(sdnotify.SdNotifyReady, "STATUS=deciding locally for "+strings.Join(d.doors.DoorIDs(), ", "))
	d.log.Info("portier running", "doors", d.doors.DoorIDs(), "driver", d.cfg.Hardware.Driver, "cache", d.db.Path(), "control", d.cfg.ControlSocket)
	goRun("watchdog", d.watchdog)

	select {
	case <-ctx.Done():
		d.log.Info("stopping")
	case why := <-stopAsked:
		d.log.Info("stopping: " + why)
	case err = <-errs:
		d.log.Error("stopping after a failure", "err", err)
	}
	d.notify(sdnotify.SdNotifyStopping)
	cancel()
	wg.Wait()
	// Every event source has stopped: write what an outbox failure held back.
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	if ferr := d.events.Flush(fctx); ferr != nil {
		err = errors.Join(err, fmt.Errorf("events: %w", ferr))
	}
	fcancel()
	// Controllers leave their relays off when Run returns; Halt covers every
	// other output (LEDs, buzzer) before the board is closed.
	if herr := d.board.Halt(); herr != nil {
		err = errors.Join(err, fmt.Errorf("halt outputs: %w", herr))
	}
	d.log.Info("stopped: every output is in its safe state")
	return err
}

func (d *daemon) openBoard() error {
	ids := make([]string, len(d.cfg.Doors))
	for i, dc := range d.cfg.Doors {
		ids[i] = dc.ID
	}
	hw, err := d.cfg.HardwareConfig()
	if err != nil {
		// The key file is broken (config.Check reported it, so run stops
		// after this): the board without cards still puts every output in
		// its safe state first.
		hw = d.cfg.Hardware
		hw.SimCards = nil
	}
	switch d.cfg.Hardware.Driver {
	case hal.DriverSim:
		b, err := sim.New(hw, ids, sim.Options{Logger: d.log.With("board", "sim")})
		if err != nil {
			return usageError{err}
		}
		// Real OSDP buses (real: true) fail the start as on the periph board.
		if err := b.OpenPorts(); err != nil {
			_ = b.Close()
			return err
		}
		d.board, d.sim = b, b
	case hal.DriverPeriph:
		b, err := hal.OpenPeriph(hw, ids, d.log.With("board", "periph"))
		if err != nil {
			return err
		}
		d.board = b
	case "":
		return usageError{errors.New("hardware.driver is not set in the config: use sim (simulated board) or periph (GPIO/SPI)")}
	default:
		return usageError{fmt.Errorf("hardware.driver %q: use sim or periph", d.cfg.Hardware.Driver)}
	}
	return d.board.Halt()
}

func (d *daemon) openCache(ctx context.Context) error {
	db, key, err := openCache(ctx, d.e, d.cfg)
	if err != nil {
		return usageError{err}
	}
	d.db, d.key = db, key
	// The demo doors of the embedded default config get the demo site's
	// people to let in.
	if db.View().Generation == 0 && d.cfg.Path() == "" {
		snap, err := sitefile.Read(bytes.NewReader(defaults.DemoSite), key)
		if err != nil {
			return fmt.Errorf("demo site: %w", err)
		}
		if _, err := db.ApplySnapshot(ctx, snap, sqlite.ApplyOptions{}); err != nil {
			return err
		}
		d.log.Info("empty cache: loaded the embedded demo site", "site", snap.Site.Name)
	}
	if db.View().Generation == 0 {
		d.log.Warn("the cache holds no site yet: every credential is unknown until a sync or import")
	}
	return nil
}

func (d *daemon) startClockGuard(ctx context.Context) error {
	synced := kernelClockSynchronised
	if d.cfg.ClockSyncCheck == "off" {
		synced = nil
	}
	d.guard = agent.NewClockGuard(agent.ClockGuardConfig{
		Now: d.e.now, Synchronised: synced, Store: metaLastGood{d.db},
		Events: d.events, Logger: d.log.With("component", "clock"),
	})
	return d.guard.Check(ctx)
}

func (d *daemon) buildControllers() error {
	dec := &agent.Decider{Cache: d.db, PINKey: d.key}
	if agent.ClockPolicy(d.cfg.ClockPolicy) == agent.ClockDenyScheduled {
		dec.UntrustedClock = d.guard.Untrusted
	}
	// The stale-cache policy asks the sync engine, which keeps the last
	// success in memory: no database read on the tap path.
	switch {
	case d.cfg.Salto.StaleAfter > 0 && d.engine != nil:
		dec.StaleAfter = d.cfg.Salto.StaleAfter
		dec.SyncedAt = d.engine.SyncedAt
	case d.cfg.Salto.StaleAfter > 0:
		d.log.Warn("salto.stale_after is set but this gateway does not sync from Salto KS: the stale-cache policy is off")
	}
	var cfgs []agent.ControllerConfig
	for _, dc := range d.cfg.Doors {
		w := d.cfg.Hardware.Doors[dc.ID] // config.Check saw a relay for every door
		cc := agent.ControllerConfig{
			Door: d.cfg.AgentDoor(dc), Relay: boardOutput{d.board, dc.ID, hal.Relay}, Decider: dec, Events: d.events, Enrolments: d.db, Cards: d.db,
			Logger: d.log, AccessTime: dc.AccessTime, HeldOpenTime: dc.HeldOpenTime,
			PINTimeout: dc.PINTimeout, TwoFactorWindow: dc.TwoFactorWindow, EasyOfficeMode: dc.EasyOfficeMode,
			Lockout: agent.LockoutPolicy{MaxFailures: dc.Lockout.MaxFailures, Window: dc.Lockout.Window, Duration: dc.Lockout.Duration, MaxDuration: dc.Lockout.MaxDuration},
		}
		if w.GreenLED != nil {
			cc.GreenLED = boardOutput{d.board, dc.ID, hal.GreenLED}
		}
		if w.RedLED != nil {
			cc.RedLED = boardOutput{d.board, dc.ID, hal.RedLED}
		}
		if w.Buzzer != nil {
			cc.Buzzer = boardOutput{d.board, dc.ID, hal.Buzzer}
		}
		if w.OSDP != nil {
			cc.Indicator, cc.Readers = boardIndicator{d.board, dc.ID}, []string{hal.OSDPReaderName}
		}
		cfgs = append(cfgs, cc)
	}
	doors, err := agent.NewDoors(cfgs...)
	if err != nil {
		return usageError{err}
	}
	d.doors = doors
	return nil
}

func (d *daemon) buildSync(ctx context.Context) error {
	if !d.cfg.Salto.Present() { // config.Check refused an incomplete one
		d.log.Info("no salto section: the cache changes only by `portier import`")
		return nil
	}
	client, err := newSaltoClient(d.cfg, d.log.With("component", "salto"))
	if err != nil {
		return usageError{err}
	}
	// A sync holds the whole site in memory for a moment (~90 MB for 100,000
	// users): the soft limit keeps the collector from doubling that, and the
	// daemon gives it back afterwards instead of keeping the peak as its
	// resident size between syncs (measured: 157 MB resident after a sync
	// without this, 24 MB with it; peak 206 MB without, 119 MB with).
	limitMemory(d.e)
	d.engine, err = newSyncEngine(ctx, d.cfg, d.db, client, d.log.With("component", "sync"), nil, debug.FreeOSMemory, d.events)
	if err != nil {
		return usageError{err}
	}
	// Access codes: finish or roll back what a crash interrupted, before any
	// new command can arrive.
	d.codes, err = newAccessCodes(d.cfg, d.db, d.key, client, d.log.With("component", "access_codes"),
		func(context.Context) error { d.engine.Trigger(); return nil }, nil)
	if err != nil {
		return usageError{err}
	}
	if resumed, err := d.codes.Resume(ctx); err != nil {
		d.log.Error("resume access codes", "err", err)
	} else if len(resumed) > 0 {
		d.log.Info("access codes resumed after a restart", "count", len(resumed))
	}
	return nil
}

// expireCodes removes access codes past their end, once a minute.
func (d *daemon) expireCodes(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if gone, err := d.codes.Expire(ctx); err != nil {
			d.log.Error("expire access codes", "err", err)
		} else if len(gone) > 0 {
			d.log.Info("expired access codes removed", "count", len(gone))
		}
	}
}

// inputStater is a board that can tell an input's level at start (a door may
// already be open when the gateway boots).
type inputStater interface {
	InputState(door string, in hal.Input) (bool, error)
}

func (d *daemon) reportInitialInputs() {
	is, ok := d.board.(inputStater)
	if !ok {
		return
	}
	for _, id := range d.doors.DoorIDs() {
		if d.cfg.Hardware.Doors[id].DoorContact == nil {
			continue
		}
		if open, err := is.InputState(id, hal.DoorContact); err == nil && open {
			if ctl, err := d.doors.Get(id); err == nil {
				ctl.SetInput(agent.DoorContact, true)
			}
		}
	}
}

// dispatch hands a board event to its door's controller without blocking the
// board.
func (d *daemon) dispatch(ev hal.Event) {
	ctl, err := d.doors.Get(ev.Door)
	if err != nil {
		d.log.Warn("event for an unknown door", "event", ev.String())
		return
	}
	switch ev.Kind {
	case hal.EventCredential:
		err = ctl.Present(ev.Credential)
	case hal.EventKey:
		err = ctl.PressKey(ev.Key)
	case hal.EventInput:
		err = ctl.SetInput(agent.DoorInput(ev.Input), ev.Active)
	case hal.EventReader:
		err = ctl.SetReader(ev.Reader)
	case hal.EventFault:
		d.log.Warn("device fault", "door", ev.Door, "device", ev.Device, "err", ev.Err)
		rerr := d.events.Record(context.Background(), agent.Event{Time: ev.At, Type: agent.EventDeviceFault, Door: ev.Door, Detail: ev.Device + ": " + ev.Err.Error()})
		if rerr != nil {
			d.log.Error("record device fault", "err", rerr)
		}
	}
	if err != nil {
		d.log.Error("door input lost", "door", ev.Door, "event", ev.String(), "err", err)
	}
}

// watchdog pings systemd only while every door loop answers: a wedged door
// gets the service restarted, which puts its relay in the safe state.
func (d *daemon) watchdog(ctx context.Context) error {
	every, err := sdnotify.SdWatchdogEnabled(false)
	if err != nil || every <= 0 {
		return nil
	}
	t := time.NewTicker(every / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, every/3)
		err := d.doors.Healthy(hctx)
		cancel()
		if err != nil {
			d.log.Error("health check failed: not feeding the watchdog", "err", err)
			continue
		}
		d.notify(sdnotify.SdNotifyWatchdog)
	}
}

func (d *daemon) notify(states ...string) {
	if _, err := sdnotify.SdNotify(false, strings.Join(states, "\n")); err != nil {
		d.log.Warn("sd_notify", "err", err)
	}
}

// simInputHelp is what portier run adds to the sim board's commands.
const simInputHelp = `  status                         the agent's status (as portier status prints it)
  quit                           stop the agent (so does the end of typed input, Ctrl-D)
  (make demo's issue and inspect are portier card issue|inspect in a second terminal)`

// runSimInput reads sim commands (a script or a person typing) and runs them
// on the simulated board, with status and quit besides the board's own. It
// returns why the agent should stop, "" for keep running: typed input (-)
// stops it at quit and at its end (Ctrl-D), a script only at quit; a script
// that just ends leaves the agent running, as a scripted scene's last state.
func (d *daemon) runSimInput(ctx context.Context) (string, error) {
	typed := d.simInput == "-"
	var r io.Reader = d.e.stdin
	if !typed {
		f, err := os.Open(d.simInput)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	extra := func(ctx context.Context, cmd string, args []string, w io.Writer) (bool, error) {
		switch cmd {
		case "status":
			if len(args) > 0 {
				return true, fmt.Errorf("%w: usage: status", sim.ErrUsage)
			}
			printStatus(w, controlBackend{d}.Status(ctx), d.e.now())
		case "quit":
			if len(args) > 0 {
				return true, fmt.Errorf("%w: usage: quit", sim.ErrUsage)
			}
			return true, sim.ErrStop
		case "issue", "inspect":
			// make demo's shortcuts: here they are the operator's own command.
			door, tag := "DOOR", "N"
			if len(args) > 0 {
				door = args[0]
			}
			if len(args) > 1 {
				tag = args[1]
			}
			example := "portier card " + cmd + " " + door
			if cmd == "issue" {
				example += " --tag-number " + tag
			}
			return true, fmt.Errorf("%w: %s is an operator's command here: run `%s` in a second terminal, then present the card (card %s blank)", sim.ErrUsage, cmd, example, door)
		case "help":
			if err := d.sim.Exec(ctx, "help", w); err != nil {
				return true, err
			}
			fmt.Fprintln(w, simInputHelp)
		default:
			return false, nil
		}
		return true, nil
	}
	err := d.sim.RunScript(ctx, r, d.e.stdout, sim.ScriptOptions{KeepGoing: typed, Extra: extra})
	switch {
	case errors.Is(err, sim.ErrStop):
		return "quit in the sim input", nil
	case err != nil:
		return "", err
	case typed:
		return "the sim input ended", nil
	}
	return "", nil
}

// boardOutput is one door output as the controller sees it.
type boardOutput struct {
	b    hal.Board
	door string
	out  hal.Output
}

func (o boardOutput) Set(on bool) error { return o.b.Set(o.door, o.out, on) }

// metaLastGood keeps the clock's last good time in the cache's meta table.
type metaLastGood struct{ db *sqlite.DB }

const metaClockLastGood = "clock.last_good"

func (m metaLastGood) LastGoodTime(ctx context.Context) (time.Time, error) {
	v, ok, err := m.db.Meta(ctx, metaClockLastGood)
	if err != nil || !ok {
		return time.Time{}, err
	}
	return time.Parse(time.RFC3339, v)
}

func (m metaLastGood) SetLastGoodTime(ctx context.Context, t time.Time) error {
	return m.db.SetMeta(ctx, map[string]string{metaClockLastGood: t.UTC().Format(time.RFC3339)})
}

// kernelClockSynchronised asks the kernel whether NTP has synchronised the
// clock (adjtimex reports TIME_ERROR while it has not).
func kernelClockSynchronised() (bool, error) {
	var tx syscall.Timex
	state, err := syscall.Adjtimex(&tx)
	if err != nil {
		return false, fmt.Errorf("adjtimex: %w", err)
	}
	const timeError = 5 // TIME_ERROR in <sys/timex.h>
	return state != timeError, nil
}
