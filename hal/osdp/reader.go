package osdp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// phase is where a reader's connection stands.
type phase uint8

const (
	phaseID     phase = iota // osdp_ID with sequence 0: (re)start the link
	phaseCap                 // osdp_CAP
	phaseChlng               // Secure Channel step 1
	phaseScrypt              // Secure Channel step 3
	phaseOnline
)

// op is a queued command.
type op struct {
	code byte
	data []byte
	key  [16]byte   // KEYSET: the new key
	done chan error // nil: nobody waits
}

func (o *op) finish(err error) {
	if o != nil && o.done != nil {
		select {
		case o.done <- err:
		default:
		}
	}
}

// reader is one PD as the bus sees it. Fields below the marker are shared
// with API callers and guarded by Bus.mu; the rest belong to Run.
type reader struct {
	cfg     ReaderConfig
	key     [16]byte
	install bool

	phase     phase
	seq       byte // sequence number of the next new command
	sentSeq   byte
	checksum  bool
	sess      *Session // established session
	hs        *Session // handshake in progress
	cpRandom  [8]byte
	pending   []byte // the frame awaiting its reply; resent as is on retry
	resent    bool   // the frame in pending went out before (its reply was lost)
	pendBuf   []byte
	cur       *op // the command in pending, nil for POLL and handshake
	needLstat bool
	proving   *op // a KEYSET acknowledged, new key not yet proven
	// installing is the Bus.Install in progress: the link runs under
	// SCBK-D and the reader is online for nobody until its new key is
	// proven.
	installing *op

	lastOK    time.Time // last valid reply, or (re)start
	next      time.Time // next turn
	backoff   time.Duration
	probing   bool // offline: probe at backoff intervals
	misses    int  // commands in a row without any reply
	silent    bool // two or more of them: Bus.pick serves it after the others
	reported  bool // an offline report stands
	offReason Reason
	restarted time.Time // the last session restart (restartSession)

	// Guarded by Bus.mu.
	online      bool
	queue       []*op
	rekey       *op
	installOp   *op  // Bus.Install's op, from the request until it ends
	installReq  *op  // asked for, not yet taken by Run
	installStop bool // the caller gave up: back to the configured key
	st          ReaderStatus
}

func newReader(rc ReaderConfig) *reader {
	return &reader{
		cfg: rc, key: rc.Key, install: rc.Install, backoff: minBackoff,
		st: ReaderStatus{Name: rc.Name, Addr: rc.Addr},
	}
}

func (r *reader) scbk() [16]byte {
	if r.install {
		return DefaultKey
	}
	return r.key
}

// reset restarts the link: sequence 0, no session.
func (r *reader) reset() {
	r.phase, r.seq = phaseID, 0
	r.sess, r.hs = nil, nil
	r.pending, r.cur = nil, nil
}

// hasKey reports whether r has a key to open a session with.
func (r *reader) hasKey() bool { return r.install || r.key != [16]byte{} }

// turn runs one exchange with r.
func (b *Bus) turn(ctx context.Context, r *reader) error {
	b.takeInstall(r)
	start := b.clock.Now()
	r.resent = r.pending != nil
	if !r.resent {
		if err := b.build(r); err != nil {
			return err
		}
	}
	f, err := b.exchange(ctx, r.cfg.Addr, r.pending, r.sentSeq)
	now := b.clock.Now()
	switch {
	case errors.Is(err, errTimeout), errors.Is(err, errGarbled):
		b.noReply(r, now, err)
		return nil
	case err != nil:
		return err
	}
	b.handle(r, f, start, now)
	return nil
}

