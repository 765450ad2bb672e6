package osdp_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/osdp/osdpsim"
	"github.com/portier-io/portier/hal/simtime"
)

// 26-bit H10301 frame: facility 12, card 3456, with parity.
const h10301 = uint64(0x0306C00) | 1<<25 | 0

func TestSecureReaderReportsAndFeedback(t *testing.T) {
	r, pds := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{secureReader("front", 1, key1)},
		pds:     []osdpsim.Config{{Addr: 1, Key: key1}},
	})
	pd := pds[0]
	id := r.waitFor(t, "identity", kind(osdp.ReportIdentity, 1), offline)
	assert.Equal(t, hid, id.Identity)
	assert.True(t, id.Caps.SecureChannel())
	on := r.waitFor(t, "online", kind(osdp.ReportOnline, 1), offline)
	assert.True(t, on.Secure)
	assert.True(t, pd.Secure())

	st := status(t, r.bus, 1)
	assert.True(t, st.Online)
	assert.True(t, st.Secure)
	assert.False(t, st.DefaultKey)
	require.NotNil(t, st.Identity)
	assert.Equal(t, "00-06-8E", st.Identity.VendorOUI())
	assert.Equal(t, "1.4.7", st.Identity.FirmwareVersion())

	pd.PresentWiegand(h10301, 26)
	c := r.waitFor(t, "card", kind(osdp.ReportCard, 1), offline).Card
	assert.Equal(t, 26, c.Bits)
	assert.Equal(t, osdp.FormatWiegand, c.Format)
	v, ok := c.Uint64()
	require.True(t, ok)
	assert.Equal(t, h10301, v)

	pd.PressKeys("12*#")
	assert.Equal(t, "12*#", r.waitFor(t, "keys", kind(osdp.ReportKeypad, 1), offline).Keys)

	pd.PresentText("1234567890")
	assert.Equal(t, "1234567890", r.waitFor(t, "FMT", kind(osdp.ReportCard, 1), offline).Card.Text)

	pd.SetTamper(true)
	assert.True(t, r.waitFor(t, "tamper", kind(osdp.ReportTamper, 1), offline).Active)
	pd.SetPower(true)
	assert.True(t, r.waitFor(t, "power", kind(osdp.ReportPower, 1), offline).Active)
	pd.SetTamper(false)
	assert.False(t, r.waitFor(t, "tamper cleared", kind(osdp.ReportTamper, 1), offline).Active)
	st = status(t, r.bus, 1)
	assert.False(t, st.Tamper)
	assert.True(t, st.PowerFault)

	require.NoError(t, r.bus.Feedback(1, osdp.FeedbackGrant))
	led, buz := osdp.FeedbackCommands(osdp.FeedbackGrant)
	assert.Equal(t, led.Encode(), r.waitCmd(t, osdp.CmdLED).Data, "LED sent encrypted, decrypted by the reader")
	assert.Equal(t, buz.Encode(), r.waitCmd(t, osdp.CmdBUZ).Data)
	require.NoError(t, r.bus.Output(1, osdp.Output{Number: 0, Action: osdp.OutputPulseOn, Timer: 2 * time.Second}))
	assert.Equal(t, []byte{0, 5, 20, 0}, r.waitCmd(t, osdp.CmdOUT).Data)

	assert.ErrorIs(t, r.bus.LED(9, osdp.LED{}), osdp.ErrUnknownReader)
}

func TestTwoReadersOnOneBus(t *testing.T) {
	r, pds := newRig(t, rigConfig{
		baud:    9600,
		readers: []osdp.ReaderConfig{secureReader("in", 1, key1), secureReader("out", 2, key2)},
		pds:     []osdpsim.Config{{Addr: 1, Key: key1}, {Addr: 2, Key: key2}},
	})
	seen := map[byte]bool{}
	for len(seen) < 2 {
		seen[r.waitFor(t, "both online", func(rep osdp.Report) bool { return rep.Kind == osdp.ReportOnline }, offline).Addr] = true
	}
	pds[1].PresentWiegand(h10301, 26)
	rep := r.waitFor(t, "card on 2", func(rep osdp.Report) bool { return rep.Kind == osdp.ReportCard }, offline)
	assert.Equal(t, byte(2), rep.Addr)
	assert.Equal(t, "out", rep.Reader)
	pds[0].PressKeys("7")
	rep = r.waitFor(t, "key on 1", func(rep osdp.Report) bool { return rep.Kind == osdp.ReportKeypad }, offline)
	assert.Equal(t, byte(1), rep.Addr)
}

