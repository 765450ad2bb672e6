package main_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/cloud/mqtt/mqtttest"
	"github.com/portier-io/portier/cmd/portier/config"
)

// withOSDPStudio adds to a runConfig gateway the door studio (card and PIN,
// the demo site's Studio lock) with an OSDP reader on a simulated RS-485 bus,
// its key file in the state directory (not there yet: the reader waits for
// its install).
func withOSDPStudio(t *testing.T, cfg []byte) []byte {
	t.Helper()
	s := string(cfg)
	require.Contains(t, s, "hardware:\n")
	s = strings.Replace(s, "hardware:\n", `  - id: studio
    mode: card_and_pin
    salto_locks: [7c1e4a52-0000-4000-8000-000000000002]
hardware:
  osdp_buses:
    - {name: rs485-0, port: /dev/ttyUSB0, baud: 115200}
`, 1)
	exit := "      exit_button: {pin: GPIO3, switch: \"no\"}\n"
	require.Contains(t, s, exit)
	s = strings.Replace(s, exit, exit+`    studio:
      osdp: {bus: rs485-0, address: 1}
      relay: {pin: GPIO24}
`, 1)
	return []byte(s)
}

// lineBuffer collects a process's output; waitLine waits for a line that
// contains want, failing only when nothing was written for 30 s.
type lineBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	moved chan struct{}
}

func newLineBuffer() *lineBuffer { return &lineBuffer{moved: make(chan struct{}, 1)} }

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.moved <- struct{}{}:
	default:
	}
	return l.b.Write(p)
}

