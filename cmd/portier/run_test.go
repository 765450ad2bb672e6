package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

// runConfig is a one-door gateway on the sim board with short timings, so
// the real binary can be driven end to end.
const runConfig = `gateway_id: e2e
state_dir: %[1]s
doors:
  - id: front
    name: Front door
    mode: card_or_pin
    salto_locks: [7c1e4a52-0000-4000-8000-000000000001]
    access_time: %[2]s
    held_open_time: 600ms
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
`

// gateway is a running `portier run` under test.
type gateway struct {
	t      *testing.T
	dir    string
	cfg    string
	env    []string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	notify *net.UnixConn
	events *bufio.Scanner
	stderr *strings.Builder
	stdout *strings.Builder // read only once the process has exited
	// tee also gets the process's standard output (the answers to sim
	// commands) as it comes; nil: none.
	tee io.Writer
	// simInput is run's --sim-input; "" means - (standard input, g.stdin).
	simInput string
}

// newGateway writes the config, imports the demo site and returns an
// unstarted gateway.
func newGateway(t *testing.T, accessTime string, extraConfig ...string) *gateway {
	t.Helper()
	return newGatewayConfig(t, func(dir string) string {
		return fmt.Sprintf(runConfig, dir, accessTime) + strings.Join(extraConfig, "")
	})
}

// newGatewayConfig is newGateway with the whole config, made for the
// gateway's directory.
func newGatewayConfig(t *testing.T, config func(dir string) string) *gateway {
	t.Helper()
	dir := t.TempDir()
	g := &gateway{t: t, dir: dir, cfg: filepath.Join(dir, "portier.yaml")}
	require.NoError(t, os.WriteFile(g.cfg, []byte(config(dir)), 0o600))
	g.env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	_, errOut, code := runPortier(t, g.env, "import", "--config", g.cfg, demoSite)
	require.Equal(t, 0, code, errOut)
	return g
}

// start runs the daemon and waits for READY=1 on a real notify socket.
func (g *gateway) start(extraEnv ...string) {
	t := g.t
	t.Helper()
	sock := filepath.Join(g.dir, "notify.sock")
	os.Remove(sock)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	require.NoError(t, err)
	g.notify = conn
	t.Cleanup(func() { conn.Close() })
	simInput := g.simInput
	if simInput == "" {
		simInput = "-"
	}
	g.cmd = exec.Command(portierBin, "run", "--config", g.cfg, "--sim-input", simInput)
	g.cmd.Env = append(append(append([]string{}, g.env...), "NOTIFY_SOCKET="+sock), extraEnv...)
	g.stdin, err = g.cmd.StdinPipe()
	require.NoError(t, err)
	g.stderr, g.stdout = &strings.Builder{}, &strings.Builder{}
	g.cmd.Stderr, g.cmd.Stdout = g.stderr, g.stdout
	if g.tee != nil {
		g.cmd.Stdout = io.MultiWriter(g.stdout, g.tee)
	}
	require.NoError(t, g.cmd.Start())
	t.Cleanup(func() {
		if g.cmd.ProcessState == nil {
			g.cmd.Process.Kill()
			g.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("portier run stderr:\n%s", g.stderr.String())
		}
	})
	g.waitNotify("READY=1")
}

// waitNotify reads sd_notify datagrams until one contains want.
func (g *gateway) waitNotify(want string) {
	g.t.Helper()
	buf := make([]byte, 4096)
	require.NoError(g.t, g.notify.SetReadDeadline(time.Now().Add(30*time.Second)))
	for {
		n, err := g.notify.Read(buf)
		require.NoError(g.t, err, "waiting for %s", want)
		if strings.Contains(string(buf[:n]), want) {
			return
		}
	}
}

// sim types a sim command into the running board.
func (g *gateway) sim(line string) {
	_, err := io.WriteString(g.stdin, line+"\n")
	require.NoError(g.t, err)
}

