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
	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/osdp/osdpsim"
	"github.com/portier-io/portier/hal/osdp/osdptest"
	"github.com/portier-io/portier/hal/sim"
	"github.com/portier-io/portier/hal/simtime"
	"github.com/portier-io/portier/hal/wiegand"
)

// realConfig is osdpConfig with the studio's bus real, on port, and the
// front door's reader on a second, simulated bus.
func realConfig(key [16]byte, port string) hal.Config {
	c := osdpConfig(key)
	c.OSDPBuses[0].Real, c.OSDPBuses[0].Port = true, port
	c.OSDPBuses = append(c.OSDPBuses, hal.OSDPBusConfig{Name: "rs485-1", Port: "/dev/ttyUSB1", Baud: 115200})
	a := 1
	w := c.Doors["front"]
	w.OSDP = &hal.OSDPReaderConfig{Bus: "rs485-1", Address: &a, Key: studioKey}
	c.Doors["front"] = w
	return c
}

var studioIdentity = osdp.Identity{Vendor: [3]byte{0x0A, 0x0B, 0x0C}, Model: 7, Version: 3, Serial: 0x1234, Firmware: [3]byte{1, 2, 3}}

func runOpened(t *testing.T, cfg hal.Config) *running {
	t.Helper()
	b, err := sim.New(cfg, doorIDs, sim.Options{Clock: simtime.New()})
	require.NoError(t, err)
	require.NoError(t, b.OpenPorts())
	return runBuilt(t, b)
}

// A bus marked real runs on its port: the studio's reader is a reader on a
// pseudo-terminal, over Secure Channel, while the front door's reader on
// the other bus stays simulated.
func TestRealOSDPBus(t *testing.T) {
	rd := osdptest.NewReader(t, osdpsim.Config{Addr: 1, Key: studioKey, Identity: studioIdentity, Outputs: 2})
	r := runOpened(t, realConfig(studioKey, rd.Port))
	on := r.wait(t, "the real reader online", readerState(agent.ReaderOnline))
	assert.True(t, on.Reader.Secure)
	assert.Contains(t, on.Reader.Detail, "OSDP rs485-0 ("+rd.Port+") address 1: secure channel established")

	h10301, ok := wiegand.FormatByName("H10301")
	require.True(t, ok)
	fr, err := h10301.Encode(12, 1001)
	require.NoError(t, err)
	rd.PD.PresentWiegand(fr.Raw, fr.Bits)
	c := r.wait(t, "a card", func(e hal.Event) bool { return e.Kind == hal.EventCredential && e.Door == "studio" })
	assert.Equal(t, "studio: credential wiegand:H10301 fc=12 cn=…01", c.String())
	rd.PD.PressKeys("48#")
	var keys []rune
	for len(keys) < 3 {
		keys = append(keys, r.wait(t, "keys", func(e hal.Event) bool { return e.Kind == hal.EventKey && e.Door == "studio" }).Key)
	}
	assert.Equal(t, []rune("48#"), keys)
	rd.PD.SetTamper(true)
	r.wait(t, "tamper", func(e hal.Event) bool { return e.Kind == hal.EventReader && e.Door == "studio" && e.Reader.Tamper })

	from := len(rd.PD.Commands())
	require.NoError(t, r.b.Signal("studio", agent.SignalGranted))
	rd.WaitFeedback(t, from, osdp.FeedbackGrant)
	require.NoError(t, r.b.ReaderOutput(context.Background(), "studio", 1, osdp.OutputOn, 0))
	assert.True(t, rd.PD.Output(1, time.Now()), "the reader acknowledged its output on")

	// The relay and the simulated bus are the simulated board's.
	r.exec(t, "osdp front card H10301 12 1002")
	assert.Equal(t, uint64(1002), r.wait(t, "a simulated card", func(e hal.Event) bool { return e.Kind == hal.EventCredential && e.Door == "front" }).Credential.Wiegand.Card)
	require.NoError(t, r.b.Set("studio", hal.Relay, true))
	assert.Contains(t, r.exec(t, "show studio"), "relay=on")
	assert.Contains(t, r.exec(t, "show studio"), "reader=online secure (real)")

	for _, line := range []string{"osdp studio card H10301 12 1001", "osdp studio unplug", "osdp studio show", "wiegand studio H10301 1 2", "keys studio 12"} {
		err := r.b.Exec(context.Background(), line, &bytes.Buffer{})
		assert.ErrorContains(t, err, "door studio's OSDP reader is real (bus rs485-0 on "+rd.Port+", real: true)", line)
	}
	_, err = r.b.OSDPReader("studio")
	assert.ErrorContains(t, err, "is real")

	var conns []string
	for _, h := range r.b.Readers() {
		conns = append(conns, h.Door+" "+h.Connection+" "+h.Vendor)
	}
	assert.ElementsMatch(t, []string{"front OSDP rs485-1 (simulated line) address 1 02-50-54", "studio OSDP rs485-0 (" + rd.Port + ") address 1 0A-0B-0C"}, conns)

	// Unplugged: the reader falls silent; offline after OSDP's 8 s.
	rd.PD.SetFaults(osdpsim.Faults{Silent: true})
	off := r.wait(t, "offline", readerState(agent.ReaderOffline))
	assert.Equal(t, "timeout", off.Reader.Reason)
	rd.PD.SetFaults(osdpsim.Faults{})
	r.wait(t, "online again", readerState(agent.ReaderOnline))
}