func (l *lineBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

// TestOSDPReaderEndToEnd runs the real binary with an OSDP reader on the sim
// board and an MQTT broker: the reader is refused until `portier reader
// install` moves it from its install key to a new one (stored 0600), then a
// member's card and PIN through it are decided and granted with the
// reader's LED following; `portier status` shows it; unplugged it goes
// reader_offline on MQTT and comes back reader_online; every message holds
// to the MQTT contract.
func TestOSDPReaderEndToEnd(t *testing.T) {
	srv, err := mqtttest.Start(mqtttest.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })
	tp := mqtt.Topics{Site: "site-osdp", Gateway: "e2e"}.WithDefaults()
	c := captureContract(t, srv, tp)

	g := newGateway(t, "300ms", fmt.Sprintf(`clock_sync_check: "off"
mqtt:
  broker: tcp://%s
  site_id: site-osdp
  telemetry_interval: 1s
  home_assistant: {enabled: true}
`, srv.Addr()))
	cfg, err := os.ReadFile(g.cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(g.cfg, withOSDPStudio(t, cfg), 0o600))
	out := newLineBuffer()
	g.tee = out
	g.start()
	g.follow()
	refused := g.waitEvent(agent.EventReaderRefused)
	assert.Equal(t, "studio", refused.Door)
	assert.Contains(t, refused.Detail, "portier reader install --door studio")

	stdout, stderr, code := runPortier(t, g.env, "reader", "install", "--config", g.cfg, "--door", "studio")
	require.Equal(t, 0, code, "%s\n%s", stdout, stderr)
	for _, step := range []string{"generated a new 128-bit key (crypto/rand)", "(mode 0600) before telling the reader",
		"sending it the new key (osdp_KEYSET)", "the reader proved the new key", "Done: door studio's reader has a key of its own"} {
		assert.Contains(t, stdout, step)
	}
	keyFile := filepath.Join(g.dir, "osdp", "studio.key")
	st, err := os.Stat(keyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	raw, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	key, err := config.ParseOSDPKey(string(raw))
	require.NoError(t, err)
	// The install is recorded (the reader comes online meanwhile, in either
	// order): who, which reader, where; never its key.
	ev := g.waitAll(agent.EventReaderInstalled, agent.EventReaderOnline)
	assert.Contains(t, ev[agent.EventReaderOnline].Detail, "secure channel established")
	installed := ev[agent.EventReaderInstalled]
	actor := fmt.Sprintf("local:uid=%d", os.Getuid())
	assertReaderEvent(t, installed, key, actor, `^command local-[0-9a-f]{16} by `+actor+`: reader vendor 02-50-54 model 1 v1 serial [0-9A-F]{8} firmware 2\.2\.0 at OSDP rs485-0 \(simulated line\) address 1: moved from the install key to a key of its own, proven by a new secure session$`)
	_, stderr, code = runPortier(t, g.env, "reader", "install", "--config", g.cfg, "--door", "studio")
	assert.Equal(t, 3, code)
	assert.Contains(t, stderr, "online under its own key already: nothing to install")
	assertReaderEvent(t, g.waitEvent(agent.EventReaderSetupFailed), key, actor, `: install: reader vendor 02-50-54 .* address 1: door studio's reader is online under its own key already: nothing to install$`)

	// Ada's fob, then her PIN, through the reader.
	g.sim("osdp studio card H10301 12 1001")
	w := g.waitEvent(agent.EventAwaitingPIN)
	assert.Equal(t, "studio", w.Door)
	assert.Equal(t, agent.KindWiegand, w.Kind)
	g.sim("osdp studio keys 482915#")
	granted := g.waitEvent(agent.EventAccessGranted)
	assert.Equal(t, "studio", granted.Door)
	assert.Equal(t, "Ada Lovelace", granted.User.Name)
	// The reader's LED followed the decision: green while unlocked.
	seen := 0
	for {
		g.sim("osdp studio show")
		lines := waitNewLine(t, out, seen)
		seen = len(lines)
		if strings.Contains(lines[len(lines)-1], "led=green") || strings.Contains(strings.Join(lines, "\n"), "led=green") {
			break
		}
		require.Less(t, seen, 1000, "the reader's LED never turned green: %s", lines[len(lines)-1])
	}

	status, stderr, code := runPortier(t, g.env, "status", "--config", g.cfg)
	require.Equal(t, 0, code, stderr)
	assert.Regexp(t, `reader studio/osdp online, secure channel since .*; vendor 02-50-54 model 1 v1 serial [0-9A-F]{8} firmware 2\.2\.0; 2 outputs; OSDP rs485-0 \(simulated line\) address 1; \d+ polls`, status)

	// The installer tests the reader's outputs, then moves it to another
	// address (for a second reader on the bus).
	stdout, stderr, code = runPortier(t, g.env, "reader", "output", "--config", g.cfg, "--door", "studio", "--output", "1", "--on")
	require.Equal(t, 0, code, "%s\n%s", stdout, stderr)
	assert.Contains(t, stdout, "Door studio's reader switched its output 1 on.")
	assertReaderEvent(t, g.waitEvent(agent.EventReaderOutputTested), key, actor, `by `+actor+`: reader vendor 02-50-54 .* address 1: output 1 on$`)
	g.sim("osdp studio show")
	lines := waitNewLine(t, out, seen)
	seen = len(lines)
	assert.Contains(t, lines[len(lines)-1], "reader_outputs=off,on")
	stdout, stderr, code = runPortier(t, g.env, "reader", "output", "--config", g.cfg, "--door", "studio", "--output", "0", "--pulse", "1.5s")
	require.Equal(t, 0, code, "%s\n%s", stdout, stderr)
	assertReaderEvent(t, g.waitEvent(agent.EventReaderOutputTested), key, actor, `: output 0 pulsed for 1\.5s$`)
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"output", "--output", "2", "--on"}, 3, "has 2 outputs, numbered 0–1: it has no output 2"},
		{[]string{"output", "--output", "0", "--pulse", "20ms"}, 3, "outside 100ms"},
		{[]string{"output", "--output", "0"}, 2, "Usage"},
		{[]string{"output", "--output", "0", "--on", "--off"}, 2, "Usage"},
		{[]string{"set-address", "--address", "200"}, 3, "address 200 is outside 0–126"},
		{[]string{"set-address", "--address", "5", "--baud", "4800"}, 3, "4800 baud is not an OSDP line rate"},
		{[]string{"set-address", "--address", "5", "--baud", "9600"}, 3, "bus rs485-0 runs at 115200 baud"},
		{[]string{"set-address"}, 2, "Usage"},
		{[]string{"set-address", "--door", "front", "--address", "5"}, 2, "door front has no OSDP reader"},
	} {
		args := append([]string{"reader"}, tc.args[0], "--config", g.cfg)
		if !slices.Contains(tc.args, "--door") {
			args = append(args, "--door", "studio")
		}
		_, stderr, code := runPortier(t, g.env, append(args, tc.args[1:]...)...)
		assert.Equal(t, tc.code, code, "%v: %s", tc.args, stderr)
		assert.Contains(t, stderr, tc.err, "%v", tc.args)
		if tc.code == 3 { // the running portier tried, and recorded the failure
			failed := g.waitEvent(agent.EventReaderSetupFailed)
			assertReaderEvent(t, failed, key, actor, `: (output: output|set-address to) `)
			assert.Contains(t, failed.Detail, tc.err, "%v", tc.args)
			assert.NotContains(t, failed.Detail, "gave up", "%v: the installer waited for the answer", tc.args)
		}
	}
	stdout, stderr, code = runPortier(t, g.env, "reader", "set-address", "--config", g.cfg, "--door", "studio", "--address", "5")
	require.Equal(t, 0, code, "%s\n%s", stdout, stderr)
	for _, step := range []string{"sending it osdp_COMSET for address 5 over its channel",
		"the reader confirmed (osdp_COM): it moved from address 1 to 5 at 115200 baud",
		"it answers at address 5 over its channel",
		"Now set hardware.doors.studio.osdp.address: 5 in " + g.cfg + ": until then a restart will not find the reader"} {
		assert.Contains(t, stdout, step)
	}
	assertReaderEvent(t, g.waitEvent(agent.EventReaderAddressChanged), key, actor, `by `+actor+`: reader vendor 02-50-54 .* at OSDP rs485-0 \(simulated line\) address 5: moved from address 1 to 5 on bus rs485-0 at 115200 baud$`)
	status, stderr, code = runPortier(t, g.env, "status", "--config", g.cfg)
	require.Equal(t, 0, code, stderr)
	assert.Regexp(t, `reader studio/osdp online, .*OSDP rs485-0 \(simulated line\) address 5; \d+ polls`, status)
	g.sim("osdp studio card H10301 12 1001")
	assert.Equal(t, "studio", g.waitEvent(agent.EventAwaitingPIN).Door, "cards come from the reader at its new address")

	// The dashboard sees the installer's actions as commands.
	for _, typ := range []agent.EventType{agent.EventReaderInstalled, agent.EventReaderOutputTested, agent.EventReaderAddressChanged, agent.EventReaderSetupFailed} {
		m := c.await(string(typ)+" on MQTT", 0, on("{prefix}/{site}/{gateway}/event/{category}", map[string]any{"type": typ, "door": "studio", "category": mqtt.CategoryCommand})).json()
		assert.Equal(t, actor, m["actor"], "%s", typ)
	}

	// Unplugged: reader_offline within OSDP's 8 s, an alarm on MQTT and in
	// the door's state; plugged back: reader_online.
	from := len(c.all())
	g.sim("osdp studio unplug")
	off := c.await("reader_offline on MQTT", from, on("{prefix}/{site}/{gateway}/event/{category}", map[string]any{"type": agent.EventReaderOffline, "door": "studio", "category": mqtt.CategoryAlarm})).json()
	assert.Contains(t, off["detail"], "timeout")
	c.await("the door's state with the alarm", from, func(m captured) bool {
		alarms, _ := m.json()["alarms"].([]any)
		return m.topic == tp.DoorState("studio") && len(alarms) == 1 && alarms[0] == string(agent.EventReaderOffline)
	})
	g.sim("osdp studio plug")
	c.await("reader_online on MQTT", from, on("{prefix}/{site}/{gateway}/event/{category}", map[string]any{"type": agent.EventReaderOnline, "door": "studio"}))
	c.await("the door's state without it", from, func(m captured) bool {
		alarms, _ := m.json()["alarms"].([]any)
		return m.topic == tp.DoorState("studio") && len(alarms) == 0
	})
	require.Equal(t, 0, g.signal(syscall.SIGTERM))
	c.verify()
}

