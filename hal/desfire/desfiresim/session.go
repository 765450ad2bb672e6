package desfiresim

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"io"
	"time"

	"github.com/portier-io/portier/hal/desfire"
)

// session is the card's side of secure messaging.
type session interface {
	keyNo() byte
	// in checks and opens a command's protected payload (after header)
	// for how it travels; plainLen is the length of enciphered data
	// (EV1 needs it to find the CRC).
	in(ins byte, header, body []byte, how travel, plainLen int) ([]byte, bool)
	// out protects a successful answer.
	out(data []byte, how travel) []byte
}

// travel is how a command or answer is protected.
type travel uint8

const (
	tPlain  travel = iota // EV1: CMAC kept in step, not sent (answers: sent); EV2: nothing
	tManage               // EV1: like tPlain; EV2: MACed
	tMAC                  // MAC sent by both
	tFull                 // enciphered; EV1 with a CRC32, EV2 with padding and MAC
	tRaw                  // enciphered key cryptogram (ChangeKey): EV1 adds no CRC
)

type ev1 struct {
	s  *desfire.EV1Session
	no byte
	bs int
}

func (e *ev1) keyNo() byte { return e.no }

func (e *ev1) in(ins byte, header, body []byte, how travel, plainLen int) ([]byte, bool) {
	msg := append([]byte{ins}, header...)
	switch how {
	case tMAC:
		if len(body) < 8 {
			return nil, false
		}
		data := body[:len(body)-8]
		m := e.s.MAC(append(msg, data...))
		return data, subtle.ConstantTimeCompare(m[:8], body[len(body)-8:]) == 1
	case tFull, tRaw:
		if len(body) == 0 {
			e.s.MAC(msg)
			return nil, true
		}
		if len(body)%e.bs != 0 {
			return nil, false
		}
		plain := e.s.Decrypt(body)
		if how == tRaw {
			return plain, true
		}
		if plainLen < 0 || plainLen+4 > len(plain) {
			return nil, false
		}
		data := plain[:plainLen]
		crc := desfire.CRC32(append(msg, data...))
		if subtle.ConstantTimeCompare(crc[:], plain[plainLen:plainLen+4]) != 1 {
			return nil, false
		}
		for _, b := range plain[plainLen+4:] {
			if b != 0 {
				return nil, false
			}
		}
		return data, true
	}
	e.s.MAC(append(msg, body...))
	return body, true
}

func (e *ev1) out(data []byte, how travel) []byte {
	if how == tFull {
		crc := desfire.CRC32(append(append([]byte(nil), data...), 0x00))
		plain := append(append([]byte(nil), data...), crc[:]...)
		for len(plain)%e.bs != 0 {
			plain = append(plain, 0)
		}
		return e.s.Encrypt(plain)
	}
	m := e.s.MAC(append(append([]byte(nil), data...), 0x00))
	return append(append([]byte(nil), data...), m[:8]...)
}

type ev2 struct {
	s  *desfire.EV2Session
	no byte
}

func (e *ev2) keyNo() byte { return e.no }

func (e *ev2) in(ins byte, header, body []byte, how travel, _ int) ([]byte, bool) {
	if how == tPlain {
		return body, true
	}
	if len(body) < 8 {
		return nil, false
	}
	data, mac := body[:len(body)-8], body[len(body)-8:]
	if subtle.ConstantTimeCompare(e.s.CommandMAC(ins, append(append([]byte(nil), header...), data...)), mac) != 1 {
		return nil, false
	}
	if (how == tFull || how == tRaw) && len(data) > 0 {
		plain, err := e.s.DecryptCommand(data)
		return plain, err == nil
	}
	return data, true
}

func (e *ev2) out(data []byte, how travel) []byte {
	defer e.s.Next()
	switch how {
	case tPlain:
		return data
	case tFull:
		if len(data) > 0 {
			data = e.s.EncryptResponse(data)
		}
	}
	return append(append([]byte(nil), data...), e.s.ResponseMAC(desfire.StatusOK, data)...)
}

// authState is an authentication between its two steps.
type authState struct {
	ins   byte
	keyNo byte
	key   desfire.Key
	block cipher.Block
	rndB  []byte
	iv    []byte // EV1: the IV chained through the steps
}

func blockFor(k desfire.Key) (cipher.Block, error) {
	switch {
	case k.Type == desfire.KeyAES:
		return aes.NewCipher(k.Bytes)
	case len(k.Bytes) == 8:
		return des.NewCipher(k.Bytes)
	case len(k.Bytes) == 16:
		return des.NewTripleDESCipher(append(append([]byte(nil), k.Bytes...), k.Bytes[:8]...))
	}
	return des.NewTripleDESCipher(k.Bytes)
}

