package desfire

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
)

// CommMode is how a command's data, or a file's data, travels.
type CommMode byte

// Communication modes (the file settings' values).
const (
	CommPlain CommMode = 0x00
	CommMAC   CommMode = 0x01
	CommFull  CommMode = 0x03 // enciphered
)

func (m CommMode) String() string {
	switch m {
	case CommPlain:
		return "plain"
	case CommMAC:
		return "MAC"
	case CommFull:
		return "full"
	}
	return fmt.Sprintf("CommMode(%d)", m)
}

// EV1Session is the secure-messaging state of an EV1-style session (after
// AuthenticateISO 0x1A or AuthenticateAES 0xAA): the session key and the
// one IV that every CMAC and every CBC operation, in both directions,
// chains through. Reader and card run the same operations in the same order
// and so keep the same IV. It is a building block shared by the client and
// the card model; its results are checked against published traces.
type EV1Session struct {
	block cipher.Block
	iv    []byte
	keyNo byte
}

// NewEV1Session starts a session on the session key k, IV zero.
func NewEV1Session(k Key, keyNo byte) (*EV1Session, error) {
	b, err := k.block()
	if err != nil {
		return nil, err
	}
	return &EV1Session{block: b, iv: make([]byte, b.BlockSize()), keyNo: keyNo}, nil
}

// KeyNo is the number of the key the session was opened with.
func (s *EV1Session) KeyNo() byte { return s.keyNo }

// BlockSize is 8 (DES session) or 16 (AES session).
func (s *EV1Session) BlockSize() int { return s.block.BlockSize() }

// MAC computes the CMAC of data from the current IV; the full CMAC becomes
// the IV. The wire carries its first 8 bytes.
func (s *EV1Session) MAC(data []byte) []byte {
	m := cmacIV(s.block, s.iv, data)
	s.iv = append(s.iv[:0], m...)
	return m
}

// Encrypt enciphers block-aligned data in CBC from the IV.
func (s *EV1Session) Encrypt(plain []byte) []byte {
	out, next := cbcEncrypt(s.block, s.iv, plain)
	s.iv = next
	return out
}

// Decrypt deciphers block-aligned data in CBC from the IV.
func (s *EV1Session) Decrypt(ct []byte) []byte {
	out, next := cbcDecrypt(s.block, s.iv, ct)
	s.iv = next
	return out
}

// EV2Session is the secure-messaging state of an AuthenticateEV2First
// session (NT4H2421Gx §9.1, AN12196): SesAuthENC and SesAuthMAC keys, the
// transaction identifier TI and the command counter. Commands are MACed
// over Cmd ‖ CmdCtr ‖ TI ‖ data, responses over RC ‖ CmdCtr+1 ‖ TI ‖ data;
// both MACs are truncated to the odd bytes; enciphered data uses an IV
// derived from TI and the counter. Shared by the client and the card model.
type EV2Session struct {
	enc, mac cipher.Block
	TI       [4]byte
	Ctr      uint16 // command counter, incremented after every answered command
	keyNo    byte
}

// NewEV2Session builds the state after a successful EV2First.
func NewEV2Session(encKey, macKey, ti []byte, keyNo byte) (*EV2Session, error) {
	if len(ti) != 4 {
		return nil, fmt.Errorf("%w: TI of %d bytes", ErrMalformed, len(ti))
	}
	e, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, err
	}
	m, err := aes.NewCipher(macKey)
	if err != nil {
		return nil, err
	}
	s := &EV2Session{enc: e, mac: m, keyNo: keyNo}
	copy(s.TI[:], ti)
	return s, nil
}

// KeyNo is the number of the key the session was opened with.
func (s *EV2Session) KeyNo() byte { return s.keyNo }

func (s *EV2Session) macOver(first byte, ctr uint16, data []byte) []byte {
	in := make([]byte, 0, 7+len(data))
	in = append(in, first)
	in = binary.LittleEndian.AppendUint16(in, ctr)
	in = append(in, s.TI[:]...)
	in = append(in, data...)
	return truncMAC(CMAC(s.mac, in))
}

// CommandMAC is MACt(Cmd ‖ CmdCtr ‖ TI ‖ data).
func (s *EV2Session) CommandMAC(cmd byte, data []byte) []byte { return s.macOver(cmd, s.Ctr, data) }

// ResponseMAC is MACt(RC ‖ CmdCtr+1 ‖ TI ‖ data).
func (s *EV2Session) ResponseMAC(status Status, data []byte) []byte {
	return s.macOver(byte(status), s.Ctr+1, data)
}

func (s *EV2Session) iv(l0, l1 byte, ctr uint16) []byte {
	v := make([]byte, 16)
	v[0], v[1] = l0, l1
	copy(v[2:6], s.TI[:])
	binary.LittleEndian.PutUint16(v[6:8], ctr)
	s.enc.Encrypt(v, v)
	return v
}

// EncryptCommand pads (ISO/IEC 9797-1 method 2) and enciphers command data
// under IVc = E(SesAuthENC, A5 5A ‖ TI ‖ CmdCtr ‖ 0…).
func (s *EV2Session) EncryptCommand(plain []byte) []byte {
	out, _ := cbcEncrypt(s.enc, s.iv(0xA5, 0x5A, s.Ctr), padISO(plain, 16))
	return out
}

// DecryptCommand is the card's side of EncryptCommand.
func (s *EV2Session) DecryptCommand(ct []byte) ([]byte, error) {
	if len(ct) == 0 || len(ct)%16 != 0 {
		return nil, fmt.Errorf("%w: enciphered data of %d bytes", ErrMalformed, len(ct))
	}
	out, _ := cbcDecrypt(s.enc, s.iv(0xA5, 0x5A, s.Ctr), ct)
	return unpadISO(out, 16)
}

