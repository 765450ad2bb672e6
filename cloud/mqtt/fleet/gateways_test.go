//go:build fleet

package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/sqlite"
)

// site is the site id of every gateway of the fleet.
const site = "fleet"

// gateway is one gateway of the fleet, in-process or a portier process.
type gateway interface {
	ID() string
	// Link reports the MQTT link (connected, broker).
	Link(ctx context.Context) (mqtt.LinkStatus, error)
	// Depth is the outbox depth.
	Depth(ctx context.Context) (int, error)
	// Produce records one event (or starts one, for a process).
	Produce(ctx context.Context) error
	// Flip changes the door state a dashboard reads as retained.
	Flip()
	// Want is the retained state a dashboard must find: door → check.
	Want() map[string]func(mqtt.DoorStatePayload) bool
	// Recorded is every event the gateway recorded: id → seq.
	Recorded(ctx context.Context) (map[string]int64, error)
}

// simDoors are the doors of an in-process gateway: the front door's contact
// and the back door's lockdown flip on command.
type simDoors struct {
	mu       sync.Mutex
	open     bool
	lockdown bool
}

func (d *simDoors) DoorIDs() []string { return []string{"front", "back"} }

func (d *simDoors) DoorStatus(door string) (agent.DoorStatus, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := agent.DoorStatus{Door: door, Running: true, Locked: true, Override: agent.OverrideNone, OfficeMode: agent.OfficeOff}
	switch door {
	case "front":
		st.DoorOpen = d.open
	case "back":
		if d.lockdown {
			st.Override = agent.OverrideLockdown
		}
	default:
		return agent.DoorStatus{}, false
	}
	return st, true
}

var errNoDoorCommands = errors.New("fleet harness: no door commands")

func (d *simDoors) Unlock(context.Context, string, agent.RemoteUnlock) (agent.CommandResult, error) {
	return agent.CommandResult{}, errNoDoorCommands
}

func (d *simDoors) Lockdown(context.Context, string, agent.LockdownCommand) (agent.CommandResult, error) {
	return agent.CommandResult{}, errNoDoorCommands
}

func (d *simDoors) OfficeMode(context.Context, string, agent.OfficeModeCommand) (agent.CommandResult, error) {
	return agent.CommandResult{}, errNoDoorCommands
}

func (d *simDoors) ArmEnrolment(context.Context, string, agent.EnrolCommand) (agent.CommandResult, <-chan agent.EnrolResult, error) {
	return agent.CommandResult{}, nil, errNoDoorCommands
}

// meter adapts the outbox's stats to mqtt.OutboxMeter, as cmd/portier does.
type meter struct{ db *sqlite.DB }

func (m meter) OutboxDepth(ctx context.Context) (int, time.Time, error) {
	st, err := m.db.OutboxStats(ctx)
	return st.Depth, st.Oldest, err
}

// linkGateway is the real MQTT link in this process over its own SQLite
// database, with the production defaults (backoff, timeouts, in-flight
// window).
type linkGateway struct {
	id    string
	db    *sqlite.DB
	doors *simDoors
	link  *mqtt.Link
	stop  context.CancelFunc
	done  chan error
}

func startLinkGateway(t testing.TB, dir, id string, brokers []string, log *slog.Logger) *linkGateway {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, id+".db"), sqlite.Options{})
	require.NoError(t, err)
	g := &linkGateway{id: id, db: db, doors: &simDoors{}, done: make(chan error, 1)}
	g.link, err = mqtt.New(mqtt.Config{
		Brokers: brokers,
		Topics:  mqtt.Topics{Site: site, Gateway: id},
		Outbox:  db, Meter: meter{db}, Events: db, CommandLog: db, Doors: g.doors,
		Logger: log.With("gateway", id),
	})
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	g.stop = cancel
	go func() { g.done <- g.link.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		<-g.done
		db.Close()
	})
	return g
}

func (g *linkGateway) ID() string { return g.id }

func (g *linkGateway) Link(context.Context) (mqtt.LinkStatus, error) { return g.link.Status(), nil }