// A real reader without a key file is installed as a simulated one is:
// refused until InstallReader gives it its key.
func TestRealOSDPInstall(t *testing.T) {
	rd := osdptest.NewReader(t, osdpsim.Config{Addr: 1, Install: true, Identity: studioIdentity})
	r := runOpened(t, realConfig([16]byte{}, rd.Port))
	ref := r.wait(t, "refused", readerState(agent.ReaderRefused))
	assert.Equal(t, "no_key", ref.Reader.Reason)
	require.NoError(t, r.b.InstallReader(context.Background(), "studio", studioKey))
	r.wait(t, "online", readerState(agent.ReaderOnline))
	k, install := rd.PD.Key()
	assert.Equal(t, studioKey, k)
	assert.False(t, install)
}

// A real bus whose port does not open stops OpenPorts (portier run) with
// the fix; without OpenPorts the board is built, and doctor's self-test
// fails the port's check.
func TestRealOSDPPortMissing(t *testing.T) {
	missing := "/dev/serial/by-id/usb-portier-test-no-such-adapter"
	b, err := sim.New(realConfig(studioKey, missing), doorIDs, sim.Options{Clock: simtime.New()})
	require.NoError(t, err)
	defer b.Close()
	err = b.OpenPorts()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "hardware.osdp_buses[0].port: osdp: open "+missing)
	assert.Contains(t, err.Error(), "plug in the RS-485 adapter")

	var port hal.Check
	for _, c := range b.OSDPSelfTest(context.Background()) {
		if strings.HasPrefix(c.Name, "OSDP bus rs485-0") {
			port = c
		}
	}
	assert.False(t, port.OK)
	assert.Contains(t, port.Detail, "open "+missing)
	assert.Contains(t, port.Fix, "plug in the RS-485 adapter")
}

// Doctor checks a real bus as on the periph board: the port opens (even
// when the board opened it first), the reader answers over its channel.
func TestRealOSDPSelfTest(t *testing.T) {
	rd := osdptest.NewReader(t, osdpsim.Config{Addr: 1, Key: studioKey, Identity: studioIdentity})
	b, err := sim.New(realConfig(studioKey, rd.Port), doorIDs, sim.Options{Clock: simtime.New()})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.OpenPorts())
	got := map[string]hal.Check{}
	for _, c := range b.OSDPSelfTest(context.Background()) {
		got[c.Name] = c
	}
	port := got["OSDP bus rs485-0: "+rd.Port+" at 115200 baud"]
	assert.True(t, port.OK, "%+v", got)
	studio := got["studio: reader at OSDP rs485-0 ("+rd.Port+") address 1"]
	assert.True(t, studio.OK, "%+v", got)
	assert.Contains(t, studio.Detail, "vendor 0A-0B-0C")
	assert.Contains(t, studio.Detail, "secure channel established")
	assert.True(t, got["front: reader at OSDP rs485-1 (simulated line) address 1"].OK, "%+v", got)
}