// build encodes r's next command into r.pending.
func (b *Bus) build(r *reader) error {
	f := Frame{Addr: r.cfg.Addr, Seq: r.seq, Checksum: r.checksum}
	sess := r.sess
	keyFlag := byte(1)
	if r.install {
		keyFlag = 0 // the CP asks for SCBK-D
	}
	switch r.phase {
	case phaseID:
		f.Code, f.Data = CmdID, []byte{0}
	case phaseCap:
		f.Code, f.Data = CmdCAP, []byte{0}
	case phaseChlng:
		if _, err := io.ReadFull(b.rand, r.cpRandom[:]); err != nil {
			return fmt.Errorf("osdp: challenge: %w", err)
		}
		f.Code, f.Data = CmdCHLNG, r.cpRandom[:]
		f.SCB = SCB{Type: scsCHLNG, Data: []byte{keyFlag}}
		sess = nil
	case phaseScrypt:
		c := r.hs.ServerCryptogram()
		f.Code, f.Data = CmdSCRYPT, c[:]
		f.SCB = SCB{Type: scsSCRYPT, Data: []byte{keyFlag}}
		sess = nil
	case phaseOnline:
		b.mu.Lock()
		switch {
		case r.rekey != nil && r.proving == nil:
			r.cur = r.rekey
		case len(r.queue) > 0:
			r.cur = r.queue[0]
			r.queue = r.queue[1:]
		}
		b.mu.Unlock()
		switch {
		case r.cur != nil:
			f.Code, f.Data = r.cur.code, r.cur.data
		case r.needLstat:
			r.cur = &op{code: CmdLSTAT}
			f.Code = CmdLSTAT
		default:
			f.Code = CmdPOLL
		}
	}
	var err error
	r.pendBuf, err = AppendFrame(r.pendBuf[:0], f, sess, !b.cfg.NoMark)
	if err != nil {
		return err
	}
	r.pending, r.sentSeq = r.pendBuf, r.seq
	return nil
}

// noReply handles a command that got no valid reply: the same frame goes
// again on the reader's next turn (a PD that did answer resends its reply),
// until the reader has been silent for OfflineAfter.
func (b *Bus) noReply(r *reader, now time.Time, err error) {
	b.mu.Lock()
	if errors.Is(err, errGarbled) {
		r.st.CheckErrors++
	} else {
		r.st.Timeouts++
	}
	b.mu.Unlock()
	// One lost reply is noise: the repeat goes at once (a reader waits
	// for it, and a libosdp one drops its session after 0.8 s). A reader
	// that misses two in a row waits behind the others.
	if errors.Is(err, errGarbled) {
		r.misses = 0
	} else {
		r.misses++
	}
	r.silent = r.misses >= 2
	b.log.Debug("osdp no reply", "reader", r.cfg.Name, "addr", r.cfg.Addr, "err", err)
	switch {
	case r.probing:
		r.next = now.Add(r.backoff)
		r.backoff = min(2*r.backoff, maxBackoff)
	case now.Sub(r.lastOK) >= b.cfg.OfflineAfter:
		b.offline(r, now, ReasonTimeout, 0, fmt.Errorf("no valid reply for %v: %w", now.Sub(r.lastOK).Round(time.Millisecond), err))
	default:
		r.next = now
	}
}

