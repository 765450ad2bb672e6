// Package desfire is a MIFARE DESFire EV1/EV2/EV3 client over any ISO/IEC
// 14443-4 transport: native or ISO 7816-4-wrapped command framing, typed
// status errors, GetVersion, application and file commands, EV1 (ISO and
// AES) and EV2 (AuthenticateEV2First) authentication with their secure
// messaging (plain, MAC and enciphered), AN10922 key diversification,
// NXP's originality signature, and the card fingerprint and identity file
// Portier's doors use. It does not know which reader carries its frames.
//
// The crypto is checked against published vectors: NIST SP 800-38B / RFC
// 4493 (CMAC), AN10922 (diversification), AN12196 and AN12343 (EV2
// authentication and secure messaging), the DESFire EV1 traces published
// with Elmü's CodeProject door lock (EV1 authentication, CMAC chain,
// ChangeKey), and AN12343's originality signature example.
package desfire

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
)

// Transport carries one ISO/IEC 14443-4 exchange: a command INF out, the
// card's answer INF back.
type Transport interface {
	Transmit(ctx context.Context, cmd []byte) ([]byte, error)
}

// Command codes.
const (
	cmdAuthenticateISO   = 0x1A
	cmdAuthenticateAES   = 0xAA
	cmdAuthenticateEV2   = 0x71
	cmdAdditionalFrame   = 0xAF
	cmdGetVersion        = 0x60
	cmdGetCardUID        = 0x51
	cmdReadSig           = 0x3C
	cmdSelectApplication = 0x5A
	cmdGetApplicationIDs = 0x6A
	cmdCreateApplication = 0xCA
	cmdDeleteApplication = 0xDA
	cmdGetKeySettings    = 0x45
	cmdChangeKeySettings = 0x54
	cmdGetKeyVersion     = 0x64
	cmdChangeKey         = 0xC4
	cmdCreateStdDataFile = 0xCD
	cmdGetFileIDs        = 0x6F
	cmdGetFileSettings   = 0xF5
	cmdDeleteFile        = 0xDF
	cmdFormatPICC        = 0xFC
	cmdReadData          = 0xBD
	cmdWriteData         = 0x3D
)

// Frame limits. A native frame carries at most 59 data bytes after its
// status; commands longer than one frame go out in additional frames (AF).
const (
	chunkSize = 52 // command payload bytes per frame (fits FSC 64 wrapped or not)
	maxFrames = 64 // bound on AF round trips for one command (64 × 59 bytes)
)

// AID is an application identifier (24 bits). On the wire it goes least
// significant byte first.
type AID uint32

// PICCAID is the card level (the PICC master application).
const PICCAID AID = 0

// Bytes returns the AID in wire order.
func (a AID) Bytes() [3]byte { return [3]byte{byte(a), byte(a >> 8), byte(a >> 16)} }

func (a AID) String() string { return fmt.Sprintf("%06X", uint32(a)) }

// Options configure a Card.
type Options struct {
	// Native selects native framing (command byte + data). The default is
	// ISO/IEC 7816-4 wrapping (90 cmd 00 00 Lc data 00), which every
	// DESFire since EV1 accepts and which makes a non-DESFire ISO card
	// answer with a clear status word instead of guessing.
	Native bool
	// Rand provides the reader's challenges (RndA); nil: crypto/rand.
	Rand io.Reader
}

// Card is a DESFire card behind a transport. It is not safe for concurrent
// use: one card, one exchange at a time.
type Card struct {
	t    Transport
	opts Options
	rand io.Reader
	sess session
}

// New returns a client for the card behind t.
func New(t Transport, opts Options) *Card {
	r := opts.Rand
	if r == nil {
		r = rand.Reader
	}
	return &Card{t: t, opts: opts, rand: r}
}

// Authenticated reports whether a session is open and with which key.
func (c *Card) Authenticated() (keyNo byte, ok bool) {
	if c.sess == nil {
		return 0, false
	}
	return c.sess.KeyNo(), true
}