func (g *linkGateway) Depth(ctx context.Context) (int, error) {
	st, err := g.db.OutboxStats(ctx)
	return st.Depth, err
}

func accessEvent() agent.Event {
	return agent.Event{Type: agent.EventAccessGranted, Door: "front", Reason: agent.ReasonGranted, Kind: "card",
		Credential: "card:…3f9a", User: &agent.UserRef{ID: "u1", Name: "Ada"}}
}

func (g *linkGateway) Produce(ctx context.Context) error { return g.db.Record(ctx, accessEvent()) }

// ProduceN records n events in one transaction.
func (g *linkGateway) ProduceN(ctx context.Context, n int) error {
	evs := make([]agent.Event, n)
	for i := range evs {
		evs[i] = accessEvent()
	}
	return g.db.RecordAll(ctx, evs)
}

func (g *linkGateway) Flip() {
	g.doors.mu.Lock()
	g.doors.open = !g.doors.open
	g.doors.lockdown = !g.doors.lockdown
	g.doors.mu.Unlock()
}

func (g *linkGateway) Want() map[string]func(mqtt.DoorStatePayload) bool {
	g.doors.mu.Lock()
	open, lockdown := g.doors.open, g.doors.lockdown
	g.doors.mu.Unlock()
	override := agent.OverrideNone
	if lockdown {
		override = agent.OverrideLockdown
	}
	return map[string]func(mqtt.DoorStatePayload) bool{
		"front": func(p mqtt.DoorStatePayload) bool { return p.DoorOpen == open },
		"back":  func(p mqtt.DoorStatePayload) bool { return p.Override == override },
	}
}

func (g *linkGateway) Recorded(ctx context.Context) (map[string]int64, error) {
	return recorded(ctx, g.db)
}

// recorded lists every event of a gateway's database, delivered or not.
func recorded(ctx context.Context, db *sqlite.DB) (map[string]int64, error) {
	st, err := db.OutboxStats(ctx)
	if err != nil {
		return nil, err
	}
	if st.LastSeq > sqlite.KeepSent {
		return nil, fmt.Errorf("%d events: more than the local history keeps (%d), the check would miss some", st.LastSeq, sqlite.KeepSent)
	}
	evs, err := db.Events(ctx, 0, int(st.LastSeq)+1)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(evs))
	for _, e := range evs {
		out[e.ID] = e.Seq
	}
	if int64(len(out)) != st.LastSeq {
		return nil, fmt.Errorf("%d events in the database, last seq %d", len(out), st.LastSeq)
	}
	return out, nil
}

// procConfig is a one-door gateway on the sim board for `portier run`
// (the end-to-end tests' board), with the fleet's brokers.
const procConfig = `gateway_id: %[2]s
state_dir: %[1]s
clock_sync_check: "off"
doors:
  - id: front
    name: Front door
    mode: card_or_pin
    salto_locks: [7c1e4a52-0000-4000-8000-000000000001]
    access_time: 300ms
    held_open_time: 1h
hardware:
  driver: sim
  sim_latch_file: %[1]s/latch.json
  doors:
    front:
      mfrc522: {spi: SPI0.0}
      keypad:
        rows: [GPIO5, GPIO6, GPIO12, GPIO13]
        cols: [GPIO19, GPIO16, GPIO26]
      relay: {pin: GPIO17, active_low: true}
      green_led: {pin: GPIO27}
      red_led: {pin: GPIO22}
      door_contact: {pin: GPIO4, switch: nc}
      exit_button: {pin: GPIO3, switch: "no"}
mqtt:
  broker: %[3]s
  brokers: [%[4]s]
  site_id: ` + site + `
`

// procGateway is a real `portier run` process on the simulated board,
// driven through its --sim-input.
type procGateway struct {
	id, dir, cfg, bin string
	cmd               *exec.Cmd
	stdin             io.WriteCloser
	mu                sync.Mutex
	open              bool
}