// offline takes r offline and restarts its link. Readers that answer but
// lost the session start again at once; silent or refused ones are probed
// with back-off.
func (b *Bus) offline(r *reader, now time.Time, why Reason, nak NAKCode, err error) {
	// An install's failures are the installer's (Bus.Install returns
	// them): the reader's standing state and reports stay as they were.
	installing := r.installing != nil
	announce := !installing && (!r.reported || r.offReason != why)
	b.mu.Lock()
	wasOnline := r.online
	announce = announce || wasOnline
	r.online = false
	r.st.Online, r.st.Secure = false, false
	if !installing || wasOnline {
		r.st.Reason, r.st.LastError = why, err.Error()
	}
	if announce {
		r.st.Since = now
	}
	queue, rekey := r.queue, r.rekey
	r.queue, r.rekey = nil, nil
	b.mu.Unlock()
	if installing && rekey == r.installing {
		rekey = nil // finished as the install below
	}

	for _, o := range queue {
		o.finish(fmt.Errorf("%w: %s", ErrOffline, r.cfg.Name))
	}
	r.cur.finish(fmt.Errorf("%w: %s", ErrOffline, r.cfg.Name))
	switch {
	case r.proving != nil && r.proving == r.installing:
		r.proving = nil
		b.endInstall(r, fmt.Errorf("%w: %s: %w", ErrKeyNotProven, why, err))
	case r.proving != nil:
		r.proving.finish(fmt.Errorf("%w: %s: %w", ErrKeyNotProven, why, err))
		r.proving = nil
	default:
		rekey.finish(fmt.Errorf("%w: %s", ErrOffline, r.cfg.Name))
	}
	if installing && r.installing != nil && why != ReasonTimeout {
		// Refused under SCBK-D: not a reader in install mode.
		b.endInstall(r, fmt.Errorf("osdp: install %s: under the default install key: %s: %w", r.cfg.Name, why, err))
	}
	r.reset()
	r.lastOK = now
	switch why {
	case ReasonMAC, ReasonNAK:
		if nak == NAKSequence || why == ReasonMAC {
			r.next, r.probing, r.backoff = now, false, minBackoff
			break
		}
		fallthrough
	default:
		r.probing = true
		r.next = now.Add(r.backoff)
		r.backoff = min(2*r.backoff, maxBackoff)
	}
	if !installing || wasOnline {
		r.reported, r.offReason = true, why
	}
	if announce {
		b.emit(r, Report{Kind: ReportOffline, Reason: why, NAK: nak, Err: err})
	}
}

// goOnline marks r online once its link (and session) is up.
func (b *Bus) goOnline(r *reader, now time.Time, secure bool) {
	r.phase, r.needLstat = phaseOnline, true
	if r.installing != nil && r.install {
		// Up under SCBK-D for an install: the key goes at once, and the
		// reader is online for others only under it.
		b.mu.Lock()
		r.rekey = r.installing
		b.mu.Unlock()
		return
	}
	b.mu.Lock()
	was := r.online
	r.online = true
	r.st.Online, r.st.Secure, r.st.DefaultKey = true, secure, secure && r.install
	r.st.Reason, r.st.LastError = ReasonNone, ""
	if !was {
		r.st.Since = now
	}
	b.mu.Unlock()
	r.reported, r.offReason = false, ReasonNone
	r.backoff = minBackoff
	if !was {
		b.emit(r, Report{Kind: ReportOnline, Secure: secure})
	}
}