// frame sends one DESFire frame and returns the status and data.
func (c *Card) frame(ctx context.Context, cmd byte, data []byte) (Status, []byte, error) {
	var apdu []byte
	if c.opts.Native {
		apdu = append([]byte{cmd}, data...)
	} else {
		apdu = []byte{0x90, cmd, 0x00, 0x00}
		if len(data) > 0 {
			apdu = append(append(apdu, byte(len(data))), data...)
		}
		apdu = append(apdu, 0x00)
	}
	resp, err := c.t.Transmit(ctx, apdu)
	if err != nil {
		return 0, nil, fmt.Errorf("desfire: command 0x%02X: %w", cmd, err)
	}
	if c.opts.Native {
		if len(resp) < 1 {
			return 0, nil, fmt.Errorf("%w: empty answer to 0x%02X", ErrMalformed, cmd)
		}
		return Status(resp[0]), resp[1:], nil
	}
	if len(resp) < 2 {
		return 0, nil, fmt.Errorf("%w: answer of %d bytes to 0x%02X", ErrMalformed, len(resp), cmd)
	}
	sw1, sw2 := resp[len(resp)-2], resp[len(resp)-1]
	if sw1 != 0x91 {
		return 0, nil, &ISOError{Cmd: cmd, SW: uint16(sw1)<<8 | uint16(sw2)}
	}
	return Status(sw2), resp[:len(resp)-2], nil
}

// call describes one command for exchange.
type call struct {
	cmd      byte
	header   []byte   // plain parameters (also MACed)
	data     []byte   // data protected per cmdMode
	cmdMode  CommMode // how the command travels in a session
	raw      bool     // data is a key cryptogram with its own CRCs
	respMode CommMode // how the answer travels in a session
	plainLen int      // expected deciphered length (EV1), -1 unknown
	ok       Status   // success status (StatusOK, or StatusSignature for Read_Sig)
	endsAuth bool     // the command ends the session on success (changing the session's own key)
}

// exchange runs a command: protects it, splits it into frames, collects
// additional frames of the answer, and checks the answer. Any refusal ends
// the session, as it does on the card.
func (c *Card) exchange(ctx context.Context, k call) ([]byte, error) {
	var payload []byte
	if c.sess != nil {
		payload = c.sess.protect(k.cmd, k.header, k.data, k.cmdMode, k.raw)
	} else {
		payload = append(append([]byte(nil), k.header...), k.data...)
	}
	cmd := k.cmd
	var resp []byte
	var st Status
	for frames := 0; ; frames++ {
		if frames >= maxFrames {
			c.sess = nil
			return nil, fmt.Errorf("%w: more than %d frames for command 0x%02X", ErrMalformed, maxFrames, k.cmd)
		}
		n := min(len(payload), chunkSize)
		s, d, err := c.frame(ctx, cmd, payload[:n])
		if err != nil {
			c.sess = nil
			return nil, err
		}
		payload = payload[n:]
		cmd = cmdAdditionalFrame
		if s != StatusAdditionalFrame {
			st = s
			resp = append(resp, d...)
			break
		}
		if len(payload) == 0 {
			// The card has more to say.
			resp = append(resp, d...)
		} else if len(d) != 0 {
			c.sess = nil
			return nil, fmt.Errorf("%w: data in the middle of command 0x%02X", ErrMalformed, k.cmd)
		}
	}
	if len(payload) > 0 {
		c.sess = nil
		return nil, fmt.Errorf("%w: card answered 0x%02X before the whole command 0x%02X was sent", ErrMalformed, byte(st), k.cmd)
	}
	if st != k.ok { // the zero value is StatusOK
		c.sess = nil
		return nil, &CommandError{Cmd: k.cmd, Status: st}
	}
	if c.sess == nil {
		return resp, nil
	}
	if k.endsAuth {
		c.sess = nil
		return resp, nil
	}
	out, err := c.sess.open(resp, k.respMode, k.plainLen)
	if err != nil {
		c.sess = nil
		return nil, fmt.Errorf("desfire: command 0x%02X: %w", k.cmd, err)
	}
	return out, nil
}

// manageMode is how card and application management commands travel: EV2
// MACs them; EV1 only keeps its CMAC chain in step.
func (c *Card) manageMode() CommMode {
	if _, ok := c.sess.(*EV2Session); ok {
		return CommMAC
	}
	return CommPlain
}

func le24(v int) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16)} }