func TestRefusedReaders(t *testing.T) {
	tests := []struct {
		name   string
		reader osdp.ReaderConfig
		pd     osdpsim.Config
		why    osdp.Reason
	}{
		{"wrong key", secureReader("r", 3, key1), osdpsim.Config{Addr: 3, Key: key2}, osdp.ReasonWrongKey},
		{"no secure channel", secureReader("r", 3, key1), osdpsim.Config{Addr: 3, NoSecureChannel: true}, osdp.ReasonNoSecureChannel},
		{"default key asked of a keyed reader", osdp.ReaderConfig{Name: "r", Addr: 3, Install: true}, osdpsim.Config{Addr: 3, Key: key2}, osdp.ReasonWrongKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newRig(t, rigConfig{readers: []osdp.ReaderConfig{tt.reader}, pds: []osdpsim.Config{tt.pd}})
			rep := r.waitFor(t, "refusal", kind(osdp.ReportOffline, 3), kind(osdp.ReportOnline, 3))
			assert.Equal(t, tt.why, rep.Reason)
			assert.ErrorIs(t, rep.Err, osdp.ErrRefused)
			st := status(t, r.bus, 3)
			assert.False(t, st.Online)
			assert.Equal(t, tt.why, st.Reason)
			assert.ErrorIs(t, r.bus.LED(3, osdp.LED{}), osdp.ErrOffline)
		})
	}
}

func TestPlaintextReaderWhenConfigured(t *testing.T) {
	r, pds := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{{Name: "old", Addr: 0, Secure: osdp.SecureOff}},
		pds:     []osdpsim.Config{{Addr: 0, NoSecureChannel: true}},
	})
	on := r.waitFor(t, "online", kind(osdp.ReportOnline, 0), offline)
	assert.False(t, on.Secure)
	assert.False(t, status(t, r.bus, 0).Secure)
	pds[0].PresentWiegand(h10301, 26)
	assert.Equal(t, 26, r.waitFor(t, "card", kind(osdp.ReportCard, 0), offline).Card.Bits)
}

// Transient faults: the reader stays online, and the card arrives exactly once.
func TestTransientFaults(t *testing.T) {
	tests := []struct {
		name  string
		f     osdpsim.Faults
		check func(*testing.T, osdp.ReaderStatus)
	}{
		{"late reply", osdpsim.Faults{LateReplies: 2}, func(t *testing.T, s osdp.ReaderStatus) { assert.NotZero(t, s.Timeouts) }},
		{"garbled replies", osdpsim.Faults{GarbleReplies: 3}, func(t *testing.T, s osdp.ReaderStatus) { assert.NotZero(t, s.CheckErrors) }},
		{"dropped commands", osdpsim.Faults{DropCommands: 3}, func(t *testing.T, s osdp.ReaderStatus) { assert.NotZero(t, s.Timeouts) }},
		{"dropped replies", osdpsim.Faults{DropReplies: 3}, func(t *testing.T, s osdp.ReaderStatus) { assert.NotZero(t, s.Timeouts) }},
		{"busy", osdpsim.Faults{Busy: 3}, func(t *testing.T, s osdp.ReaderStatus) { assert.EqualValues(t, 3, s.Busy) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, pds := newRig(t, rigConfig{
				readers: []osdp.ReaderConfig{secureReader("r", 1, key1)},
				pds:     []osdpsim.Config{{Addr: 1, Key: key1}},
			})
			r.waitFor(t, "online", kind(osdp.ReportOnline, 1), offline)
			pds[0].SetFaults(tt.f)
			pds[0].PresentWiegand(h10301, 26)
			r.waitFor(t, "card", kind(osdp.ReportCard, 1), offline)
			pds[0].PressKeys("5") // a second report proves the card was not repeated
			r.waitFor(t, "key after the card", kind(osdp.ReportKeypad, 1), func(rep osdp.Report) bool {
				return offline(rep) || rep.Kind == osdp.ReportCard
			})
			st := status(t, r.bus, 1)
			assert.True(t, st.Online)
			tt.check(t, st)
		})
	}
}

func TestReaderResetMidSession(t *testing.T) {
	r, pds := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{secureReader("r", 1, key1)},
		pds:     []osdpsim.Config{{Addr: 1, Key: key1}},
	})
	r.waitFor(t, "online", kind(osdp.ReportOnline, 1), offline)
	pds[0].Reset()
	rep := r.waitFor(t, "offline", kind(osdp.ReportOffline, 1), nil)
	assert.Equal(t, osdp.ReasonNAK, rep.Reason)
	assert.Equal(t, osdp.NAKSequence, rep.NAK)
	assert.True(t, r.waitFor(t, "back online", kind(osdp.ReportOnline, 1), offline).Secure)
	pds[0].PresentWiegand(h10301, 26)
	r.waitFor(t, "card", kind(osdp.ReportCard, 1), offline)
}