// assertReaderEvent checks an installer's reader event: at the studio, by
// actor, its detail matching pattern, and nothing of the reader's key in it
// (neither the key nor any 4 bytes of it, in either case of hex).
func assertReaderEvent(t *testing.T, e agent.Event, key [16]byte, actor, pattern string) {
	t.Helper()
	assert.Equal(t, "studio", e.Door)
	assert.Equal(t, actor, e.Actor)
	assert.Regexp(t, `^local-[0-9a-f]{16}$`, e.CommandID)
	assert.Regexp(t, pattern, e.Detail)
	raw, err := json.Marshal(e)
	require.NoError(t, err)
	all := strings.ToLower(string(raw))
	for i := 0; i+4 <= len(key); i++ {
		assert.NotContains(t, all, hex.EncodeToString(key[i:i+4]), "%s carries part of the reader's key", e.Type)
	}
}

// waitAll reads events until one of each type arrived, in any order, and
// returns them by type (the first of each).
func (g *gateway) waitAll(types ...agent.EventType) map[agent.EventType]agent.Event {
	g.t.Helper()
	got := map[agent.EventType]agent.Event{}
	for len(got) < len(types) {
		var missing []agent.EventType
		for _, typ := range types {
			if _, ok := got[typ]; !ok {
				missing = append(missing, typ)
			}
		}
		e := g.waitAny(missing...)
		got[e.Type] = e
	}
	return got
}