// authStart is the card's first authentication step: E(K, RndB).
func (c *Card) authStart(ins byte, data []byte) (desfire.Status, []byte, time.Duration) {
	c.sess, c.authing = nil, nil
	if len(data) < 1 || (ins == 0x71 && len(data) < 2) {
		return desfire.StatusLengthError, nil, 0
	}
	if ins == 0x71 && c.cfg.Generation == desfire.GenEV1 {
		return desfire.StatusIllegalCommand, nil, 0
	}
	keyNo := data[0] & 0x0F
	a := c.cur()
	if int(keyNo) >= len(a.keys) {
		return desfire.StatusNoSuchKey, nil, 0
	}
	k := a.keys[keyNo]
	if (ins == 0x1A) == (k.Type == desfire.KeyAES) {
		return desfire.StatusAuthenticationError, nil, 0 // the key is of the other kind
	}
	b, err := blockFor(k)
	if err != nil {
		return desfire.StatusAuthenticationError, nil, 0
	}
	n := 16
	if k.Type == desfire.KeyDES || k.Type == desfire.Key2K3DES {
		n = 8
	}
	rndB := make([]byte, n)
	if _, err := io.ReadFull(c.rand, rndB); err != nil {
		return desfire.StatusCommandAborted, nil, 0
	}
	iv := make([]byte, b.BlockSize())
	enc := make([]byte, n)
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(enc, rndB)
	st := &authState{ins: ins, keyNo: keyNo, key: k, block: b, rndB: rndB, iv: iv}
	if ins != 0x71 {
		st.iv = append([]byte(nil), enc[n-b.BlockSize():]...)
	}
	c.authing = st
	return desfire.StatusAdditionalFrame, enc, c.timing.Auth
}

// authFinish is the second step: check E(K, RndA ‖ RndB'), prove the key
// with E(K, … RndA' …), open the session.
func (c *Card) authFinish(data []byte) (desfire.Status, []byte, time.Duration) {
	st := c.authing
	c.authing = nil
	n := len(st.rndB)
	if len(data) != 2*n {
		return desfire.StatusLengthError, nil, 0
	}
	plain := make([]byte, 2*n)
	iv := st.iv
	if st.ins == 0x71 {
		iv = make([]byte, 16)
	}
	cipher.NewCBCDecrypter(st.block, iv).CryptBlocks(plain, data)
	if subtle.ConstantTimeCompare(plain[n:], desfire.RotateLeft(st.rndB)) != 1 {
		return desfire.StatusAuthenticationError, nil, c.timing.Auth
	}
	rndA := plain[:n]
	var resp []byte
	if st.ins == 0x71 {
		ti := make([]byte, 4)
		if _, err := io.ReadFull(c.rand, ti); err != nil {
			return desfire.StatusCommandAborted, nil, 0
		}
		msg := append(append(ti, desfire.RotateLeft(rndA)...), make([]byte, 12)...)
		resp = make([]byte, 32)
		cipher.NewCBCEncrypter(st.block, make([]byte, 16)).CryptBlocks(resp, msg)
		enc, mac, err := desfire.EV2SessionKeys(st.key.Bytes, rndA, st.rndB)
		if err != nil {
			return desfire.StatusCommandAborted, nil, 0
		}
		s, err := desfire.NewEV2Session(enc, mac, ti, st.keyNo)
		if err != nil {
			return desfire.StatusCommandAborted, nil, 0
		}
		c.sess = &ev2{s: s, no: st.keyNo}
	} else {
		resp = make([]byte, n)
		cipher.NewCBCEncrypter(st.block, data[len(data)-st.block.BlockSize():]).CryptBlocks(resp, desfire.RotateLeft(rndA))
		s, err := desfire.NewEV1Session(desfire.EV1SessionKey(st.key, rndA, st.rndB), st.keyNo)
		if err != nil {
			return desfire.StatusCommandAborted, nil, 0
		}
		c.sess = &ev1{s: s, no: st.keyNo, bs: st.block.BlockSize()}
	}
	c.lastAuth, c.thisAuth = c.thisAuth, resp
	c.lastRead, c.thisRead = c.thisRead, nil
	if c.cfg.Faults.ReplayAuth && c.lastAuth != nil {
		resp = c.lastAuth
	}
	return desfire.StatusOK, resp, c.timing.Auth
}