func TestMACFailureDropsTheSession(t *testing.T) {
	r, pds := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{secureReader("r", 1, key1)},
		pds:     []osdpsim.Config{{Addr: 1, Key: key1}},
	})
	r.waitFor(t, "online", kind(osdp.ReportOnline, 1), offline)
	pds[0].SetFaults(osdpsim.Faults{BadMAC: 1})
	rep := r.waitFor(t, "offline", kind(osdp.ReportOffline, 1), nil)
	assert.Equal(t, osdp.ReasonMAC, rep.Reason)
	assert.ErrorIs(t, rep.Err, osdp.ErrMAC)
	r.waitFor(t, "back online", kind(osdp.ReportOnline, 1), offline)
}

// A reader without a reply cache (libosdp's PD) answers the CP's repeat of
// a command whose reply was lost with NAK 6 in plaintext and drops its
// session. The bus sets up a new session at once without reporting the
// reader offline (it never stopped answering) and counts it; a second drop
// within the minute is reported as the fault it may be.
func TestLostReplyToAReaderWithoutReplyCache(t *testing.T) {
	r, pds := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{secureReader("r", 1, key1)},
		pds:     []osdpsim.Config{{Addr: 1, Key: key1, NoReplyCache: true}},
	})
	r.waitFor(t, "online", kind(osdp.ReportOnline, 1), offline)
	r.waitCmd(t, osdp.CmdLSTAT) // the last command of the start-up
	pds[0].SetFaults(osdpsim.Faults{DropReplies: 1})
	// A card in the lost reply would be gone (the reader handed it out),
	// so it is presented once the new session is being set up.
	r.waitCmd(t, osdp.CmdCHLNG)
	pds[0].PresentWiegand(h10301, 26)
	r.waitFor(t, "card after the session restart", kind(osdp.ReportCard, 1), offline)
	st := status(t, r.bus, 1)
	assert.Equal(t, uint64(1), st.SessionRestarts)
	assert.True(t, st.Online)
	assert.True(t, st.Secure)
	assert.Zero(t, st.CheckErrors)

	pds[0].SetFaults(osdpsim.Faults{DropReplies: 1})
	rep := r.waitFor(t, "second drop reported", kind(osdp.ReportOffline, 1), nil)
	assert.Equal(t, osdp.ReasonMAC, rep.Reason)
	assert.Equal(t, osdp.NAKSCCond, rep.NAK)
	assert.True(t, r.waitFor(t, "back online", kind(osdp.ReportOnline, 1), offline).Secure)
	assert.Equal(t, uint64(1), status(t, r.bus, 1).SessionRestarts)
}

// Readers that stop answering cost the bus a reply timeout per turn. They
// must not starve a reader that still answers: a libosdp reader ends its
// secure session after 0.8 s without a command, and would then flap
// offline and online until the silent ones are given up.
func TestSilentReadersDoNotStarveAnsweringOnes(t *testing.T) {
	readers := []osdp.ReaderConfig{secureReader("r", 1, key1)}
	for a := byte(2); a <= 6; a++ {
		readers = append(readers, secureReader(fmt.Sprintf("gone%d", a), a, key1))
	}
	r, pds := newRig(t, rigConfig{
		readers: readers,
		pds:     []osdpsim.Config{{Addr: 1, Key: key1, NoReplyCache: true, SessionTimeout: 800 * time.Millisecond}},
	})
	r.waitFor(t, "online", kind(osdp.ReportOnline, 1), offline)
	gone := map[byte]bool{}
	r.waitFor(t, "the silent readers offline", func(rep osdp.Report) bool {
		if rep.Kind == osdp.ReportOffline && rep.Addr != 1 {
			gone[rep.Addr] = true
		}
		return len(gone) == 5
	}, kind(osdp.ReportOffline, 1))
	pds[0].PresentWiegand(h10301, 26)
	r.waitFor(t, "card", kind(osdp.ReportCard, 1), kind(osdp.ReportOffline, 1))
	assert.Zero(t, pds[0].SessionTimeouts(), "the answering reader's session timed out")
	assert.Zero(t, status(t, r.bus, 1).SessionRestarts)
}

