// Package osdpsim simulates OSDP readers (PDs) for tests, benchmarks and
// simulated boards. A PD answers the commands hal/osdp sends — ID, CAP,
// LSTAT, POLL, LED, BUZ, OUT, COMSET, KEYSET and the Secure Channel
// handshake — with its own session state, MAC chain and sequence checks,
// and reports cards, keys, tamper and power as a reader would. Faults can
// be injected: late, garbled and dropped replies, dropped commands, BUSY, a
// reset mid-session, a wrong key, no Secure Channel.
//
// PDs sit on a Line, an in-memory RS-485 bus in simulated time where every
// byte takes its real time at the line's baud rate, or behind Serve, which
// answers on a real byte stream (a pseudo-terminal, so the CP side runs
// through go.bug.st/serial and the kernel's termios) at real-time pacing.
package osdpsim

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/portier-io/portier/hal/osdp"
)

// Clock is the simulation's time source.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// DefaultProcessDelay is how long a simulated reader takes to start its
// reply once the command's last byte arrived. Real readers answer within a
// few milliseconds; the spec allows 200 ms.
const DefaultProcessDelay = 3 * time.Millisecond

// Config describes a simulated reader.
type Config struct {
	Addr byte
	Key  [16]byte // the reader's SCBK
	// Install: the reader accepts SCBK-D (a factory-fresh reader in
	// install mode) until it receives its own key.
	Install bool
	// NoSecureChannel: the reader cannot do Secure Channel: its PDCAP says
	// so and it NAKs security blocks.
	NoSecureChannel bool
	Identity        osdp.Identity
	ProcessDelay    time.Duration // 0: DefaultProcessDelay
	NoMark          bool          // do not send the 0xFF mark byte
	// Outputs is how many outputs (relays, open collectors) the reader
	// has; its PDCAP lists them and osdp_OUT drives them.
	Outputs int
	// NoReplyCache: a repeated command (same sequence number, after a
	// reply the CP missed) is processed again instead of answered with the
	// stored reply, as libosdp's PD does (libosdp issue 145). Under Secure
	// Channel its MAC then fails and the reader answers NAK 6 in plaintext,
	// dropping the session.
	NoReplyCache bool
	// SessionTimeout: the reader ends its secure session when no command
	// reached it for longer than this (libosdp's PD: 800 ms,
	// OSDP_PD_SC_TIMEOUT_MS); its next secure command gets NAK 6. 0: never.
	SessionTimeout time.Duration
	// OnCommand, if set, sees every command the reader accepted (after
	// decryption), from the goroutine driving the line.
	OnCommand func(Command)
}

// Faults are misbehaviours; counts apply to the next N occurrences.
type Faults struct {
	LateReplies   int           // replies start after LateBy
	LateBy        time.Duration // 0: 250 ms (past the 200 ms reply timeout)
	GarbleReplies int           // one byte of the reply is flipped (bad CRC)
	DropCommands  int           // commands the reader never hears
	DropReplies   int           // commands processed whose reply is lost
	Busy          int           // commands answered with osdp_BUSY
	Silent        bool          // the reader is unplugged
	// BadMAC corrupts the MAC of the next N secure replies, with a valid
	// CRC: what a forged or replayed message looks like.
	BadMAC int
	// IgnoreKeyset acknowledges osdp_KEYSET but keeps the old key (a
	// faulty reader: the new key cannot be proven).
	IgnoreKeyset bool
}

// Command is a command the reader accepted.
type Command struct {
	At   time.Time
	Code byte
	Data []byte
}

type card struct {
	at   time.Time
	code byte
	data []byte
}

// PD is one simulated reader. Its methods are safe for concurrent use.
type PD struct {
	mu      sync.Mutex
	cfg     Config
	addr    byte
	baud    int
	key     [16]byte
	install bool
	rnd     *rand.Rand

	lastSeq   int       // -1: expects sequence 0
	lastHeard time.Time // the last command that reached the reader (SessionTimeout)
	lastCmd   []byte
	lastReply []byte

	sess     *osdp.Session
	hs       *osdp.Session
	cpRandom [8]byte

	faults  Faults
	pending []card // card and keypad reports waiting for a poll
	tamper  bool
	power   bool
	changed bool // LSTATR owed on the next poll
	log     []Command
	resets  int
	// sessionTimeouts counts sessions ended by SessionTimeout.
	sessionTimeouts int

	// LED 0 of reader 0: its permanent state, and the temporary one with
	// when it began.
	perm, temp ledRecord
	tempAt     time.Time
	buzzUntil  time.Time // the buzzer sounds until then

	outs []output
}

