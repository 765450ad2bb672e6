package hal_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/osdp/osdpsim"
	"github.com/portier-io/portier/hal/simtime"
	"github.com/portier-io/portier/hal/wiegand"
)

var (
	keyA = [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	keyB = [16]byte{0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xBB, 0xBC, 0xBD, 0xBE, 0xBF}
	hid  = osdp.Identity{Vendor: [3]byte{0x00, 0x06, 0x8E}, Model: 2, Version: 1, Serial: 0x01020304, Firmware: [3]byte{1, 4, 7}}
)

// stall is how long a test waits without any event before it fails.
const stall = 20 * time.Second

// simLine is an osdpsim line as a board's OSDP port.
type simLine struct{ *osdpsim.Line }

// osdpRig is an OSDP runtime over simulated readers on one simulated line.
type osdpRig struct {
	rt     *hal.OSDPRuntime
	pds    map[string]*osdpsim.PD
	events chan hal.Event
	cmds   chan osdpsim.Command
	clock  *simtime.Clock
}

type simReader struct {
	door string
	addr byte
	key  [16]byte // the gateway's key; zero: none yet
	pd   osdpsim.Config
	// plaintext: secure_channel off
	plaintext bool
}

func newOSDPRig(t *testing.T, readers ...simReader) *osdpRig {
	t.Helper()
	clock := simtime.New()
	r := &osdpRig{pds: map[string]*osdpsim.PD{}, events: make(chan hal.Event, 4096), cmds: make(chan osdpsim.Command, 4096), clock: clock}
	var pds []*osdpsim.PD
	bus := hal.OSDPBus{Name: "rs485-0", Port: "sim", Baud: 115200}
	for _, sr := range readers {
		pc := sr.pd
		pc.Addr = sr.addr
		if pc.Identity == (osdp.Identity{}) {
			pc.Identity = hid
		}
		pc.OnCommand = func(c osdpsim.Command) {
			select {
			case r.cmds <- c:
			default:
			}
		}
		pd := osdpsim.NewPD(pc)
		r.pds[sr.door] = pd
		pds = append(pds, pd)
		bus.Readers = append(bus.Readers, hal.OSDPReader{Door: sr.door, Addr: sr.addr, Key: sr.key, Plaintext: sr.plaintext, Decoder: wiegand.NewDecoder()})
	}
	bus.Opened = simLine{osdpsim.NewLine(clock, 115200, pds...)}
	r.rt = hal.NewOSDPRuntime([]hal.OSDPBus{bus}, hal.OSDPOptions{Clock: clock, Rand: &counter{}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.rt.Run(ctx, func(e hal.Event) {
			select {
			case r.events <- e:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return r
}

// counter is a deterministic challenge source.
type counter struct{ n byte }

func (c *counter) Read(p []byte) (int, error) {
	for i := range p {
		c.n++
		p[i] = c.n
	}
	return len(p), nil
}

// wait returns the first event matching pred, failing when nothing came for
// `stall`.
func (r *osdpRig) wait(t *testing.T, what string, pred func(hal.Event) bool) hal.Event {
	t.Helper()
	timer := time.NewTimer(stall)
	defer timer.Stop()
	for {
		select {
		case e := <-r.events:
			if pred(e) {
				return e
			}
			timer.Reset(stall)
		case <-timer.C:
			t.Fatalf("waiting for %s: no event for %v", what, stall)
		}
	}
}

func readerIs(door string, st agent.ReaderState) func(hal.Event) bool {
	return func(e hal.Event) bool { return e.Kind == hal.EventReader && e.Door == door && e.Reader.State == st }
}

func kindAt(door string, k hal.EventKind) func(hal.Event) bool {
	return func(e hal.Event) bool { return e.Door == door && e.Kind == k }
}

// waitCmd returns the next command a reader accepted with the given code.
func (r *osdpRig) waitCmd(t *testing.T, code byte) osdpsim.Command {
	t.Helper()
	timer := time.NewTimer(stall)
	defer timer.Stop()
	for {
		select {
		case c := <-r.cmds:
			if c.Code == code {
				return c
			}
			timer.Reset(stall)
		case <-timer.C:
			t.Fatalf("waiting for command 0x%02X: nothing for %v", code, stall)
		}
	}
}

// Cards and keys through an OSDP reader become the same events as a Wiegand
// reader's; its condition (online, tamper, power, offline) is reported in
// full on every change.
func TestOSDPReaderEvents(t *testing.T) {
	r := newOSDPRig(t, simReader{door: "studio", addr: 1, key: keyA, pd: osdpsim.Config{Key: keyA}})
	on := r.wait(t, "online", readerIs("studio", agent.ReaderOnline))
	assert.Equal(t, hal.OSDPReaderName, on.Reader.Reader)
	assert.True(t, on.Reader.Secure)
	assert.Equal(t, "OSDP rs485-0 (sim) address 1: secure channel established", on.Reader.Detail)

	pd := r.pds["studio"]
	fr, err := wiegand.StandardFormats()[0].Encode(12, 1001)
	require.NoError(t, err)
	pd.PresentWiegand(fr.Raw, fr.Bits)
	c := r.wait(t, "card", kindAt("studio", hal.EventCredential))
	assert.Equal(t, agent.CardWiegand(agent.Wiegand{Format: "H10301", Facility: 12, Card: 1001, Bits: 26, Raw: fr.Raw}), c.Credential)

	pd.PressKeys("48#")
	var keys []rune
	for len(keys) < 3 {
		keys = append(keys, r.wait(t, "keys", kindAt("studio", hal.EventKey)).Key)
	}
	assert.Equal(t, []rune("48#"), keys)

	pd.PresentCard(26, []byte{0xFF, 0xFF, 0xFF, 0xC0}) // bad parity
	f := r.wait(t, "a rejected frame", kindAt("studio", hal.EventFault))
	assert.Equal(t, "osdp", f.Device)
	pd.PresentText("1234")
	assert.Equal(t, agent.CardWiegand(agent.Wiegand{Format: hal.OSDPTextFormat, Card: 1234}), r.wait(t, "FMT", kindAt("studio", hal.EventCredential)).Credential)
	pd.PresentCard(80, make([]byte, 10))
	assert.ErrorContains(t, r.wait(t, "80 bits", kindAt("studio", hal.EventFault)).Err, "80-bit")

	pd.SetTamper(true)
	tam := r.wait(t, "tamper", func(e hal.Event) bool { return e.Kind == hal.EventReader && e.Reader.Tamper })
	assert.Equal(t, agent.ReaderOnline, tam.Reader.State)
	pd.SetPower(true)
	pw := r.wait(t, "power", func(e hal.Event) bool { return e.Kind == hal.EventReader && e.Reader.PowerFault })
	assert.True(t, pw.Reader.Tamper, "the whole condition every time")

	pd.SetFaults(osdpsim.Faults{Silent: true})
	off := r.wait(t, "offline", readerIs("studio", agent.ReaderOffline))
	assert.Equal(t, "timeout", off.Reader.Reason)
	pd.SetFaults(osdpsim.Faults{})
	r.wait(t, "online again", readerIs("studio", agent.ReaderOnline))

	h := r.rt.Readers()
	require.Len(t, h, 1)
	assert.Equal(t, "studio", h[0].Door)
	assert.Equal(t, "00-06-8E", h[0].Vendor)
	assert.Equal(t, "01020304", h[0].Serial)
	assert.Equal(t, "1.4.7", h[0].Firmware)
	assert.NotZero(t, h[0].Polls)
	assert.NotZero(t, h[0].Timeouts, "the silent spell")
	assert.NotZero(t, h[0].LineBytes)
}

// The door's signal drives the reader's LED and buzzer; a signal given while
// the reader is away is shown when it is back.
func TestOSDPSignal(t *testing.T) {
	r := newOSDPRig(t, simReader{door: "studio", addr: 1, key: keyA, pd: osdpsim.Config{Key: keyA}})
	r.wait(t, "online", readerIs("studio", agent.ReaderOnline))
	idle, _ := osdp.FeedbackCommands(osdp.FeedbackIdle)
	assert.Equal(t, idle.Encode(), r.waitCmd(t, osdp.CmdLED).Data, "the reader is told the door's state when it comes online")
	require.NoError(t, r.rt.Signal("studio", agent.SignalGranted))
	led, buz := osdp.FeedbackCommands(osdp.FeedbackGrant)
	assert.Equal(t, led.Encode(), r.waitCmd(t, osdp.CmdLED).Data)
	assert.Equal(t, buz.Encode(), r.waitCmd(t, osdp.CmdBUZ).Data)
	require.NoError(t, r.rt.Signal("lab", agent.SignalDenied), "a door without an OSDP reader has nothing to show it on")

	r.pds["studio"].SetFaults(osdpsim.Faults{Silent: true})
	r.wait(t, "offline", readerIs("studio", agent.ReaderOffline))
	require.NoError(t, r.rt.Signal("studio", agent.SignalAwaitPIN), "an absent reader is no error")
	r.pds["studio"].SetFaults(osdpsim.Faults{})
	r.wait(t, "online again", readerIs("studio", agent.ReaderOnline))
	led, _ = osdp.FeedbackCommands(osdp.FeedbackAwaitPIN)
	assert.Equal(t, led.Encode(), r.waitCmd(t, osdp.CmdLED).Data, "the last signal, once it is back")
}

// Several doors' readers share one bus; a reader that cannot do Secure
// Channel is refused, one configured without it works in plaintext.
func TestOSDPSharedBus(t *testing.T) {
	r := newOSDPRig(t,
		simReader{door: "front", addr: 1, key: keyA, pd: osdpsim.Config{Key: keyA}},
		simReader{door: "studio", addr: 2, key: keyB, pd: osdpsim.Config{NoSecureChannel: true}},
		simReader{door: "lab", addr: 3, plaintext: true, pd: osdpsim.Config{NoSecureChannel: true}},
	)
	seen := map[string]agent.ReaderStatus{}
	for len(seen) < 3 {
		e := r.wait(t, fmt.Sprintf("three readers settled (so far %v)", seen), func(e hal.Event) bool {
			return e.Kind == hal.EventReader && e.Reader.State != agent.ReaderStarting
		})
		seen[e.Door] = e.Reader
	}
	assert.Equal(t, agent.ReaderOnline, seen["front"].State)
	assert.Equal(t, agent.ReaderRefused, seen["studio"].State)
	assert.Equal(t, "no_secure_channel", seen["studio"].Reason)
	assert.Equal(t, agent.ReaderOnline, seen["lab"].State)
	assert.False(t, seen["lab"].Secure)
	assert.Contains(t, seen["lab"].Detail, "PLAINTEXT")

	fr, err := wiegand.StandardFormats()[0].Encode(12, 3456)
	require.NoError(t, err)
	r.pds["lab"].PresentWiegand(fr.Raw, fr.Bits)
	assert.Equal(t, "lab", r.wait(t, "a plaintext card", func(e hal.Event) bool { return e.Kind == hal.EventCredential }).Door)
}

// A new reader waits, refused, until it is installed; the install moves it
// to the key and it comes online under it.
func TestOSDPInstallReader(t *testing.T) {
	r := newOSDPRig(t, simReader{door: "studio", addr: 1, pd: osdpsim.Config{Install: true}})
	ref := r.wait(t, "refused", readerIs("studio", agent.ReaderRefused))
	assert.Equal(t, "no_key", ref.Reader.Reason)
	assert.Contains(t, ref.Reader.Detail, "portier reader install --door studio")
	require.Equal(t, "00-06-8E", r.rt.Readers()[0].Vendor, "identified before its install")

	require.NoError(t, r.rt.InstallReader(context.Background(), "studio", keyB))
	k, install := r.pds["studio"].Key()
	assert.Equal(t, keyB, k)
	assert.False(t, install)
	r.wait(t, "online under its key", readerIs("studio", agent.ReaderOnline))
	assert.ErrorContains(t, r.rt.InstallReader(context.Background(), "front", keyB), "no OSDP reader")
	assert.ErrorIs(t, r.rt.InstallReader(context.Background(), "studio", keyA), osdp.ErrHasKey)
}

// Doctor's checks name the fix each failure's signature points at.
func TestReaderChecks(t *testing.T) {
	base := func(edit func(*agent.ReaderHealth)) agent.ReaderHealth {
		h := agent.ReaderHealth{Door: "studio", Connection: "OSDP rs485-0 (/dev/ttyUSB0) address 1", LineBytes: 100,
			ReaderStatus: agent.ReaderStatus{Reader: "osdp", State: agent.ReaderOffline, Reason: "timeout"}}
		edit(&h)
		return h
	}
	tests := []struct {
		name     string
		h        agent.ReaderHealth
		ok, warn bool
		want     string // in Detail + Fix
	}{
		{"secure", base(func(h *agent.ReaderHealth) {
			h.State, h.Reason, h.Vendor, h.Model, h.Serial, h.Firmware = agent.ReaderOnline, "", "00-06-8E", "2 v1", "01020304", "1.4.7"
		}), true, false, "serial 01020304 firmware 1.4.7; secure channel established"},
		{"plaintext", base(func(h *agent.ReaderHealth) { h.State, h.Reason, h.Plaintext = agent.ReaderOnline, "", true }), true, false, "plaintext, as configured"},
		{"no bytes", base(func(h *agent.ReaderHealth) { h.LineBytes = 0 }), false, false, "swap A and B"},
		{"garbled", base(func(h *agent.ReaderHealth) { h.BadFrames = 7 }), false, false, "wrong baud rate"},
		{"wrong address", base(func(h *agent.ReaderHealth) {}), false, false, "wrong address"},
		{"wrong key", base(func(h *agent.ReaderHealth) { h.State, h.Reason = agent.ReaderRefused, "wrong_key" }), false, false, "reset it to factory settings"},
		{"no key", base(func(h *agent.ReaderHealth) { h.State, h.Reason = agent.ReaderRefused, "no_key" }), false, false, "portier reader install --door studio"},
		{"no secure channel", base(func(h *agent.ReaderHealth) { h.State, h.Reason = agent.ReaderRefused, "no_secure_channel" }), false, false, "secure_channel: off"},
		{"MAC", base(func(h *agent.ReaderHealth) { h.Reason = "mac_failure" }), false, false, "terminate both ends"},
		{"NAK", base(func(h *agent.ReaderHealth) { h.Reason, h.NAKs = "nak", 3 }), false, false, "3 NAKs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := hal.ReaderChecks([]agent.ReaderHealth{tt.h})
			require.Len(t, c, 1)
			assert.Equal(t, tt.ok, c[0].OK)
			assert.Equal(t, tt.warn, c[0].Warn)
			assert.Contains(t, c[0].Detail+" "+c[0].Fix, tt.want)
			assert.Equal(t, "studio: reader at OSDP rs485-0 (/dev/ttyUSB0) address 1", c[0].Name)
		})
	}
}

// The runtime on a DeviceBoard: the board runs it and routes signals to it.
func TestDeviceBoardOSDP(t *testing.T) {
	clock := simtime.New()
	pd := osdpsim.NewPD(osdpsim.Config{Addr: 1, Key: keyA, Identity: hid})
	line := osdpsim.NewLine(clock, 115200, pd)
	rt := hal.NewOSDPRuntime([]hal.OSDPBus{{Name: "b", Port: "sim", Baud: 115200, Opened: simLine{line},
		Readers: []hal.OSDPReader{{Door: "studio", Addr: 1, Key: keyA, Decoder: wiegand.NewDecoder()}}}}, hal.OSDPOptions{Clock: clock})
	board := hal.NewDeviceBoard([]hal.DoorDevices{{Door: "studio"}}, hal.BoardOptions{Clock: clock, OSDP: rt})
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan hal.Event, 1024)
	done := make(chan error, 1)
	go func() {
		done <- board.Run(ctx, func(e hal.Event) {
			select {
			case events <- e:
			default:
			}
		})
	}()
	timer := time.NewTimer(stall)
	defer timer.Stop()
	for online := false; !online; {
		select {
		case e := <-events:
			online = e.Kind == hal.EventReader && e.Reader.State == agent.ReaderOnline
		case <-timer.C:
			t.Fatal("no reader online")
		}
	}
	require.NoError(t, board.Signal("studio", agent.SignalDenied))
	assert.ErrorContains(t, board.Signal("garage", agent.SignalDenied), `no door "garage"`)
	require.Len(t, board.Readers(), 1)
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, board.Close())
	_, err := line.Write([]byte{0})
	assert.Error(t, err, "the line was closed with the board's run")
}

// A reader that formats cards itself (osdp_FMT) sends a decimal card number:
// it becomes the Wiegand credential FMT:0:NUMBER; anything else is a fault
// that never repeats the characters.
func TestOSDPFormattedCards(t *testing.T) {
	r := newOSDPRig(t, simReader{door: "studio", addr: 1, key: keyA, pd: osdpsim.Config{Key: keyA}})
	r.wait(t, "online", readerIs("studio", agent.ReaderOnline))
	pd := r.pds["studio"]
	tests := []struct {
		name    string
		text    string
		reverse bool
		card    uint64 // when taken
		fault   string // when refused
	}{
		{"decimal", "1234", false, 1234, ""},
		{"leading zeros", "0002301234", false, 2301234, ""},
		{"19 digits", "9999999999999999999", false, 9999999999999999999, ""},
		{"empty", "", false, 0, "empty card number"},
		{"20 digits", "12345678901234567890", false, 0, "20 characters"},
		{"hex", "04A1B2C3", false, 0, "not a decimal card number"},
		{"spaces", "12 34", false, 0, "not a decimal card number"},
		{"non-printable", "12\x0034", false, 0, "non-printable"},
		{"high bytes", "12\xff34", false, 0, "non-printable"},
		{"reverse", "4321", true, 0, "reverse direction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pd.PresentFormatted(tt.text, tt.reverse)
			e := r.wait(t, "the card", func(e hal.Event) bool {
				return e.Door == "studio" && (e.Kind == hal.EventCredential || e.Kind == hal.EventFault)
			})
			if tt.fault == "" {
				require.Equal(t, hal.EventCredential, e.Kind, "%v", e.Err)
				assert.Equal(t, agent.CardWiegand(agent.Wiegand{Format: hal.OSDPTextFormat, Card: tt.card}), e.Credential)
				key, err := e.Credential.Key(nil)
				require.NoError(t, err)
				assert.Equal(t, fmt.Sprintf("wg:FMT:0:%d", tt.card), key)
				assert.NotContains(t, e.Credential.Masked(), fmt.Sprint(tt.card), "masked in logs and events")
				return
			}
			require.Equal(t, hal.EventFault, e.Kind)
			assert.Equal(t, "osdp", e.Device)
			assert.ErrorContains(t, e.Err, tt.fault)
			assert.ErrorContains(t, e.Err, "osdp_FMT")
			if tt.text != "" {
				assert.NotContains(t, e.Err.Error(), tt.text, "the characters are a credential")
			}
		})
	}
}

// An installer moves a reader to another address on its bus: COMSET goes
// over its secure channel, the bus follows the reader there (signals and
// cards keep flowing), and what cannot work is refused before anything is
// sent.
func TestOSDPSetReaderAddress(t *testing.T) {
	r := newOSDPRig(t,
		simReader{door: "front", addr: 0, key: keyA, pd: osdpsim.Config{Key: keyA}},
		simReader{door: "studio", addr: 2, key: keyB, pd: osdpsim.Config{Key: keyB, Identity: osdp.Identity{Serial: 9}}},
	)
	for range 2 {
		r.wait(t, "both online", func(e hal.Event) bool { return e.Kind == hal.EventReader && e.Reader.State == agent.ReaderOnline })
	}
	ctx := t.Context()
	for _, tt := range []struct {
		name       string
		door       string
		addr, baud int
		err        string
	}{
		{"broadcast", "front", 127, 0, "address 127 is outside 0–126"},
		{"negative", "front", -1, 0, "address -1 is outside 0–126"},
		{"taken", "front", 2, 0, "address 2 on bus rs485-0 is taken by door studio's reader"},
		{"not a rate", "front", 3, 4800, "4800 baud is not an OSDP line rate"},
		{"another rate", "front", 3, 9600, "bus rs485-0 runs at 115200 baud"},
		{"same", "front", 0, 0, "at address 0 already"},
		{"no reader", "garage", 3, 0, "door garage has no OSDP reader"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.rt.SetReaderAddress(ctx, tt.door, tt.addr, tt.baud)
			assert.ErrorContains(t, err, tt.err)
		})
	}
	assert.Equal(t, byte(0), r.pds["front"].Addr(), "nothing was sent")

	move, err := r.rt.SetReaderAddress(ctx, "front", 3, 115200)
	require.NoError(t, err)
	assert.Equal(t, hal.ReaderMove{Door: "front", Bus: "rs485-0", From: 0, To: 3, Baud: 115200}, move)
	assert.Equal(t, byte(3), r.pds["front"].Addr())
	assert.True(t, r.pds["front"].Secure(), "COMSET went over the secure channel, which goes on")
	cmd := r.waitCmd(t, osdp.CmdCOMSET)
	assert.Equal(t, []byte{3, 0x00, 0xC2, 0x01, 0x00}, cmd.Data, "address, then the baud rate LSB first")
	h := r.rt.Readers()
	require.Len(t, h, 2)
	assert.Equal(t, "OSDP rs485-0 (sim) address 3", h[0].Connection)
	assert.Equal(t, agent.ReaderOnline, h[0].State)

	// The bus talks to it at its new address.
	require.NoError(t, r.rt.Signal("front", agent.SignalGranted))
	led, _ := osdp.FeedbackCommands(osdp.FeedbackGrant)
	assert.Equal(t, led.Encode(), r.waitCmd(t, osdp.CmdLED).Data)
	fr, err := wiegand.StandardFormats()[0].Encode(12, 1001)
	require.NoError(t, err)
	r.pds["front"].PresentWiegand(fr.Raw, fr.Bits)
	assert.Equal(t, "front", r.wait(t, "a card from the moved reader", kindAt("front", hal.EventCredential)).Door)
	_, err = r.rt.SetReaderAddress(ctx, "studio", 3, 0)
	assert.ErrorContains(t, err, "address 3 on bus rs485-0 is taken by door front's reader", "the moved reader holds its new address")
}

// An installer tests a reader's outputs: the count comes from its PDCAP,
// osdp_OUT carries the output, the control code and the timer in 100 ms
// steps, and the reader's output follows.
func TestOSDPReaderOutput(t *testing.T) {
	r := newOSDPRig(t,
		simReader{door: "front", addr: 1, key: keyA, pd: osdpsim.Config{Key: keyA, Outputs: 2}},
		simReader{door: "studio", addr: 2, key: keyB, pd: osdpsim.Config{Key: keyB, Identity: osdp.Identity{Serial: 9}}},
	)
	for range 2 {
		r.wait(t, "both online", func(e hal.Event) bool { return e.Kind == hal.EventReader && e.Reader.State == agent.ReaderOnline })
	}
	ctx := t.Context()
	pd := r.pds["front"]
	for _, tt := range []struct {
		name   string
		door   string
		n      int
		action osdp.OutputAction
		pulse  time.Duration
		data   []byte // the osdp_OUT record; nil: refused with err
		err    string
		on     bool          // the output's state right after
		after  time.Duration // and after this long …
		later  bool          // … this state
	}{
		{"on", "front", 0, osdp.OutputOn, 0, []byte{0, 2, 0, 0}, "", true, time.Hour, true},
		{"off", "front", 0, osdp.OutputOff, 0, []byte{0, 1, 0, 0}, "", false, time.Hour, false},
		{"pulse", "front", 1, osdp.OutputPulseOn, 1500 * time.Millisecond, []byte{1, 5, 15, 0}, "", true, 1500 * time.Millisecond, false},
		{"long pulse", "front", 1, osdp.OutputPulseOn, 30 * time.Minute, []byte{1, 5, 0x50, 0x46}, "", true, 30 * time.Minute, false},
		{"no such output", "front", 2, osdp.OutputOn, 0, nil, "has 2 outputs, numbered 0–1: it has no output 2", false, 0, false},
		{"negative", "front", -1, osdp.OutputOn, 0, nil, "it has no output -1", false, 0, false},
		{"short pulse", "front", 0, osdp.OutputPulseOn, 50 * time.Millisecond, nil, "outside 100ms", false, 0, false},
		{"a reader without outputs", "studio", 0, osdp.OutputOn, 0, nil, "has no outputs", false, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := r.rt.ReaderOutput(ctx, tt.door, tt.n, tt.action, tt.pulse)
			if tt.data == nil {
				assert.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			cmd := r.waitCmd(t, osdp.CmdOUT)
			assert.Equal(t, tt.data, cmd.Data)
			assert.Equal(t, tt.on, pd.Output(tt.n, cmd.At))
			assert.Equal(t, tt.later, pd.Output(tt.n, cmd.At.Add(tt.after)))
		})
	}
	h := r.rt.Readers()
	assert.Equal(t, 2, h[0].Outputs, "status and doctor show the count")
	assert.Zero(t, h[1].Outputs)
}