// handle processes a reply that matched r's address and sequence.
func (b *Bus) handle(r *reader, f Frame, start, now time.Time) {
	r.misses, r.silent = 0, false
	if r.sess != nil {
		switch {
		case f.Secure():
			if err := r.sess.Open(&f); err != nil {
				b.offline(r, now, ReasonMAC, 0, err)
				return
			}
		case f.Code == ReplyNAK || f.Code == ReplyBUSY:
			// A PD that lost the session answers in plaintext.
		case f.Code == ReplyACK && r.cur != nil && r.cur.code == CmdKEYSET:
			// Some PDs drop the old session before acknowledging KEYSET.
		default:
			b.offline(r, now, ReasonMAC, 0, fmt.Errorf("plaintext reply 0x%02X inside a secure session", f.Code))
			return
		}
	} else if f.Secure() {
		b.offline(r, now, ReasonProtocol, 0, errors.New("secure reply without a session"))
		return
	}
	if f.Code == ReplyBUSY {
		// Same frame, same sequence number, a little later.
		b.mu.Lock()
		r.st.Busy++
		b.mu.Unlock()
		if now.Sub(r.lastOK) >= b.cfg.OfflineAfter { // busy for good is as bad as silent
			b.offline(r, now, ReasonTimeout, 0, fmt.Errorf("busy for %v", now.Sub(r.lastOK).Round(time.Millisecond)))
			return
		}
		r.next = now.Add(busyRetry)
		return
	}
	r.pending = nil
	r.seq = r.seq%3 + 1
	r.lastOK, r.probing = now, false
	r.checksum = f.Checksum // follow a checksum-only reader
	b.mu.Lock()
	r.st.Polls++
	r.st.LastReply = now
	b.mu.Unlock()
	r.next = now
	if f.Code == ReplyNAK {
		b.nak(r, f, now)
		return
	}
	switch r.phase {
	case phaseID:
		id, err := parsePDID(f.Data)
		if f.Code != ReplyPDID || err != nil {
			b.unexpected(r, f, now, err)
			return
		}
		b.mu.Lock()
		r.st.Identity = &id
		b.mu.Unlock()
		r.phase = phaseCap
	case phaseCap:
		caps, err := parsePDCAP(f.Data)
		if f.Code != ReplyPDCAP || err != nil {
			b.unexpected(r, f, now, err)
			return
		}
		b.mu.Lock()
		r.st.Caps = caps
		id := *r.st.Identity
		b.mu.Unlock()
		b.emit(r, Report{Kind: ReportIdentity, Identity: id, Caps: caps})
		switch {
		case r.cfg.Secure == SecureOff:
			b.goOnline(r, now, false)
		case !caps.SecureChannel():
			b.offline(r, now, ReasonNoSecureChannel, 0, fmt.Errorf("%w: its capabilities list no AES-128 Secure Channel", ErrRefused))
		case !r.hasKey():
			b.offline(r, now, ReasonNoKey, 0, fmt.Errorf("%w: no key of its own yet: install it", ErrRefused))
		default:
			r.phase = phaseChlng
		}
	case phaseChlng:
		if f.Code != ReplyCCRYPT || f.SCB.Type != scsCCRYPT || len(f.Data) != 32 {
			b.unexpected(r, f, now, nil)
			return
		}
		var pdRandom [8]byte
		copy(pdRandom[:], f.Data[8:16])
		hs := NewSession(r.scbk(), r.cpRandom, pdRandom)
		if !hs.VerifyClientCryptogram(f.Data[16:32]) {
			b.offline(r, now, ReasonWrongKey, 0, fmt.Errorf("%w: its cryptogram does not match our key", ErrRefused))
			return
		}
		r.hs, r.phase = hs, phaseScrypt
	case phaseScrypt:
		if f.Code != ReplyRMACI || f.SCB.Type != scsRMACI || len(f.Data) != 16 {
			b.unexpected(r, f, now, nil)
			return
		}
		if len(f.SCB.Data) != 1 || f.SCB.Data[0] != 0x01 {
			b.offline(r, now, ReasonWrongKey, 0, fmt.Errorf("%w: it rejected our cryptogram", ErrRefused))
			return
		}
		if !r.hs.VerifyInitialRMAC(f.Data) {
			b.offline(r, now, ReasonWrongKey, 0, fmt.Errorf("%w: its initial R-MAC does not match our key", ErrRefused))
			return
		}
		r.hs.Establish()
		r.sess, r.hs = r.hs, nil
		b.goOnline(r, now, true)
		if p := r.proving; p != nil {
			r.proving = nil
			if p == r.installing {
				b.endInstall(r, nil)
				break
			}
			b.mu.Lock()
			r.rekey = nil
			b.mu.Unlock()
			p.finish(nil)
		}
	case phaseOnline:
		b.onlineReply(r, f, start, now)
	}
}

