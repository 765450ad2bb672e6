package osdp

import (
	"errors"
	"fmt"
	"time"
)

// Frame layout constants (OSDP v2.2 §5.7).
const (
	som  = 0x53 // start of message
	mark = 0xFF // optional mark byte before SOM (v2.2); not counted in length or check

	ctrlSeq = 0x03 // sequence number bits
	ctrlCRC = 0x04 // set: 16-bit CRC; clear: 8-bit checksum
	ctrlSCB = 0x08 // a security control block follows the header

	replyBit = 0x80 // address bit set on every PD reply

	// Broadcast is the address every PD answers (the reply carries its own address).
	Broadcast = 0x7F
	// MaxAddr is the highest address a PD may own.
	MaxAddr = 0x7E

	headerLen = 5 // SOM, ADDR, LEN_LSB, LEN_MSB, CTRL
	minFrame  = headerLen + 1 + 1

	// MaxFrame bounds one frame on the wire. Readers' replies are far
	// smaller; libosdp uses 256. A length field above it is rejected before
	// any byte beyond it is stored, so a hostile length cannot make us
	// allocate or wait.
	MaxFrame = 512

	macLen = 4 // the MAC on the wire is the first 4 bytes of the 16-byte C-MAC/R-MAC
)

// Security block types (OSDP v2.2 Annex D).
const (
	scsCHLNG  = 0x11 // CP → PD, handshake step 1
	scsCCRYPT = 0x12 // PD → CP, step 2
	scsSCRYPT = 0x13 // CP → PD, step 3
	scsRMACI  = 0x14 // PD → CP, step 4
	scsCmd    = 0x15 // command with MAC, no data
	scsReply  = 0x16 // reply with MAC, no data
	scsCmdEnc = 0x17 // command with MAC and encrypted data
	scsRepEnc = 0x18 // reply with MAC and encrypted data
)

// Command codes (CP → PD).
const (
	CmdPOLL   = 0x60
	CmdID     = 0x61
	CmdCAP    = 0x62
	CmdLSTAT  = 0x64
	CmdISTAT  = 0x65
	CmdOSTAT  = 0x66
	CmdOUT    = 0x68
	CmdLED    = 0x69
	CmdBUZ    = 0x6A
	CmdTEXT   = 0x6B
	CmdCOMSET = 0x6E
	CmdKEYSET = 0x75
	CmdCHLNG  = 0x76
	CmdSCRYPT = 0x77
)

// Reply codes (PD → CP).
const (
	ReplyACK     = 0x40
	ReplyNAK     = 0x41
	ReplyPDID    = 0x45
	ReplyPDCAP   = 0x46
	ReplyLSTATR  = 0x48
	ReplyISTATR  = 0x49
	ReplyOSTATR  = 0x4A
	ReplyRAW     = 0x50
	ReplyFMT     = 0x51
	ReplyKEYPPAD = 0x53
	ReplyCOM     = 0x54
	ReplyCCRYPT  = 0x76
	ReplyRMACI   = 0x78
	ReplyBUSY    = 0x79
)

// Frame errors. ParseFrame wraps them with detail.
var (
	ErrFrame    = errors.New("osdp: malformed frame")
	ErrCheck    = errors.New("osdp: CRC or checksum mismatch")
	ErrTooLong  = errors.New("osdp: frame longer than the limit")
	ErrMAC      = errors.New("osdp: MAC mismatch")
	ErrPadding  = errors.New("osdp: bad encrypted-data padding")
	ErrNotPlain = errors.New("osdp: secure message without a session")
)

// Frame is one decoded OSDP message. Slices point into the buffer it was
// parsed from.
type Frame struct {
	Addr     byte // 0–0x7F, without the reply bit
	Reply    bool // sent by a PD
	Seq      byte // 0–3
	Checksum bool // 8-bit checksum instead of CRC-16
	// SCB is the security control block: Type 0 means none. For the
	// handshake types Data holds its one data byte (key selector or
	// outcome).
	SCB  SCB
	Code byte
	Data []byte
	MAC  []byte // 4 bytes on secure messages (SCB type 0x15–0x18)

	macInput []byte // SOM … end of data: what the MAC covers
}

// SCB is a security control block.
type SCB struct {
	Type byte
	Data []byte
}

// Secure reports whether the frame carries a MAC (an established session).
func (f *Frame) Secure() bool { return f.SCB.Type >= scsCmd && f.SCB.Type <= scsRepEnc }

// CRC16 is the OSDP check: CRC-16/AUG-CCITT (polynomial 0x1021, initial
// value 0x1D0F, no reflection, no final XOR), the algorithm of libosdp's
// osdp_compute_crc16 and the values of the spec's Annex E examples. It goes
// on the wire least-significant byte first.
func CRC16(b []byte) uint16 {
	crc := uint16(0x1D0F)
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// Checksum is the 8-bit alternative: the two's complement of the byte sum.
func Checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return -s
}