// output is one of the reader's outputs: its permanent state, and a timed
// state that overrides it until an instant.
type output struct {
	perm      bool
	timed     bool
	timedTill time.Time
}

// ledRecord is one LED state of an osdp_LED record.
type ledRecord struct {
	set              bool
	on, off          time.Duration
	onColor, offColr osdp.Color
	timer            time.Duration // temporary: how long it shows
}

// LEDView is what a reader's LED shows at a moment.
type LEDView struct {
	Color    osdp.Color
	Blinking bool // alternating with another colour (or dark)
}

func (v LEDView) String() string {
	if v.Blinking {
		return v.Color.String() + " blinking"
	}
	return v.Color.String()
}

// logLimit bounds the accepted-command log a long-running reader keeps.
const logLimit = 4096

// NewPD returns a reader in its power-on state.
func NewPD(cfg Config) *PD {
	if cfg.ProcessDelay <= 0 {
		cfg.ProcessDelay = DefaultProcessDelay
	}
	return &PD{
		cfg: cfg, addr: cfg.Addr, key: cfg.Key, install: cfg.Install, lastSeq: -1,
		rnd:  rand.New(rand.NewPCG(uint64(cfg.Addr)+1, 0x05D9)),
		outs: make([]output, cfg.Outputs),
	}
}

// Addr returns the reader's current address (COMSET may change it).
func (p *PD) Addr() byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// Key returns the reader's current SCBK and whether it still accepts SCBK-D.
func (p *PD) Key() ([16]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.key, p.install
}

// Secure reports whether a Secure Channel session is established.
func (p *PD) Secure() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sess != nil
}

// SessionTimeouts returns how many secure sessions the reader ended
// because no command reached it for SessionTimeout.
func (p *PD) SessionTimeouts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sessionTimeouts
}

// SetFaults replaces the reader's faults.
func (p *PD) SetFaults(f Faults) {
	p.mu.Lock()
	p.faults = f
	p.mu.Unlock()
}

// Reset power-cycles the reader: session and sequence state are lost (key,
// address and queued cards are kept in "non-volatile memory").
func (p *PD) Reset() {
	p.mu.Lock()
	p.lastSeq, p.lastCmd, p.lastReply = -1, nil, nil
	p.sess, p.hs = nil, nil
	p.resets++
	p.mu.Unlock()
}

// PresentCard queues raw card bits (MSB first) for the next poll.
func (p *PD) PresentCard(bits int, data []byte) { p.PresentCardAt(time.Time{}, bits, data) }

// PresentCardAt queues raw card bits that the reader reports only from
// simulated time at on.
func (p *PD) PresentCardAt(at time.Time, bits int, data []byte) {
	d := []byte{0, byte(osdp.FormatWiegand), byte(bits), byte(bits >> 8)}
	d = append(d, data...)
	p.queue(card{at: at, code: osdp.ReplyRAW, data: d})
}

// PresentWiegand queues a Wiegand frame given as a number (first bit most
// significant), the form hal/wiegand uses.
func (p *PD) PresentWiegand(raw uint64, bits int) {
	p.PresentCard(bits, WiegandBytes(raw, bits))
}

// WiegandBytes packs the low `bits` bits of raw MSB first, as osdp_RAW
// carries them.
func WiegandBytes(raw uint64, bits int) []byte {
	out := make([]byte, (bits+7)/8)
	for i := range bits {
		if raw>>(bits-1-i)&1 != 0 {
			out[i/8] |= 0x80 >> (i % 8)
		}
	}
	return out
}

// PresentText queues an osdp_FMT report: characters read forward.
func (p *PD) PresentText(s string) { p.PresentFormatted(s, false) }

// PresentFormatted queues an osdp_FMT report: reader 0, the read direction
// (reverse: 1), the character count and the characters.
func (p *PD) PresentFormatted(s string, reverse bool) {
	p.queue(card{code: osdp.ReplyFMT, data: append([]byte{0, b2b(reverse), byte(len(s))}, s...)})
}