// waitNewLine waits until out has more than n lines and returns them; it
// fails when nothing was written for 30 s.
func waitNewLine(t *testing.T, out *lineBuffer, n int) []string {
	t.Helper()
	for {
		if l := out.lines(); len(l) > n && l[0] != "" {
			return l
		}
		select {
		case <-out.moved:
		case <-time.After(30 * time.Second):
			t.Fatalf("no answer from the sim board for 30 s")
		}
	}
}

// TestOSDPPlaintextWarns: a reader configured without Secure Channel is
// warned about by check-config and doctor every time.
func TestOSDPPlaintextWarns(t *testing.T) {
	dir := t.TempDir()
	cfg := fmt.Sprintf(runConfig, dir, "300ms")
	cfg = string(withOSDPStudio(t, []byte(cfg)))
	cfg = strings.Replace(cfg, "osdp: {bus: rs485-0, address: 1}", "osdp: {bus: rs485-0, address: 1, secure_channel: off}", 1)
	path := filepath.Join(dir, "portier.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	env := []string{"HOME=" + dir}
	for range 2 {
		out, errOut, code := runPortier(t, env, "check-config", "--config", path)
		require.Equal(t, 0, code, errOut)
		assert.Regexp(t, `warning: .*portier.yaml:\d+: hardware.doors.studio.osdp.secure_channel: off: the reader at door studio talks PLAINTEXT`, out)
		out, errOut, code = runPortier(t, env, "doctor", "--config", path)
		require.Equal(t, 0, code, "%s\n%s", out, errOut)
		assert.Regexp(t, `WARN  OSDP secure channel +hardware.doors.studio.osdp.secure_channel: off`, out)
		assert.Contains(t, out, "plaintext, as configured (secure_channel: off)", "the reader answers")
		assert.Contains(t, out, "All 14 checks passed, 1 with a warning.")
	}
}