// follow starts `portier events --follow` from the first recorded event.
func (g *gateway) follow() {
	t := g.t
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, portierBin, "events", "--config", g.cfg, "--follow", "--json", "--limit", "100000", "--poll", "10ms")
	cmd.Env = g.env
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	g.events = bufio.NewScanner(out)
}

// waitEvent reads events until one of type typ arrives and returns it. It
// fails only when no event at all arrived for 60 s (a busy machine makes
// the wait long, not the stream silent).
func (g *gateway) waitEvent(typ agent.EventType) agent.Event {
	g.t.Helper()
	return g.waitAny(typ)
}

// waitAny reads events until one of the types arrives and returns it.
func (g *gateway) waitAny(types ...agent.EventType) agent.Event {
	g.t.Helper()
	found := make(chan agent.Event, 1)
	seen := make(chan struct{}, 1)
	go func() {
		defer close(found)
		for g.events.Scan() {
			var e agent.Event
			if json.Unmarshal(g.events.Bytes(), &e) == nil && slices.Contains(types, e.Type) {
				found <- e
				return
			}
			select {
			case seen <- struct{}{}:
			default:
			}
		}
	}()
	quiet := time.NewTimer(60 * time.Second)
	defer quiet.Stop()
	for {
		select {
		case e, ok := <-found:
			require.True(g.t, ok, "the event stream ended before %v", types)
			return e
		case <-seen:
			quiet.Reset(60 * time.Second)
		case <-quiet.C:
			g.t.Fatalf("no %v event: no event at all for 60s", types)
		}
	}
}

// latch returns the sim board's output levels as the latch file holds them.
func (g *gateway) latch() map[string]map[string]bool {
	g.t.Helper()
	data, err := os.ReadFile(filepath.Join(g.dir, "latch.json"))
	require.NoError(g.t, err)
	var levels map[string]map[string]bool
	require.NoError(g.t, json.Unmarshal(data, &levels))
	return levels
}

func (g *gateway) signal(sig syscall.Signal) int {
	g.t.Helper()
	require.NoError(g.t, g.cmd.Process.Signal(sig))
	err := g.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	require.NoError(g.t, err)
	return 0
}

// exit waits for the daemon to stop by itself and returns its exit status.
// Stopping is one step with nothing to watch in between: 60 s without an
// exit is a daemon that did not stop.
func (g *gateway) exit() int {
	g.t.Helper()
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		require.NoError(g.t, err)
		return 0
	case <-time.After(60 * time.Second):
		g.cmd.Process.Kill()
		<-done
		g.t.Fatalf("portier run did not stop within 60 s")
	}
	return -1
}

func TestRunTapToRelayAndEvents(t *testing.T) {
	g := newGateway(t, "300ms")
	g.start()
	g.follow()
	g.waitEvent(agent.EventControllerStarted)

	// Forced open (no grant, no exit press), held open, closed.
	g.sim("open front")
	g.waitEvent(agent.EventForcedOpen)
	g.waitEvent(agent.EventHeldOpenPreAlarm)
	g.waitEvent(agent.EventHeldOpen)
	g.sim("close front")
	g.waitEvent(agent.EventHeldOpenCleared)

	g.sim("tap front 04:A1:B2:C3:D4:E5:F6") // Ada's enrolled card
	granted := g.waitEvent(agent.EventAccessGranted)
	assert.Equal(t, "front", granted.Door)
	assert.Equal(t, "Ada Lovelace", granted.User.Name)
	assert.Equal(t, "uid:7 bytes …E5F6", granted.Credential)
	on := g.waitEvent(agent.EventRelayOn)
	off := g.waitEvent(agent.EventRelayOff)
	pulse := off.Time.Sub(on.Time)
	assert.GreaterOrEqual(t, pulse, 300*time.Millisecond, "the relay stays on for the access time")
	assert.Less(t, pulse, 5*time.Second, "…and goes off at its deadline")
	assert.Greater(t, off.Seq, granted.Seq)

	g.sim("keys front 739146#")
	denied := g.waitEvent(agent.EventAccessDenied)
	assert.Equal(t, agent.ReasonUnknownCredential, denied.Reason)
	assert.Equal(t, "pin:******", denied.Credential)

	// An exit press opens without a forced-open alarm.
	g.sim("exit front")
	g.waitEvent(agent.EventExitPressed)
	g.sim("open front")
	opened := g.waitEvent(agent.EventDoorOpened)
	assert.Equal(t, "front", opened.Door)

	assert.Equal(t, 0, g.signal(syscall.SIGTERM))
	assert.False(t, g.latch()["front"]["relay"])
	assert.NotContains(t, g.stderr.String(), "739146", "a typed PIN reached the log")
}