// PressKeys queues keypad digits ('0'–'9', '*', '#'), sent as the spec
// encodes them ('*' as 0x7F, '#' as 0x0D).
func (p *PD) PressKeys(keys string) {
	d := []byte{0, byte(len(keys))}
	for _, k := range []byte(keys) {
		switch k {
		case '*':
			k = 0x7F
		case '#':
			k = 0x0D
		}
		d = append(d, k)
	}
	p.queue(card{code: osdp.ReplyKEYPPAD, data: d})
}

func (p *PD) queue(c card) {
	p.mu.Lock()
	p.pending = append(p.pending, c)
	p.mu.Unlock()
}

// SetTamper sets the tamper switch; the change is reported on the next poll.
func (p *PD) SetTamper(on bool) {
	p.mu.Lock()
	p.changed = p.changed || p.tamper != on
	p.tamper = on
	p.mu.Unlock()
}

// SetPower sets the power-fault flag.
func (p *PD) SetPower(fault bool) {
	p.mu.Lock()
	p.changed = p.changed || p.power != fault
	p.power = fault
	p.mu.Unlock()
}

// Commands returns the commands accepted so far, except POLL.
func (p *PD) Commands() []Command {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Command(nil), p.log...)
}

// reply is what handle decided to send.
type reply struct {
	bytes []byte
	delay time.Duration
}

// handle processes one frame heard on the line at `at` and returns the
// reader's reply, if it sends one.
func (p *PD) handle(frame []byte, at time.Time) (reply, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.faults.Silent {
		return reply{}, false
	}
	f, err := osdp.ParseFrame(frame)
	if err != nil || f.Reply || (f.Addr != p.addr && f.Addr != osdp.Broadcast) {
		return reply{}, false // garbled, or not for us: a PD stays quiet
	}
	if p.faults.DropCommands > 0 {
		p.faults.DropCommands--
		return reply{}, false
	}
	if p.cfg.SessionTimeout > 0 && p.sess != nil && at.Sub(p.lastHeard) > p.cfg.SessionTimeout {
		p.sess = nil
		p.sessionTimeouts++
	}
	p.lastHeard = at
	var out []byte
	switch {
	case p.faults.Busy > 0:
		p.faults.Busy--
		// BUSY goes in plaintext with sequence 0; the command is not taken.
		out = p.encode(osdp.Frame{Seq: 0, Checksum: f.Checksum, Code: osdp.ReplyBUSY}, nil)
		return p.deliver(out, false), true
	case f.Seq != 0 && int(f.Seq) == p.lastSeq && bytes.Equal(frame, p.lastCmd) && !p.cfg.NoReplyCache:
		// The CP repeats a command whose reply it missed: send it again.
		out = p.lastReply
	default:
		cmd := append(p.lastCmd[:0], frame...) // before decryption rewrites frame
		out = p.process(f, at)
		p.lastSeq, p.lastCmd, p.lastReply = int(f.Seq), cmd, out
	}
	return p.deliver(out, true), true
}

// deliver applies reply faults; the stored reply stays clean so a repeat
// can succeed.
func (p *PD) deliver(out []byte, canDrop bool) reply {
	r := reply{bytes: out, delay: p.cfg.ProcessDelay}
	if canDrop && p.faults.DropReplies > 0 {
		p.faults.DropReplies--
		r.bytes = nil
	}
	if p.faults.BadMAC > 0 && r.bytes != nil && len(r.bytes) > 10 {
		start := 0
		if r.bytes[0] == 0xFF {
			start = 1
		}
		if f, err := osdp.ParseFrame(r.bytes); err == nil && f.Secure() && !f.Checksum {
			p.faults.BadMAC--
			b := append([]byte(nil), r.bytes...)
			n := len(b)
			b[n-6] ^= 0x01 // first MAC byte
			crc := osdp.CRC16(b[start : n-2])
			b[n-2], b[n-1] = byte(crc), byte(crc>>8)
			r.bytes = b
		}
	}
	if p.faults.GarbleReplies > 0 && r.bytes != nil {
		p.faults.GarbleReplies--
		r.bytes = append([]byte(nil), r.bytes...)
		r.bytes[len(r.bytes)/2] ^= 0x5A
	}
	if p.faults.LateReplies > 0 {
		p.faults.LateReplies--
		r.delay = p.faults.LateBy
		if r.delay <= 0 {
			r.delay = 250 * time.Millisecond
		}
	}
	return r
}