// nak handles osdp_NAK.
func (b *Bus) nak(r *reader, f Frame, now time.Time) {
	if len(f.Data) != 1 {
		b.unexpected(r, f, now, fmt.Errorf("%w: NAK of %d bytes", ErrFrame, len(f.Data)))
		return
	}
	code := NAKCode(f.Data[0])
	b.mu.Lock()
	r.st.NAKs++
	b.mu.Unlock()
	inHandshake := r.phase == phaseChlng || r.phase == phaseScrypt
	switch {
	case code == NAKSequence:
		b.offline(r, now, ReasonNAK, code, errors.New("the reader lost our sequence (it restarted?)"))
	case code == NAKCheck:
		// Our command reached it garbled: send it again (new sequence).
		// The bus's own LSTAT is owed anyway; one somebody waits for
		// (Ping) goes again like any command.
		if r.cur != nil && (r.cur.code != CmdLSTAT || r.cur.done != nil) {
			b.mu.Lock()
			r.queue = append([]*op{r.cur}, r.queue...)
			b.mu.Unlock()
		}
		r.cur = nil
	case inHandshake && code == NAKNoSC:
		b.offline(r, now, ReasonNoSecureChannel, code, fmt.Errorf("%w: it refused the security block", ErrRefused))
	case inHandshake && code == NAKSCCond:
		b.offline(r, now, ReasonWrongKey, code, fmt.Errorf("%w: it refused the handshake for this key (not in install mode?)", ErrRefused))
	case inHandshake:
		b.offline(r, now, ReasonNAK, code, fmt.Errorf("%w: handshake refused", ErrRefused))
	case r.sess != nil && code == NAKSCCond && b.restartable(r, now):
		b.restartSession(r, now)
	case r.sess != nil && code == NAKSCCond:
		b.offline(r, now, ReasonMAC, code, errors.New("the reader dropped the secure channel"))
	case r.phase == phaseOnline:
		o := r.cur
		r.cur = nil
		cmd := byte(CmdPOLL)
		if o != nil {
			cmd = o.code
			if o.code == CmdLSTAT {
				r.needLstat = false
			}
			if o == r.rekey {
				b.mu.Lock()
				r.rekey = nil
				b.mu.Unlock()
			}
		}
		o.finish(fmt.Errorf("%w: %s", ErrNAK, code))
		b.emit(r, Report{Kind: ReportNAK, NAK: code, Command: cmd})
	default:
		b.offline(r, now, ReasonNAK, code, fmt.Errorf("%w: %s", ErrNAK, code))
	}
}

// sessionRestartEvery is how often at most a reader's session is restarted
// without an offline report (restartSession).
const sessionRestartEvery = time.Minute

// restartable reports whether r's dropped session is the known cost of a
// lost reply rather than a fault: the reader answered NAK 6 (security
// conditions not met) to a command the bus sent again because its reply
// never came. A reader without a reply cache (libosdp's PD, which many
// readers embed) processes the repeat as a new command, fails its MAC
// chain and ends the session, where the specification has it answer with
// its last reply again. Not while keys or the address change, and at most
// once a minute: anything more is reported as the fault it may be.
func (b *Bus) restartable(r *reader, now time.Time) bool {
	b.mu.Lock()
	keys := r.rekey != nil
	b.mu.Unlock()
	busy := keys || r.proving != nil || r.installing != nil ||
		(r.cur != nil && (r.cur.code == CmdKEYSET || r.cur.code == CmdCOMSET))
	return r.resent && r.phase == phaseOnline && !busy &&
		(r.restarted.IsZero() || now.Sub(r.restarted) >= sessionRestartEvery)
}

// restartSession sets up a new session with a reader that is still
// answering, without reporting it offline: it stays online for callers,
// its queued commands wait for the new session, and if that cannot be set
// up the reader goes offline as usual (wasOnline), with the reason that
// stopped it. The command whose reply was lost did reach the reader; one
// somebody waits for goes again, feedback does not.
func (b *Bus) restartSession(r *reader, now time.Time) {
	b.mu.Lock()
	r.st.SessionRestarts++
	if o := r.cur; o != nil && o.done != nil {
		r.queue = append([]*op{o}, r.queue...)
	}
	b.mu.Unlock()
	b.log.Warn("osdp secure session restarted: the reader dropped it after a repeated command (its reply was lost)",
		"reader", r.cfg.Name, "addr", r.cfg.Addr)
	r.restarted, r.lastOK, r.next = now, now, now
	r.reset()
}

// unexpected handles a reply out of protocol during link set-up.
func (b *Bus) unexpected(r *reader, f Frame, now time.Time, err error) {
	b.mu.Lock()
	r.st.Unknown++
	b.mu.Unlock()
	if err == nil {
		err = fmt.Errorf("unexpected reply 0x%02X", f.Code)
	}
	b.offline(r, now, ReasonProtocol, 0, err)
}