// A reader that dies while another loses one reply (found against
// libosdp's PD on a shared line): the one that lost its reply must get its
// repeat at once, not wait behind the dead one's timeouts until that is
// given up (7.7 s, past libosdp's 0.8 s session timeout).
func TestLostReplyNotHeldBehindADeadReader(t *testing.T) {
	libosdp := func(addr byte) osdpsim.Config {
		return osdpsim.Config{Addr: addr, Key: key1, NoReplyCache: true, SessionTimeout: 800 * time.Millisecond}
	}
	r, pds := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{secureReader("a", 1, key1), secureReader("d", 2, key1), secureReader("b", 3, key1)},
		pds:     []osdpsim.Config{libosdp(1), libosdp(2), libosdp(3)},
	})
	up := map[byte]bool{}
	r.waitFor(t, "all online", func(rep osdp.Report) bool {
		if rep.Kind == osdp.ReportOnline {
			up[rep.Addr] = true
		}
		return len(up) == 3
	}, offline)
	pds[1].SetFaults(osdpsim.Faults{Silent: true})
	pds[2].SetFaults(osdpsim.Faults{DropReplies: 1})
	r.waitFor(t, "the dead reader offline", kind(osdp.ReportOffline, 2), func(rep osdp.Report) bool {
		return rep.Kind == osdp.ReportOffline && rep.Addr != 2
	})
	pds[2].PresentWiegand(h10301, 26)
	r.waitFor(t, "card on the reader that lost a reply", kind(osdp.ReportCard, 3), func(rep osdp.Report) bool {
		return rep.Kind == osdp.ReportOffline && rep.Addr != 2
	})
	for i, pd := range []*osdpsim.PD{pds[0], pds[2]} {
		assert.Zero(t, pd.SessionTimeouts(), "reader %d's session timed out", i)
	}
}

func TestOfflineWithinTheSpecLimit(t *testing.T) {
	r, pds := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{secureReader("r", 1, key1)},
		pds:     []osdpsim.Config{{Addr: 1, Key: key1}},
	})
	r.waitFor(t, "online", kind(osdp.ReportOnline, 1), offline)
	pds[0].SetFaults(osdpsim.Faults{Silent: true})
	rep := r.waitFor(t, "offline", kind(osdp.ReportOffline, 1), nil)
	assert.Equal(t, osdp.ReasonTimeout, rep.Reason)
	// Simulated time runs ahead of the test, so measure from the reader's
	// last answer, not from when the test unplugged it.
	lag := rep.At.Sub(status(t, r.bus, 1).LastReply)
	assert.GreaterOrEqual(t, lag, osdp.DefaultOfflineAfter-osdp.DefaultPollInterval, "not before the limit")
	assert.LessOrEqual(t, lag, osdp.DefaultOfflineAfter+osdp.DefaultReplyTimeout+osdp.DefaultPollInterval, "within the spec's 8 s")
	assert.ErrorIs(t, r.bus.Feedback(1, osdp.FeedbackDeny), osdp.ErrOffline)

	pds[0].SetFaults(osdpsim.Faults{})
	back := r.waitFor(t, "online again", kind(osdp.ReportOnline, 1), offline)
	assert.True(t, back.Secure, "online only with the channel re-established")
}

func TestForeverBusyReaderGoesOffline(t *testing.T) {
	r, pds := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{secureReader("r", 1, key1)},
		pds:     []osdpsim.Config{{Addr: 1, Key: key1}},
	})
	r.waitFor(t, "online", kind(osdp.ReportOnline, 1), offline)
	pds[0].SetFaults(osdpsim.Faults{Busy: 1 << 30})
	rep := r.waitFor(t, "offline", kind(osdp.ReportOffline, 1), nil)
	assert.Equal(t, osdp.ReasonTimeout, rep.Reason)
	assert.ErrorContains(t, rep.Err, "busy")
}

func TestAbsentReaderIsReportedOffline(t *testing.T) {
	r, _ := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{secureReader("here", 1, key1), secureReader("missing", 9, key2)},
		pds:     []osdpsim.Config{{Addr: 1, Key: key1}},
	})
	rep := r.waitFor(t, "missing offline", kind(osdp.ReportOffline, 9), nil)
	assert.Equal(t, osdp.ReasonTimeout, rep.Reason)
	assert.True(t, status(t, r.bus, 1).Online, "a dead reader does not take the bus down")
}

func TestRekeyFromInstallMode(t *testing.T) {
	r, pds := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{{Name: "new", Addr: 4, Install: true}},
		pds:     []osdpsim.Config{{Addr: 4, Install: true}},
	})
	r.waitFor(t, "online under SCBK-D", kind(osdp.ReportOnline, 4), offline)
	assert.True(t, status(t, r.bus, 4).DefaultKey)

	require.NoError(t, r.bus.Rekey(context.Background(), 4, key2))
	k, install := pds[0].Key()
	assert.Equal(t, key2, k)
	assert.False(t, install)
	st := status(t, r.bus, 4)
	assert.True(t, st.Online)
	assert.False(t, st.DefaultKey)
	pds[0].PresentWiegand(h10301, 26)
	r.waitFor(t, "card under the new key", kind(osdp.ReportCard, 4), offline)
}