// EncryptResponse pads and enciphers response data under
// IVr = E(SesAuthENC, 5A A5 ‖ TI ‖ CmdCtr+1 ‖ 0…).
func (s *EV2Session) EncryptResponse(plain []byte) []byte {
	out, _ := cbcEncrypt(s.enc, s.iv(0x5A, 0xA5, s.Ctr+1), padISO(plain, 16))
	return out
}

// DecryptResponse is the reader's side of EncryptResponse.
func (s *EV2Session) DecryptResponse(ct []byte) ([]byte, error) {
	if len(ct) == 0 || len(ct)%16 != 0 {
		return nil, fmt.Errorf("%w: enciphered data of %d bytes", ErrMalformed, len(ct))
	}
	out, _ := cbcDecrypt(s.enc, s.iv(0x5A, 0xA5, s.Ctr+1), ct)
	return unpadISO(out, 16)
}

// Next advances the command counter after an answered command.
func (s *EV2Session) Next() { s.Ctr++ }

// session is the client's view of either kind: protect a command, check
// and open its answer.
type session interface {
	KeyNo() byte
	// protect returns what follows the command byte: header, the
	// (enciphered) data and any MAC. raw: data is a key cryptogram that
	// already carries its CRCs (EV1 then adds none).
	protect(cmd byte, header, data []byte, mode CommMode, raw bool) []byte
	// open checks an OK answer (all frames joined) and returns its data;
	// plainLen is the expected plain length for EV1 enciphered data (-1:
	// find it from the CRC).
	open(resp []byte, mode CommMode, plainLen int) ([]byte, error)
}

func (s *EV1Session) protect(cmd byte, header, data []byte, mode CommMode, raw bool) []byte {
	msg := append(append([]byte{cmd}, header...), data...)
	out := append(append([]byte(nil), header...), data...)
	switch {
	case mode == CommFull && len(data) > 0:
		plain := data
		if !raw {
			c := CRC32(msg)
			plain = append(append([]byte(nil), data...), c[:]...)
		}
		return append(append([]byte(nil), header...), s.Encrypt(padZero(plain, s.BlockSize()))...)
	case mode == CommMAC:
		// EV1 sends the CMAC only on commands that carry data; for the rest
		// (and in plain mode) it is computed to keep the IV in step.
		m := s.MAC(msg)
		if len(data) > 0 {
			out = append(out, m[:8]...)
		}
		return out
	default:
		s.MAC(msg)
		return out
	}
}

func (s *EV1Session) open(resp []byte, mode CommMode, plainLen int) ([]byte, error) {
	if mode != CommFull {
		if len(resp) < 8 {
			return nil, fmt.Errorf("%w: answer of %d bytes has no CMAC", ErrIntegrity, len(resp))
		}
		data, mac := resp[:len(resp)-8], resp[len(resp)-8:]
		m := s.MAC(append(append([]byte(nil), data...), byte(StatusOK)))
		if !ctEqual(m[:8], mac) {
			return nil, ErrIntegrity
		}
		return data, nil
	}
	bs := s.BlockSize()
	if len(resp) == 0 || len(resp)%bs != 0 {
		return nil, fmt.Errorf("%w: enciphered answer of %d bytes", ErrIntegrity, len(resp))
	}
	plain := s.Decrypt(resp)
	if plainLen >= 0 {
		if ev1CRCAt(plain, plainLen) {
			return plain[:plainLen], nil
		}
		return nil, ErrIntegrity
	}
	for n := len(plain) - 4; n >= 0 && n >= len(plain)-4-bs; n-- {
		if ev1CRCAt(plain, n) {
			return plain[:n], nil
		}
	}
	return nil, ErrIntegrity
}

// ev1CRCAt reports whether plain is data(n) ‖ CRC32(data ‖ 00) ‖ zeros.
func ev1CRCAt(plain []byte, n int) bool {
	if n < 0 || n+4 > len(plain) {
		return false
	}
	c := CRC32(append(append([]byte(nil), plain[:n]...), byte(StatusOK)))
	if !ctEqual(c[:], plain[n:n+4]) {
		return false
	}
	for _, b := range plain[n+4:] {
		if b != 0 {
			return false
		}
	}
	return true
}

func (s *EV2Session) protect(cmd byte, header, data []byte, mode CommMode, _ bool) []byte {
	out := append([]byte(nil), header...)
	switch mode {
	case CommFull:
		if len(data) > 0 {
			out = append(out, s.EncryptCommand(data)...)
		}
		return append(out, s.CommandMAC(cmd, out)...)
	case CommMAC:
		out = append(out, data...)
		return append(out, s.CommandMAC(cmd, out)...)
	}
	return append(out, data...)
}

func (s *EV2Session) open(resp []byte, mode CommMode, plainLen int) ([]byte, error) {
	defer s.Next()
	if mode == CommPlain {
		return resp, nil
	}
	if len(resp) < 8 {
		return nil, fmt.Errorf("%w: answer of %d bytes has no MAC", ErrIntegrity, len(resp))
	}
	data, mac := resp[:len(resp)-8], resp[len(resp)-8:]
	if !ctEqual(s.ResponseMAC(StatusOK, data), mac) {
		return nil, ErrIntegrity
	}
	if mode != CommFull || len(data) == 0 {
		return data, nil
	}
	plain, err := s.DecryptResponse(data)
	if err != nil {
		return nil, err
	}
	if plainLen >= 0 && len(plain) != plainLen {
		return nil, fmt.Errorf("%w: %d bytes deciphered, want %d", ErrMalformed, len(plain), plainLen)
	}
	return plain, nil
}
