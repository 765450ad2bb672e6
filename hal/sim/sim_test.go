package sim_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/sim"
	"github.com/portier-io/portier/hal/simtime"
	"github.com/portier-io/portier/hal/wiegand"
)

var doorIDs = []string{"front", "studio", "lab"}

func config() hal.Config {
	return hal.Config{Driver: "sim", Doors: map[string]hal.DoorWiring{
		"front": {
			MFRC522:     &hal.MFRC522Config{SPI: "SPI0.0"},
			Keypad:      &hal.KeypadConfig{Rows: []string{"GPIO5", "GPIO6", "GPIO12", "GPIO13"}, Cols: []string{"GPIO19", "GPIO16", "GPIO26"}},
			Relay:       &hal.OutputConfig{Pin: "GPIO17", ActiveLow: true},
			GreenLED:    &hal.OutputConfig{Pin: "GPIO27"},
			RedLED:      &hal.OutputConfig{Pin: "GPIO22"},
			Buzzer:      &hal.OutputConfig{Pin: "GPIO23"},
			DoorContact: &hal.InputConfig{Pin: "GPIO4", Switch: "nc"},
			ExitButton:  &hal.InputConfig{Pin: "GPIO18"},
		},
		"studio": {
			Wiegand:     &hal.WiegandConfig{D0: "GPIO20", D1: "GPIO21"},
			Relay:       &hal.OutputConfig{Pin: "GPIO14", SafeOn: true},
			DoorContact: &hal.InputConfig{Pin: "GPIO15", Switch: "nc"},
			Tamper:      &hal.InputConfig{Pin: "GPIO3", Switch: "nc"},
		},
		"lab": {MFRC522: &hal.MFRC522Config{SPI: "SPI0.1"}, Relay: &hal.OutputConfig{Pin: "GPIO2"}},
	}}
}

func newBoard(t *testing.T) (*sim.Board, *simtime.Clock) {
	t.Helper()
	clock := simtime.New()
	b, err := sim.New(config(), doorIDs, sim.Options{Clock: clock})
	require.NoError(t, err)
	return b, clock
}

var marker = []byte{0xEE, 0xEE, 0xEE, 0xEE}

// drain runs the board, in this goroutine, until every event queued so far
// is delivered: a marker tap on the lab door ends the run.
func drain(t *testing.T, b *sim.Board) []hal.Event {
	t.Helper()
	require.NoError(t, b.Tap("lab", marker))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []hal.Event
	require.NoError(t, b.Run(ctx, func(e hal.Event) {
		if e.Door == "lab" && e.Kind == hal.EventCredential && bytes.Equal(e.Credential.UID, marker) {
			cancel()
			return
		}
		got = append(got, e)
	}))
	return got
}

func TestScript(t *testing.T) {
	b, clock := newBoard(t)
	start := clock.Now()
	script := `# a morning at the coworking space
tap front 04A1B2C3
keys front 123456#
open front
close front
wiegand studio H10301 12 3456
wiegand studio C1000 1234 567890
keys studio 42#   # Wiegand keypad bursts
frame studio 26 0x1235
tamper studio on
wait 2s
exit front
tap lab 04:3C:6C:A2:E2:61:80
`
	var out bytes.Buffer
	require.NoError(t, b.RunScript(context.Background(), strings.NewReader(script), &out, sim.ScriptOptions{}))
	assert.Equal(t, 2*time.Second, clock.Since(start), "wait advances the board's clock")
	got := drain(t, b)

	var lines []string
	for _, e := range got {
		lines = append(lines, e.String())
	}
	assert.Equal(t, []string{
		"front: credential uid:4 bytes …B2C3",
		"front: key 1", "front: key 2", "front: key 3", "front: key 4", "front: key 5", "front: key 6", "front: key #",
		"front: door_contact active=true",
		"front: door_contact active=false",
		"studio: credential wiegand:H10301 fc=12 cn=…56",
		"studio: credential wiegand:C1000 fc=1234 cn=…90",
		"studio: key 4", "studio: key 2", "studio: key #",
		"studio: wiegand fault: wiegand: parity error: 26-bit frame",
		"studio: tamper active=true",
		"front: exit_button active=true",
		"front: exit_button active=false",
		"lab: credential uid:7 bytes …6180",
	}, lines)
	first := got[0].Credential
	assert.Equal(t, agent.KindUID, first.Kind)
	assert.Equal(t, []byte{0x04, 0xA1, 0xB2, 0xC3}, first.UID)
	require.NotNil(t, first.Card, "read through the simulated MFRC522 and the door's card check")
	assert.Equal(t, "fp1;uid=04A1B2C3;atqa=0004;sak=08;ats=-;ver=-;verr=-;sig=-;sigerr=-;orig=-", first.Card.Fingerprint)
	assert.Equal(t, "MIFARE Classic 1K (or a copy)", first.Card.Summary)
	assert.Equal(t, agent.Wiegand{Format: "H10301", Facility: 12, Card: 3456, Bits: 26, Raw: mustFrame(t, "H10301", 12, 3456)}, got[10].Credential.Wiegand)
	assert.ErrorIs(t, got[15].Err, wiegand.ErrParity)
	assert.Equal(t, start.Add(2*time.Second), got[17].At)
}