func (p *PD) encode(f osdp.Frame, s *osdp.Session) []byte {
	f.Addr, f.Reply = p.addr, true
	out, err := osdp.AppendFrame(nil, f, s, !p.cfg.NoMark)
	if err != nil {
		panic(err) // our own replies always fit
	}
	return out
}

// process checks sequence and security, runs the command and encodes the
// reply with the command's sequence number.
func (p *PD) process(f osdp.Frame, at time.Time) []byte {
	nak := func(code osdp.NAKCode) []byte {
		return p.encode(osdp.Frame{Seq: f.Seq, Checksum: f.Checksum, Code: osdp.ReplyNAK, Data: []byte{byte(code)}}, nil)
	}
	switch {
	case f.Seq == 0: // the CP restarts the link
		p.sess, p.hs = nil, nil
	case p.cfg.NoReplyCache && int(f.Seq) == p.lastSeq:
		// processed again (NoReplyCache)
	case p.lastSeq < 0 || int(f.Seq) != p.lastSeq%3+1:
		return nak(osdp.NAKSequence)
	}
	handshake := f.SCB.Type == 0x11 || f.SCB.Type == 0x13
	switch {
	case f.SCB.Type != 0 && p.cfg.NoSecureChannel:
		return nak(osdp.NAKNoSC)
	case f.Secure():
		if p.sess == nil {
			return nak(osdp.NAKSCCond)
		}
		if err := p.sess.Open(&f); err != nil {
			p.sess = nil // a broken chain ends the session
			return nak(osdp.NAKSCCond)
		}
	case f.SCB.Type != 0 && !handshake:
		return nak(osdp.NAKSCCond)
	case !handshake && p.sess != nil:
		return nak(osdp.NAKSCCond) // plaintext inside a session
	}
	sess := p.sess
	rep := osdp.Frame{Seq: f.Seq, Checksum: f.Checksum, Code: osdp.ReplyACK}
	if f.Code != osdp.CmdPOLL {
		if len(p.log) >= logLimit {
			p.log = append(p.log[:0], p.log[len(p.log)-logLimit/2:]...)
		}
		p.log = append(p.log, Command{At: at, Code: f.Code, Data: append([]byte(nil), f.Data...)})
		if p.cfg.OnCommand != nil {
			p.cfg.OnCommand(p.log[len(p.log)-1])
		}
	}
	var after func()
	switch f.Code {
	case osdp.CmdPOLL:
		p.poll(&rep, at)
	case osdp.CmdID:
		rep.Code, rep.Data = osdp.ReplyPDID, p.pdid()
	case osdp.CmdCAP:
		rep.Code, rep.Data = osdp.ReplyPDCAP, p.pdcap()
	case osdp.CmdLSTAT:
		rep.Code, rep.Data = osdp.ReplyLSTATR, []byte{b2b(p.tamper), b2b(p.power)}
		p.changed = false
	case osdp.CmdLED, osdp.CmdBUZ, osdp.CmdOUT:
		size := map[byte]int{osdp.CmdLED: 14, osdp.CmdBUZ: 5, osdp.CmdOUT: 4}[f.Code]
		if len(f.Data) == 0 || len(f.Data)%size != 0 {
			return p.encode(osdp.Frame{Seq: f.Seq, Checksum: f.Checksum, Code: osdp.ReplyNAK, Data: []byte{byte(osdp.NAKLength)}}, sess)
		}
		for i := 0; f.Code == osdp.CmdOUT && i < len(f.Data); i += size {
			if int(f.Data[i]) >= len(p.outs) || f.Data[i+1] > 6 {
				// No such output (or control code): the whole command is refused.
				return p.encode(osdp.Frame{Seq: f.Seq, Checksum: f.Checksum, Code: osdp.ReplyNAK, Data: []byte{byte(osdp.NAKRecord)}}, sess)
			}
		}
		for i := 0; i < len(f.Data); i += size {
			p.show(f.Code, f.Data[i:i+size], at)
		}
	case osdp.CmdCOMSET:
		if len(f.Data) != 5 || f.Data[0] > osdp.MaxAddr || !slices.Contains(osdp.Bauds, int(binary.LittleEndian.Uint32(f.Data[1:]))) {
			return p.encode(osdp.Frame{Seq: f.Seq, Checksum: f.Checksum, Code: osdp.ReplyNAK, Data: []byte{byte(osdp.NAKRecord)}}, sess)
		}
		rep.Code, rep.Data = osdp.ReplyCOM, append([]byte(nil), f.Data...)
		newAddr, baud := f.Data[0], int(binary.LittleEndian.Uint32(f.Data[1:]))
		after = func() { p.addr, p.baud = newAddr, baud }
	case osdp.CmdKEYSET:
		if sess == nil {
			return nak(osdp.NAKSCCond) // keys travel only inside a session
		}
		if len(f.Data) != 18 || f.Data[0] != 1 || f.Data[1] != 16 {
			return p.encode(osdp.Frame{Seq: f.Seq, Checksum: f.Checksum, Code: osdp.ReplyNAK, Data: []byte{byte(osdp.NAKRecord)}}, sess)
		}
		var k [16]byte
		copy(k[:], f.Data[2:])
		// Acknowledge under the old session, then forget it: the CP
		// proves the new key with a new handshake.
		after = func() {
			if !p.faults.IgnoreKeyset {
				p.key, p.install = k, false
			}
			p.sess = nil
		}
	case osdp.CmdCHLNG:
		return p.challenge(f)
	case osdp.CmdSCRYPT:
		return p.scrypt(f)
	default:
		return p.encode(osdp.Frame{Seq: f.Seq, Checksum: f.Checksum, Code: osdp.ReplyNAK, Data: []byte{byte(osdp.NAKUnknown)}}, sess)
	}
	out := p.encode(rep, sess)
	if after != nil {
		after()
	}
	return out
}

