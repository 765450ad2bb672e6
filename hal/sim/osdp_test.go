package sim_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/sim"
	"github.com/portier-io/portier/hal/simtime"
)

var studioKey = [16]byte{0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x5B, 0x5C, 0x5D, 0x5E, 0x5F, 0x60}

// osdpConfig puts the studio's reader on an OSDP bus instead of Wiegand;
// key zero: a new reader, not installed yet.
func osdpConfig(key [16]byte) hal.Config {
	c := config()
	a := 1
	w := c.Doors["studio"]
	w.Wiegand = nil
	w.OSDP = &hal.OSDPReaderConfig{Bus: "rs485-0", Address: &a, Key: key}
	c.Doors["studio"] = w
	c.OSDPBuses = []hal.OSDPBusConfig{{Name: "rs485-0", Port: "/dev/ttyUSB0", Baud: 115200}}
	return c
}

// running is a sim board running in the background, its events on a
// channel. The board's clock is simulated: the buses run through simulated
// time as fast as they can.
type running struct {
	b      *sim.Board
	events chan hal.Event
}

func runBoard(t *testing.T, cfg hal.Config) *running {
	t.Helper()
	b, err := sim.New(cfg, doorIDs, sim.Options{Clock: simtime.New()})
	require.NoError(t, err)
	return runBuilt(t, b)
}

// runBuilt runs b in the background.
func runBuilt(t *testing.T, b *sim.Board) *running {
	t.Helper()
	r := &running{b: b, events: make(chan hal.Event, 4096)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.Run(ctx, func(e hal.Event) {
			select {
			case r.events <- e:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, b.Close())
	})
	return r
}

// wait returns the first event matching pred; it fails when no event came
// for 20 s.
func (r *running) wait(t *testing.T, what string, pred func(hal.Event) bool) hal.Event {
	t.Helper()
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	for {
		select {
		case e := <-r.events:
			if pred(e) {
				return e
			}
			timer.Reset(20 * time.Second)
		case <-timer.C:
			t.Fatalf("waiting for %s: no event for 20s", what)
		}
	}
}

func readerState(st agent.ReaderState) func(hal.Event) bool {
	return func(e hal.Event) bool { return e.Kind == hal.EventReader && e.Door == "studio" && e.Reader.State == st }
}

func (r *running) exec(t *testing.T, line string) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, r.b.Exec(context.Background(), line, &out), line)
	return out.String()
}

func TestOSDPReaderCommands(t *testing.T) {
	r := runBoard(t, osdpConfig(studioKey))
	on := r.wait(t, "the reader online", readerState(agent.ReaderOnline))
	assert.True(t, on.Reader.Secure)

	r.exec(t, "osdp studio card H10301 12 1001")
	c := r.wait(t, "a card", func(e hal.Event) bool { return e.Kind == hal.EventCredential })
	assert.Equal(t, "studio: credential wiegand:H10301 fc=12 cn=…01", c.String())
	r.exec(t, "wiegand studio H10301 12 3456") // no Wiegand reader: the OSDP reader takes it
	assert.Equal(t, uint64(3456), r.wait(t, "a routed card", func(e hal.Event) bool { return e.Kind == hal.EventCredential }).Credential.Wiegand.Card)
	r.exec(t, "keys studio 48#") // no keypad: the OSDP reader's
	var keys []rune
	for len(keys) < 3 {
		keys = append(keys, r.wait(t, "keys", func(e hal.Event) bool { return e.Kind == hal.EventKey }).Key)
	}
	assert.Equal(t, []rune("48#"), keys)
	r.exec(t, "osdp studio raw 26 0x1235")
	assert.Equal(t, "osdp", r.wait(t, "a bad frame", func(e hal.Event) bool { return e.Kind == hal.EventFault }).Device)

	r.exec(t, "osdp studio tamper on")
	r.wait(t, "tamper", func(e hal.Event) bool { return e.Kind == hal.EventReader && e.Reader.Tamper })
	r.exec(t, "osdp studio power fault")
	r.wait(t, "power", func(e hal.Event) bool { return e.Kind == hal.EventReader && e.Reader.PowerFault })

	require.NoError(t, r.b.Signal("studio", agent.SignalGranted))
	require.Eventually(t, func() bool { return strings.Contains(r.exec(t, "show studio"), "led=green ") }, 20*time.Second, time.Millisecond,
		"the reader's LED follows the door's signal")
	assert.Contains(t, r.exec(t, "osdp studio show"), "reader=online secure")
	require.NoError(t, r.b.Signal("studio", agent.SignalDenied))
	// The deny pattern lasts 3 s of simulated time, which can pass before
	// the test looks: the reader's last command is what shows it.
	require.Eventually(t, func() bool { return strings.Contains(r.exec(t, "osdp studio show"), "last_led_command=red_blinking") }, 20*time.Second, time.Millisecond)

	r.exec(t, "osdp studio unplug")
	off := r.wait(t, "offline", readerState(agent.ReaderOffline))
	assert.Equal(t, "timeout", off.Reader.Reason)
	r.exec(t, "osdp studio plug")
	r.wait(t, "online again", readerState(agent.ReaderOnline))

	h := r.b.Readers()
	require.Len(t, h, 1)
	assert.Equal(t, "02-50-54", h[0].Vendor)
	assert.Equal(t, "OSDP rs485-0 (simulated line) address 1", h[0].Connection)

	for _, bad := range []struct{ line, want string }{
		{"osdp lab card H10301 1 2", "door lab has no OSDP reader"},
		{"osdp studio", "usage: osdp DOOR"},
		{"osdp studio power on", "usage: osdp DOOR"},
		{"osdp studio keys 12A", `no key 'A'`},
		{"osdp garage show", `no door "garage"`},
	} {
		assert.ErrorContains(t, r.b.Exec(context.Background(), bad.line, &bytes.Buffer{}), bad.want, bad.line)
	}
}

// A door whose key file does not exist yet has a factory-fresh reader: it
// is refused until installed, then works under its new key.
func TestOSDPInstallSimulatedReader(t *testing.T) {
	r := runBoard(t, osdpConfig([16]byte{}))
	ref := r.wait(t, "refused", readerState(agent.ReaderRefused))
	assert.Equal(t, "no_key", ref.Reader.Reason)
	require.NoError(t, r.b.InstallReader(context.Background(), "studio", studioKey))
	r.wait(t, "online", readerState(agent.ReaderOnline))
	pd, err := r.b.OSDPReader("studio")
	require.NoError(t, err)
	k, install := pd.Key()
	assert.Equal(t, studioKey, k)
	assert.False(t, install)
	assert.ErrorContains(t, r.b.InstallReader(context.Background(), "lab", studioKey), "no OSDP reader")
}

func TestOSDPSelfTest(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  [16]byte
		ok   bool
		want string
	}{
		{"installed", studioKey, true, "vendor 02-50-54"},
		{"not installed", [16]byte{}, false, "portier reader install --door studio"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := sim.New(osdpConfig(tc.key), doorIDs, sim.Options{Clock: simtime.New()})
			require.NoError(t, err)
			defer b.Close()
			var reader hal.Check
			for _, c := range b.OSDPSelfTest(context.Background()) {
				if strings.HasPrefix(c.Name, "studio: reader at OSDP") {
					reader = c
				}
			}
			assert.Equal(t, tc.ok, reader.OK, "%+v", reader)
			assert.Contains(t, reader.Detail+" "+reader.Fix, tc.want)
		})
	}
}