func TestRunWrongPINLockout(t *testing.T) {
	g := newGateway(t, "300ms")
	g.start()
	g.follow()
	for range 5 {
		g.sim("keys front 123123#")
		g.waitEvent(agent.EventAccessDenied)
	}
	started := g.waitEvent(agent.EventLockoutStarted)
	assert.Equal(t, "front", started.Door)
	g.sim("keys front 482915#") // Ada's right PIN, but PIN entry is locked out
	d := g.waitEvent(agent.EventAccessDenied)
	assert.Equal(t, agent.ReasonLockedOut, d.Reason)
	g.sim("tap front 04:A1:B2:C3:D4:E5:F6") // cards still work
	assert.Equal(t, agent.ReasonGranted, g.waitEvent(agent.EventAccessGranted).Reason)
	assert.Equal(t, 0, g.signal(syscall.SIGTERM))
}

func TestRunSIGTERMMidGrantLeavesRelayOff(t *testing.T) {
	g := newGateway(t, "10m")
	g.start()
	g.follow()
	g.sim("tap front 04:A1:B2:C3:D4:E5:F6")
	g.waitEvent(agent.EventRelayOn)
	assert.True(t, g.latch()["front"]["relay"], "the relay is energised mid-grant")
	assert.Equal(t, 0, g.signal(syscall.SIGTERM))
	g.waitNotify("STOPPING=1")
	assert.False(t, g.latch()["front"]["relay"], "SIGTERM put the relay in its safe state")
	assert.Contains(t, g.stderr.String(), "every output is in its safe state")
}

func TestRunKilledMidGrantRestartsWithRelayOff(t *testing.T) {
	g := newGateway(t, "10m")
	g.start()
	g.follow()
	g.sim("tap front 04:A1:B2:C3:D4:E5:F6")
	granted := g.waitEvent(agent.EventAccessGranted)
	g.waitEvent(agent.EventRelayOn)
	require.NoError(t, g.cmd.Process.Kill()) // SIGKILL: no cleanup at all
	g.cmd.Wait()
	assert.True(t, g.latch()["front"]["relay"], "a killed process leaves the line energised")

	g.start()
	assert.False(t, g.latch()["front"]["relay"], "the restarted agent drove the relay off before it was ready")
	out, _, code := runPortier(t, g.env, "events", "--config", g.cfg, "--json", "--limit", "1000")
	require.Equal(t, 0, code)
	assert.Contains(t, out, granted.ID, "the grant recorded before the kill is still in the outbox")
	assert.Equal(t, 0, g.signal(syscall.SIGTERM))
}