// show applies an LED or buzzer record for reader 0, LED 0.
func (p *PD) show(code byte, r []byte, at time.Time) {
	tick := func(b byte) time.Duration { return time.Duration(b) * 100 * time.Millisecond }
	switch {
	case code == osdp.CmdLED && r[0] == 0 && r[1] == 0:
		switch r[2] {
		case 1: // cancel the temporary state
			p.temp = ledRecord{}
		case 2:
			p.temp = ledRecord{set: true, on: tick(r[3]), off: tick(r[4]), onColor: osdp.Color(r[5]), offColr: osdp.Color(r[6]),
				timer: time.Duration(int(r[7])|int(r[8])<<8) * 100 * time.Millisecond}
			p.tempAt = at
		}
		if r[9] == 1 {
			p.perm = ledRecord{set: true, on: tick(r[10]), off: tick(r[11]), onColor: osdp.Color(r[12]), offColr: osdp.Color(r[13])}
		}
	case code == osdp.CmdOUT:
		o := &p.outs[r[0]]
		timer := time.Duration(int(r[2])|int(r[3])<<8) * 100 * time.Millisecond
		if r[1] == 1 || r[1] == 2 { // abort a timed operation
			o.timedTill = time.Time{}
		}
		switch r[1] {
		case 1, 3:
			o.perm = false
		case 2, 4:
			o.perm = true
		case 5, 6:
			o.timed, o.timedTill = r[1] == 5, at.Add(timer)
		}
	case code == osdp.CmdBUZ && r[0] == 0:
		switch {
		case r[1] == 1 || r[2] == 0: // off
			p.buzzUntil = time.Time{}
		case r[4] == 0: // until the next command
			p.buzzUntil = at.Add(100 * 365 * 24 * time.Hour)
		default:
			p.buzzUntil = at.Add(time.Duration(r[4]) * (tick(r[2]) + tick(r[3])))
		}
	}
}

// LED returns what the reader's LED shows at simulated time at: the
// temporary state while its timer runs, else the permanent one (dark until
// a controller sets it).
func (p *PD) LED(at time.Time) LEDView {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.perm
	if p.temp.set && at.Before(p.tempAt.Add(p.temp.timer)) {
		r = p.temp
	}
	return LEDView{Color: r.onColor, Blinking: r.off > 0 && r.offColr != r.onColor}
}

// Output reports whether output n is on at simulated time at.
func (p *PD) Output(n int, at time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n < 0 || n >= len(p.outs) {
		return false
	}
	o := p.outs[n]
	if at.Before(o.timedTill) {
		return o.timed
	}
	return o.perm
}