// ParseFrame decodes one frame starting at SOM (a leading mark byte is
// skipped). It checks the length and the CRC or checksum; MAC and
// encryption are the session's business (Session.Open). The returned frame
// aliases b.
func ParseFrame(b []byte) (Frame, error) {
	if len(b) > 0 && b[0] == mark {
		b = b[1:]
	}
	var f Frame
	if len(b) < minFrame {
		return f, fmt.Errorf("%w: %d bytes", ErrFrame, len(b))
	}
	if b[0] != som {
		return f, fmt.Errorf("%w: no SOM", ErrFrame)
	}
	n := int(b[2]) | int(b[3])<<8
	if n > MaxFrame {
		return f, fmt.Errorf("%w: %d bytes", ErrTooLong, n)
	}
	if n != len(b) {
		return f, fmt.Errorf("%w: length field %d, frame %d bytes", ErrFrame, n, len(b))
	}
	ctrl := b[4]
	f.Addr = b[1] &^ replyBit
	f.Reply = b[1]&replyBit != 0
	f.Seq = ctrl & ctrlSeq
	f.Checksum = ctrl&ctrlCRC == 0
	end := n - 2
	if f.Checksum {
		end = n - 1
		if Checksum(b[:end]) != b[end] {
			return f, ErrCheck
		}
	} else if crc := CRC16(b[:end]); byte(crc) != b[end] || byte(crc>>8) != b[end+1] {
		return f, ErrCheck
	}
	body := b[headerLen:end]
	if ctrl&ctrlSCB != 0 {
		if len(body) < 2 || int(body[0]) < 2 || int(body[0]) > len(body) {
			return f, fmt.Errorf("%w: security block", ErrFrame)
		}
		f.SCB = SCB{Type: body[1], Data: body[2:body[0]]}
		body = body[body[0]:]
	}
	if f.Secure() {
		if len(body) < 1+macLen {
			return f, fmt.Errorf("%w: no room for MAC", ErrFrame)
		}
		f.MAC = body[len(body)-macLen:]
		body = body[:len(body)-macLen]
		f.macInput = b[:end-macLen]
	}
	if len(body) < 1 {
		return f, fmt.Errorf("%w: no command or reply code", ErrFrame)
	}
	f.Code = body[0]
	f.Data = body[1:]
	return f, nil
}

// AppendFrame encodes f onto dst, with a leading mark byte when withMark is
// set. With a session s, the frame is sent secure: its data is encrypted,
// it carries a MAC, and s's MAC chain advances; f.SCB is then chosen here.
// Without one, f.SCB is sent as given (the handshake messages).
func AppendFrame(dst []byte, f Frame, s *Session, withMark bool) ([]byte, error) {
	if f.Addr > Broadcast {
		return dst, fmt.Errorf("osdp: address %d out of range", f.Addr)
	}
	if withMark {
		dst = append(dst, mark)
	}
	start := len(dst)
	addr := f.Addr
	if f.Reply {
		addr |= replyBit
	}
	ctrl := f.Seq & ctrlSeq
	if !f.Checksum {
		ctrl |= ctrlCRC
	}
	scb := f.SCB
	if s != nil {
		scb = SCB{Type: scsCmd}
		switch {
		case f.Reply && len(f.Data) > 0:
			scb.Type = scsRepEnc
		case f.Reply:
			scb.Type = scsReply
		case len(f.Data) > 0:
			scb.Type = scsCmdEnc
		}
	}
	if scb.Type != 0 {
		ctrl |= ctrlSCB
	}
	dst = append(dst, som, addr, 0, 0, ctrl)
	if scb.Type != 0 {
		dst = append(dst, byte(2+len(scb.Data)), scb.Type)
		dst = append(dst, scb.Data...)
	}
	dst = append(dst, f.Code)
	if s != nil && len(f.Data) > 0 {
		dst = s.encrypt(dst, f.Data, !f.Reply)
	} else {
		dst = append(dst, f.Data...)
	}
	check := 2
	if f.Checksum {
		check = 1
	}
	extra := check
	if s != nil {
		extra += macLen
	}
	n := len(dst) - start + extra
	if n > MaxFrame {
		return dst[:start], fmt.Errorf("%w: %d bytes", ErrTooLong, n)
	}
	dst[start+2] = byte(n)
	dst[start+3] = byte(n >> 8)
	if s != nil {
		mac := s.mac(dst[start:], !f.Reply)
		dst = append(dst, mac[:macLen]...)
	}
	if f.Checksum {
		dst = append(dst, Checksum(dst[start:]))
	} else {
		crc := CRC16(dst[start:])
		dst = append(dst, byte(crc), byte(crc>>8))
	}
	return dst, nil
}

// Receiver assembles frames from a byte stream: it skips everything before
// SOM (mark bytes, line noise, the tail of a frame it joined late), drops a
// partial frame after an inter-character gap longer than InterChar, and
// rejects a length field outside [7, MaxFrame] at once. Its buffer is fixed;
// no input makes it allocate.
type Receiver struct {
	InterChar time.Duration // 0: no gap check
	buf       [MaxFrame]byte
	n         int
	want      int
	last      time.Time
}

// Push adds one byte received at `at` and returns a complete frame (from
// SOM) when c ends one. The frame is valid until the next Push.
func (r *Receiver) Push(c byte, at time.Time) []byte {
	if r.n > 0 && r.InterChar > 0 && at.Sub(r.last) > r.InterChar {
		r.Reset()
	}
	r.last = at
	if r.n == 0 {
		if c != som {
			return nil
		}
		r.want = 0
	}
	r.buf[r.n] = c
	r.n++
	if r.n == 4 {
		r.want = int(r.buf[2]) | int(r.buf[3])<<8
		if r.want < minFrame || r.want > MaxFrame {
			r.resync()
			return nil
		}
	}
	if r.want > 0 && r.n == r.want {
		r.n = 0
		return r.buf[:r.want]
	}
	return nil
}

// InFrame reports whether part of a frame has been received.
func (r *Receiver) InFrame() bool { return r.n > 0 }

// Reset drops a partial frame.
func (r *Receiver) Reset() { r.n, r.want = 0, 0 }

// resync drops the SOM that led to an impossible length and rescans the
// bytes after it, which may hold the real start of a frame.
func (r *Receiver) resync() {
	var tail [3]byte
	k := copy(tail[:], r.buf[1:r.n])
	r.Reset()
	for _, c := range tail[:k] {
		r.Push(c, r.last)
	}
}