func TestRunControlSocket(t *testing.T) {
	g := newGateway(t, "300ms")
	g.start()
	g.follow()

	out, errOut, code := runPortier(t, g.env, "status", "--config", g.cfg, "--json")
	require.Equal(t, 0, code, errOut)
	var st struct {
		GatewayID string             `json:"gateway_id"`
		Doors     []agent.DoorStatus `json:"doors"`
		Site      agent.Site         `json:"site"`
		Storage   struct {
			FreeMB  int64 `json:"free_mb"`
			TotalMB int64 `json:"total_mb"`
		} `json:"storage"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, "e2e", st.GatewayID)
	assert.Positive(t, st.Storage.TotalMB, "the disk that holds the database")
	assert.LessOrEqual(t, st.Storage.FreeMB, st.Storage.TotalMB)
	require.Len(t, st.Doors, 1)
	assert.True(t, st.Doors[0].Locked)
	assert.Equal(t, "Hive Coworking Berlin", st.Site.Name)
	out, _, code = runPortier(t, g.env, "status", "--config", g.cfg)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "door front")
	assert.Regexp(t, `disk: +[0-9.]+ [MG]B free of [0-9.]+ [MG]B`, out)
	assert.Contains(t, out, "locked, closed")

	out, errOut, code = runPortier(t, g.env, "unlock", "front", "--config", g.cfg)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "unlock front: done")
	remote := g.waitEvent(agent.EventRemoteUnlock)
	assert.Regexp(t, `^local-[0-9a-f]{16}$`, remote.CommandID)
	assert.Equal(t, fmt.Sprintf("local:uid=%d", os.Getuid()), remote.Actor)
	g.waitEvent(agent.EventRelayOn)
	g.waitEvent(agent.EventRelayOff)

	_, errOut, code = runPortier(t, g.env, "unlock", "--config", g.cfg, "back")
	assert.Equal(t, 2, code, "an unknown door is the operator's mistake")
	assert.Contains(t, errOut, `no door "back"`)

	_, _, code = runPortier(t, g.env, "lockdown", "--config", g.cfg, "front", "on")
	require.Equal(t, 0, code)
	g.waitEvent(agent.EventLockdownOn)
	_, errOut, code = runPortier(t, g.env, "unlock", "--config", g.cfg, "front")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "refused: door_lockdown")
	_, _, code = runPortier(t, g.env, "lockdown", "--config", g.cfg, "front", "off")
	require.Equal(t, 0, code)

	// Enrol an unknown card to Ada's tag number (a 24/7 resident, so the
	// test does not depend on the time of day), then it opens for her.
	enrol := exec.Command(portierBin, "enroll", "front", "--config", g.cfg, "--tag-number", "02301234", "--json")
	enrol.Env = g.env
	enrolOut := &strings.Builder{}
	enrol.Stdout = enrolOut
	require.NoError(t, enrol.Start())
	g.waitEvent(agent.EventEnrolmentArmed)
	g.sim("tap front 0A:0B:0C:0D")
	require.NoError(t, enrol.Wait())
	assert.Contains(t, enrolOut.String(), `"outcome":"enrolled"`)
	assert.Contains(t, enrolOut.String(), "Ada Lovelace")
	g.waitEvent(agent.EventEnrolled)
	g.sim("tap front 0A:0B:0C:0D")
	granted := g.waitEvent(agent.EventAccessGranted)
	assert.Equal(t, "Ada Lovelace", granted.User.Name)

	_, errOut, code = runPortier(t, g.env, "sync-now", "--config", g.cfg)
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "no salto: section")

	assert.Equal(t, 0, g.signal(syscall.SIGTERM))
	_, errOut, code = runPortier(t, g.env, "status", "--config", g.cfg)
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "portier is not running")
}

func TestRunWatchdog(t *testing.T) {
	g := newGateway(t, "300ms")
	g.start("WATCHDOG_USEC=300000")
	g.waitNotify("WATCHDOG=1")
	assert.Equal(t, 0, g.signal(syscall.SIGTERM))
}

func TestRunRefusesASecondInstance(t *testing.T) {
	g := newGateway(t, "300ms")
	g.start()
	_, errOut, code := runPortier(t, g.env, "run", "--config", g.cfg)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "another portier is already running")
	assert.Equal(t, 0, g.signal(syscall.SIGTERM))
}

func TestRunConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "portier.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("state_dir: "+dir+"\ndoors:\n  - id: front\n    mode: card\n    salto_locks: [0b5e0000-0000-4000-8000-000000000001]\n"), 0o600))
	_, errOut, code := runPortier(t, []string{"HOME=" + dir}, "run", "--config", cfg)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "hardware.driver is not set")
}