// onlineReply handles a reply while online: reports, and the outcome of the
// command that asked for it.
func (b *Bus) onlineReply(r *reader, f Frame, start, now time.Time) {
	o := r.cur
	r.cur = nil
	if o == nil {
		r.next = start.Add(b.cfg.PollInterval)
	}
	var err error
	switch f.Code {
	case ReplyACK:
		if o != nil && o.code == CmdKEYSET {
			// The reader holds the new key now: prove it with a new session.
			r.key, r.install = o.key, false
			r.sess, r.phase, r.proving = nil, phaseChlng, o
			return
		}
	case ReplyLSTATR:
		var tamper, power bool
		if tamper, power, err = parseLSTATR(f.Data); err == nil {
			if o != nil && o.code == CmdLSTAT {
				r.needLstat = false
			}
			b.status(r, tamper, power)
		}
	case ReplyRAW, ReplyFMT, ReplyKEYPPAD:
		if r.install {
			// Under the published key anyone on the wire could have sent
			// it: a credential counts only over the reader's own key.
			b.log.Warn("osdp input under the default install key ignored", "reader", r.cfg.Name, "code", fmt.Sprintf("0x%02X", f.Code))
			break
		}
		err = b.input(r, f)
	case ReplyCOM:
		var addr byte
		var baud int
		if addr, baud, err = parseCOM(f.Data); err == nil && o != nil && o.code == CmdCOMSET {
			b.mu.Lock()
			r.cfg.Addr, r.st.Addr = addr, addr
			b.mu.Unlock()
			b.log.Info("osdp reader moved", "reader", r.cfg.Name, "addr", addr, "baud", baud)
			if baud != b.cfg.Baud {
				err = fmt.Errorf("osdp: reader now at %d baud: reopen the bus at that rate", baud)
				o.finish(err)
				return
			}
		}
	default:
		b.mu.Lock()
		r.st.Unknown++
		b.mu.Unlock()
		b.log.Warn("osdp reply ignored", "reader", r.cfg.Name, "code", fmt.Sprintf("0x%02X", f.Code))
	}
	if err != nil {
		b.mu.Lock()
		r.st.Unknown++
		b.mu.Unlock()
		b.log.Warn("osdp bad reply", "reader", r.cfg.Name, "code", fmt.Sprintf("0x%02X", f.Code), "err", err)
	}
	o.finish(err)
}

// status records LSTATR and reports changes.
func (b *Bus) status(r *reader, tamper, power bool) {
	b.mu.Lock()
	dt, dp := r.st.Tamper != tamper, r.st.PowerFault != power
	r.st.Tamper, r.st.PowerFault = tamper, power
	b.mu.Unlock()
	if dt {
		b.emit(r, Report{Kind: ReportTamper, Active: tamper})
	}
	if dp {
		b.emit(r, Report{Kind: ReportPower, Active: power})
	}
}

// input reports a card or keys.
func (b *Bus) input(r *reader, f Frame) error {
	switch f.Code {
	case ReplyKEYPPAD:
		keys, err := parseKEYPPAD(f.Data)
		if err == nil && keys != "" {
			b.emit(r, Report{Kind: ReportKeypad, Keys: keys})
		}
		return err
	}
	var c Card
	var err error
	if f.Code == ReplyRAW {
		c, err = parseRAW(f.Data)
	} else {
		c, err = parseFMT(f.Data)
	}
	if err == nil {
		b.emit(r, Report{Kind: ReportCard, Card: c})
	}
	return err
}

// Ping asks the reader at addr for its local status (osdp_LSTAT) and waits
// for the answer: proof that it answers at addr over its channel now.
func (b *Bus) Ping(ctx context.Context, addr byte) error {
	return b.call(ctx, addr, &op{code: CmdLSTAT})
}

// SetOutputs sends osdp_OUT for one or more of the reader's outputs and
// waits until the reader acknowledged it (Output queues without waiting).
func (b *Bus) SetOutputs(ctx context.Context, addr byte, outs ...Output) error {
	d := EncodeOutputs(outs)
	if len(d) == 0 {
		return errors.New("osdp: no outputs")
	}
	return b.call(ctx, addr, &op{code: CmdOUT, data: d})
}