// Buzzing reports whether the reader's buzzer sounds at simulated time at.
func (p *PD) Buzzing(at time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return at.Before(p.buzzUntil)
}

func b2b(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// poll answers POLL with the oldest due card or keys, a status change, or ACK.
func (p *PD) poll(rep *osdp.Frame, at time.Time) {
	for i, c := range p.pending {
		if c.at.After(at) {
			continue
		}
		p.pending = append(p.pending[:i:i], p.pending[i+1:]...)
		rep.Code, rep.Data = c.code, c.data
		return
	}
	if p.changed {
		p.changed = false
		rep.Code, rep.Data = osdp.ReplyLSTATR, []byte{b2b(p.tamper), b2b(p.power)}
	}
}

func (p *PD) pdid() []byte {
	id := p.cfg.Identity
	d := append([]byte(nil), id.Vendor[:]...)
	d = append(d, id.Model, id.Version)
	d = binary.LittleEndian.AppendUint32(d, id.Serial)
	return append(d, id.Firmware[:]...)
}

func (p *PD) pdcap() []byte {
	sc := byte(1)
	if p.cfg.NoSecureChannel {
		sc = 0
	}
	caps := []byte{
		osdp.CapCardFormat, 1, 0,
		osdp.CapLED, 1, 1,
		osdp.CapAudible, 1, 1,
		osdp.CapCheckCharacter, 1, 0,
		osdp.CapSecurity, sc, 1,
		osdp.CapRxBuffer, 0x00, 0x01, // 256 bytes
		osdp.CapReaders, 0, 1,
	}
	if len(p.outs) > 0 {
		// Compliance 2: on/off and timed operation.
		caps = append(caps, osdp.CapOutputs, 2, byte(len(p.outs)))
	}
	return caps
}

// challenge answers CHLNG with CCRYPT.
func (p *PD) challenge(f osdp.Frame) []byte {
	nak := func(code osdp.NAKCode) []byte {
		return p.encode(osdp.Frame{Seq: f.Seq, Checksum: f.Checksum, Code: osdp.ReplyNAK, Data: []byte{byte(code)}}, nil)
	}
	if f.SCB.Type != 0x11 || len(f.Data) != 8 || len(f.SCB.Data) != 1 {
		return nak(osdp.NAKRecord)
	}
	key := p.key
	if f.SCB.Data[0] == 0 {
		if !p.install {
			return nak(osdp.NAKSCCond) // SCBK-D only in install mode
		}
		key = osdp.DefaultKey
	}
	p.sess = nil
	copy(p.cpRandom[:], f.Data)
	var pdRandom [8]byte
	binary.LittleEndian.PutUint64(pdRandom[:], p.rnd.Uint64())
	p.hs = osdp.NewSession(key, p.cpRandom, pdRandom)
	cuid := append(append([]byte(nil), p.cfg.Identity.Vendor[:]...), p.cfg.Identity.Model, p.cfg.Identity.Version)
	cuid = binary.LittleEndian.AppendUint32(cuid, p.cfg.Identity.Serial)
	crypt := p.hs.ClientCryptogram()
	d := append(append(cuid[:8], pdRandom[:]...), crypt[:]...)
	return p.encode(osdp.Frame{Seq: f.Seq, Checksum: f.Checksum, SCB: osdp.SCB{Type: 0x12, Data: f.SCB.Data}, Code: osdp.ReplyCCRYPT, Data: d}, nil)
}

// scrypt answers SCRYPT with RMAC_I and starts the session.
func (p *PD) scrypt(f osdp.Frame) []byte {
	if p.hs == nil || f.SCB.Type != 0x13 || len(f.Data) != 16 || !p.hs.VerifyServerCryptogram(f.Data) {
		p.hs = nil
		return p.encode(osdp.Frame{Seq: f.Seq, Checksum: f.Checksum, Code: osdp.ReplyNAK, Data: []byte{byte(osdp.NAKSCCond)}}, nil)
	}
	rmac := p.hs.InitialRMAC()
	p.hs.Establish()
	p.sess, p.hs = p.hs, nil
	return p.encode(osdp.Frame{Seq: f.Seq, Checksum: f.Checksum, SCB: osdp.SCB{Type: 0x14, Data: []byte{0x01}}, Code: osdp.ReplyRMACI, Data: rmac[:]}, nil)
}