func TestRekeyNotProven(t *testing.T) {
	r, pds := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{{Name: "new", Addr: 4, Install: true}},
		pds:     []osdpsim.Config{{Addr: 4, Install: true}},
	})
	r.waitFor(t, "online under SCBK-D", kind(osdp.ReportOnline, 4), offline)
	pds[0].SetFaults(osdpsim.Faults{IgnoreKeyset: true})
	err := r.bus.Rekey(context.Background(), 4, key2)
	assert.ErrorIs(t, err, osdp.ErrKeyNotProven)
}

func TestInstall(t *testing.T) {
	clock := simtime.New()
	pd := osdpsim.NewPD(osdpsim.Config{Addr: 4, Install: true, Identity: hid})
	line := osdpsim.NewLine(clock, 115200, pd)
	cfg := osdp.Config{Port: line, Baud: 115200, Clock: clock}
	require.NoError(t, osdp.Install(context.Background(), cfg, 4, key2))
	k, install := pd.Key()
	assert.Equal(t, key2, k)
	assert.False(t, install)
	err := osdp.Install(context.Background(), cfg, 4, key1)
	assert.ErrorIs(t, err, osdp.ErrRefused, "a reader out of install mode refuses SCBK-D")
	k, _ = pd.Key()
	assert.Equal(t, key2, k)
}

func TestSetComm(t *testing.T) {
	r, pds := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{secureReader("r", 1, key1)},
		pds:     []osdpsim.Config{{Addr: 1, Key: key1}},
	})
	r.waitFor(t, "online", kind(osdp.ReportOnline, 1), offline)
	require.NoError(t, r.bus.SetComm(context.Background(), 1, 7, 115200))
	assert.Equal(t, byte(7), pds[0].Addr())
	assert.Equal(t, byte(7), r.bus.Status()[0].Addr)
	pds[0].PresentWiegand(h10301, 26)
	r.waitFor(t, "card at the new address", kind(osdp.ReportCard, 7), offline)
	assert.Error(t, r.bus.SetComm(context.Background(), 7, 8, 9600), "a new baud needs a new bus")
}

func TestDirectionControl(t *testing.T) {
	r, _ := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{secureReader("r", 1, key1)},
		pds:     []osdpsim.Config{{Addr: 1, Key: key1}},
		tune:    func(c *osdp.Config) { c.Direction = osdp.Direction{Mode: osdp.DirectionRTS} },
	})
	r.waitFor(t, "online", kind(osdp.ReportOnline, 1), offline)
	rts := r.line.RTS()
	require.Greater(t, len(rts), 4)
	assert.False(t, rts[0], "receive at start")
	for i := 1; i+1 < len(rts); i += 2 {
		assert.True(t, rts[i], "transmit on for a frame")
		assert.False(t, rts[i+1], "and off after it")
	}
}

func TestConfigErrors(t *testing.T) {
	line := osdpsim.NewLine(nil, 9600)
	good := osdp.ReaderConfig{Name: "r", Addr: 1, Key: key1}
	tests := []struct {
		name string
		cfg  osdp.Config
		want string
	}{
		{"no port", osdp.Config{Baud: 9600, Readers: []osdp.ReaderConfig{good}}, "no port"},
		{"baud", osdp.Config{Port: line, Baud: 4800, Readers: []osdp.ReaderConfig{good}}, "baud"},
		{"no readers", osdp.Config{Port: line, Baud: 9600}, "no readers"},
		{"address", osdp.Config{Port: line, Baud: 9600, Readers: []osdp.ReaderConfig{{Name: "r", Addr: 127, Key: key1}}}, "address 127"},
		{"duplicate", osdp.Config{Port: line, Baud: 9600, Readers: []osdp.ReaderConfig{good, good}}, "used twice"},
		{"no key", osdp.Config{Port: line, Baud: 9600, Readers: []osdp.ReaderConfig{{Name: "r", Addr: 1}}}, "no key"},
		{"pin without pin", osdp.Config{Port: line, Baud: 9600, Readers: []osdp.ReaderConfig{good}, Direction: osdp.Direction{Mode: osdp.DirectionPin}}, "without a pin"},
		{"offline beyond spec", osdp.Config{Port: line, Baud: 9600, Readers: []osdp.ReaderConfig{good}, OfflineAfter: 10 * time.Second}, "8 s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := osdp.NewBus(tt.cfg)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}