func mustFrame(t *testing.T, name string, fc, cn uint64) uint64 {
	t.Helper()
	f, _ := wiegand.FormatByName(name)
	fr, err := f.Encode(fc, cn)
	require.NoError(t, err)
	return fr.Raw
}

func TestScriptErrors(t *testing.T) {
	tests := []struct {
		line string
		want string
	}{
		{"tap front 04A1B2", "UID has 3 bytes"},
		{"tap studio 04A1B2C3", "door studio has no MFRC522 reader"},
		{"tap garage 04A1B2C3", `no door "garage"`},
		{"wiegand front H10301 1 2", "door front has no Wiegand reader"},
		{"wiegand studio H10301 256 2", "value out of range"},
		{"wiegand studio X 1 2", `unknown Wiegand format "X"`},
		{"keys lab 1234", "door lab has no keypad"},
		{"keys front 12A", `no key 'A'`},
		{"open lab", "door lab has no door_contact wired"},
		{"tamper front on", "door front has no tamper wired"},
		{"tamper studio maybe", "usage: tamper DOOR on|off"},
		{"wait soon", "not a duration"},
		{"frame studio 99 1", "BITS must be 1–64"},
		{"dance front", `unknown command "dance"`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			b, _ := newBoard(t)
			err := b.RunScript(context.Background(), strings.NewReader("# header\n"+tt.line+"\n"), &bytes.Buffer{}, sim.ScriptOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "line 2: ")
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestInteractive(t *testing.T) {
	b, _ := newBoard(t)
	var out bytes.Buffer
	in := "help\ndance\ntap front 04A1B2C3\nshow front\n"
	require.NoError(t, b.RunScript(context.Background(), strings.NewReader(in), &out, sim.ScriptOptions{KeepGoing: true, Prompt: true}))
	assert.Contains(t, out.String(), "tap DOOR UID")
	assert.Contains(t, out.String(), `error: sim: bad command: unknown command "dance"`)
	assert.Contains(t, out.String(), "front: relay=off green_led=off red_led=off buzzer=off door_contact=off exit_button=off")
	assert.Len(t, drain(t, b), 1)
}

// TestScriptExtraCommands: the program driving the board adds its own
// commands (portier run's status and quit, issue 15); ErrStop ends the
// script there.
func TestScriptExtraCommands(t *testing.T) {
	b, _ := newBoard(t)
	var out bytes.Buffer
	var seen []string
	extra := func(_ context.Context, cmd string, args []string, w io.Writer) (bool, error) {
		switch cmd {
		case "status":
			seen = append(seen, cmd+" "+strings.Join(args, " "))
			fmt.Fprintln(w, "all well")
			return true, nil
		case "quit":
			return true, sim.ErrStop
		}
		return false, nil
	}
	in := "# a comment\nstatus now # trailing comment\ntap front 04A1B2C3\nquit\ntap front 04A1B2C3\n"
	err := b.RunScript(context.Background(), strings.NewReader(in), &out, sim.ScriptOptions{Extra: extra})
	require.ErrorIs(t, err, sim.ErrStop)
	assert.Equal(t, []string{"status now"}, seen)
	assert.Equal(t, "all well\n", out.String())
	assert.Len(t, drain(t, b), 1, "the tap before quit ran, the one after did not")
}

func TestDrain(t *testing.T) {
	b, _ := newBoard(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan hal.Event, 8)
	go b.Run(ctx, func(e hal.Event) { got <- e })
	require.NoError(t, b.Tap("front", []byte{4, 0xA1, 0xB2, 0xC3}))
	require.NoError(t, b.Drain(ctx))
	require.Len(t, got, 1, "the tap queued before Drain was delivered when it returned")
	cancel()
	assert.ErrorIs(t, b.Drain(ctx), context.Canceled)
}

func TestOutputs(t *testing.T) {
	b, clock := newBoard(t)
	ch, unsubscribe := b.Subscribe()
	on, err := b.Output("studio", hal.Relay)
	require.NoError(t, err)
	assert.True(t, on, "safe_on output starts on")

	require.NoError(t, b.Set("front", hal.Relay, true))
	clock.Advance(5 * time.Second)
	require.NoError(t, b.Set("front", hal.GreenLED, true))
	require.NoError(t, b.Set("studio", hal.Relay, false))
	on, err = b.Output("front", hal.Relay)
	require.NoError(t, err)
	assert.True(t, on)
	require.Error(t, b.Set("lab", hal.Buzzer, true), "not wired")
	require.Error(t, b.Set("garage", hal.Relay, true))

	require.NoError(t, b.Halt())
	t0 := clock.Now().Add(-5 * time.Second)
	want := []sim.Change{
		{At: t0, Door: "front", Output: hal.Relay, On: true},
		{At: t0.Add(5 * time.Second), Door: "front", Output: hal.GreenLED, On: true},
		{At: t0.Add(5 * time.Second), Door: "studio", Output: hal.Relay, On: false},
		{At: t0.Add(5 * time.Second), Door: "front", Output: hal.Relay, On: false},
		{At: t0.Add(5 * time.Second), Door: "front", Output: hal.GreenLED, On: false},
		{At: t0.Add(5 * time.Second), Door: "studio", Output: hal.Relay, On: true},
	}
	assert.Equal(t, want, b.Changes())
	var got []sim.Change
	for range want {
		got = append(got, <-ch)
	}
	assert.Equal(t, want, got)
	unsubscribe()
	_, open := <-ch
	assert.False(t, open)

	require.NoError(t, b.Close())
	assert.Error(t, b.Set("front", hal.Relay, true), "closed")
}

func TestSelfTest(t *testing.T) {
	b, _ := newBoard(t)
	checks := b.SelfTest(context.Background(), true)
	require.NotEmpty(t, checks)
	for _, c := range checks {
		assert.True(t, c.OK, c.Name)
	}
	assert.Len(t, b.Changes(), 2*6, "each of the 6 outputs switched and restored")
	for _, out := range []hal.Output{hal.Relay} {
		on, err := b.Output("studio", out)
		require.NoError(t, err)
		assert.True(t, on, "back to its safe state")
	}
}

func TestNewRejectsBadWiring(t *testing.T) {
	c := config()
	c.Doors["lab"].Relay.Pin = "GPIO17"
	_, err := sim.New(c, doorIDs, sim.Options{})
	assert.ErrorContains(t, err, "GPIO17 is already used")
}

func TestQueueFull(t *testing.T) {
	b, err := sim.New(config(), doorIDs, sim.Options{Queue: 2})
	require.NoError(t, err)
	require.NoError(t, b.Tap("front", []byte{1, 2, 3, 4}))
	require.NoError(t, b.Tap("front", []byte{1, 2, 3, 4}))
	assert.ErrorContains(t, b.Tap("front", []byte{1, 2, 3, 4}), "event queue full")
}

func TestLatchFileKeepsLevelsAcrossProcesses(t *testing.T) {
	cfg := hal.Config{Driver: hal.DriverSim, SimLatchFile: filepath.Join(t.TempDir(), "latch.json"),
		Doors: map[string]hal.DoorWiring{"front": {Relay: &hal.OutputConfig{Pin: "GPIO17"}, GreenLED: &hal.OutputConfig{Pin: "GPIO22"}}}}
	b, err := sim.New(cfg, []string{"front"}, sim.Options{})
	require.NoError(t, err)
	require.NoError(t, b.Set("front", hal.Relay, true))
	// The process dies here without Halt: the line keeps its level.

	again, err := sim.New(cfg, []string{"front"}, sim.Options{})
	require.NoError(t, err)
	on, err := again.Output("front", hal.Relay)
	require.NoError(t, err)
	assert.True(t, on, "a new process finds the relay as the dead one left it")
	require.NoError(t, again.Halt())
	on, err = again.Output("front", hal.Relay)
	require.NoError(t, err)
	assert.False(t, on)

	third, err := sim.New(cfg, []string{"front"}, sim.Options{})
	require.NoError(t, err)
	on, err = third.Output("front", hal.Relay)
	require.NoError(t, err)
	assert.False(t, on, "Halt was written through to the latch")
}