func startProcGateway(t testing.TB, bin, dir, id string, brokers []string) *procGateway {
	t.Helper()
	dir = filepath.Join(dir, id)
	require.NoError(t, os.MkdirAll(dir, 0o700))
	g := &procGateway{id: id, dir: dir, cfg: filepath.Join(dir, "portier.yaml"), bin: bin}
	cfg := fmt.Sprintf(procConfig, dir, id, brokers[0], strings.Join(brokers[1:], ", "))
	require.NoError(t, os.WriteFile(g.cfg, []byte(cfg), 0o600))
	out, err := g.portier("import", "--config", g.cfg, "../../../cmd/portier/defaults/demo-site.json")
	require.NoError(t, err, "portier import: %s", out)
	g.cmd = exec.Command(bin, "run", "--config", g.cfg, "--sim-input", "-")
	g.cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	g.stdin, err = g.cmd.StdinPipe()
	require.NoError(t, err)
	logf, err := os.Create(filepath.Join(dir, "stderr.log"))
	require.NoError(t, err)
	g.cmd.Stderr = logf
	require.NoError(t, g.cmd.Start())
	t.Cleanup(func() {
		if g.cmd.ProcessState == nil {
			g.cmd.Process.Signal(syscall.SIGTERM)
			g.cmd.Wait()
		}
		logf.Close()
	})
	return g
}

func (g *procGateway) portier(args ...string) ([]byte, error) {
	cmd := exec.Command(g.bin, args...)
	cmd.Env = []string{"HOME=" + g.dir, "PATH=" + os.Getenv("PATH")}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

func (g *procGateway) ID() string { return g.id }

func (g *procGateway) status() (struct {
	Outbox sqlite.OutboxStats `json:"outbox"`
	MQTT   *mqtt.LinkStatus   `json:"mqtt"`
}, error) {
	var st struct {
		Outbox sqlite.OutboxStats `json:"outbox"`
		MQTT   *mqtt.LinkStatus   `json:"mqtt"`
	}
	out, err := g.portier("status", "--config", g.cfg, "--json")
	if err != nil {
		return st, fmt.Errorf("portier status: %w: %s", err, out)
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("portier status: %w", err)
	}
	if st.MQTT == nil {
		return st, errors.New("portier status: no mqtt link")
	}
	return st, nil
}

func (g *procGateway) Link(context.Context) (mqtt.LinkStatus, error) {
	st, err := g.status()
	if err != nil {
		return mqtt.LinkStatus{}, err
	}
	return *st.MQTT, nil
}

func (g *procGateway) Depth(context.Context) (int, error) {
	st, err := g.status()
	return st.Outbox.Depth, err
}

// Produce taps the demo site's card at the front door: an access_granted
// and the relay events it brings.
func (g *procGateway) Produce(context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, err := io.WriteString(g.stdin, "tap front 04:A1:B2:C3:D4:E5:F6\n")
	return err
}

func (g *procGateway) Flip() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = !g.open
	line := "close front\n"
	if g.open {
		line = "open front\n"
	}
	io.WriteString(g.stdin, line)
}

func (g *procGateway) Want() map[string]func(mqtt.DoorStatePayload) bool {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	return map[string]func(mqtt.DoorStatePayload) bool{
		"front": func(p mqtt.DoorStatePayload) bool { return p.DoorOpen == open },
	}
}

func (g *procGateway) Recorded(ctx context.Context) (map[string]int64, error) {
	db, err := sqlite.Open(ctx, filepath.Join(g.dir, "portier.db"), sqlite.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return recorded(ctx, db)
}

// buildPortier builds the portier binary (or takes FLEET_PORTIER).
func buildPortier(t testing.TB, dir string) string {
	t.Helper()
	if bin := os.Getenv("FLEET_PORTIER"); bin != "" {
		abs, err := filepath.Abs(bin)
		require.NoError(t, err)
		return abs
	}
	bin := filepath.Join(dir, "portier")
	cmd := exec.Command("go", "build", "-tags", "sqlite_omit_load_extension", "-o", bin, "../../../cmd/portier")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}
