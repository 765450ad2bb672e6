package osdp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
)

// DefaultKey is SCBK-D, the published install-mode key of the OSDP
// specification (0x30…0x3F). Anyone can compute sessions with it: use it
// only to move a new reader to its own key.
var DefaultKey = [16]byte{
	0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
	0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F,
}

// Keyset key types.
const keyTypeSCBK = 0x01

// SessionKeys derives S-ENC, S-MAC1 and S-MAC2 from a Secure Channel Base
// Key and the CP's 8-byte challenge: each is AES-128-ECB under the SCBK of
// 0x01, a type byte (0x82, 0x01, 0x02), the first six challenge bytes and
// eight zero bytes (OSDP v2.2 Annex D).
func SessionKeys(scbk [16]byte, cpRandom [8]byte) (enc, mac1, mac2 [16]byte) {
	b, err := aes.NewCipher(scbk[:])
	if err != nil {
		panic(err) // a 16-byte key is always valid
	}
	derive := func(kind byte) (k [16]byte) {
		k[0], k[1] = 0x01, kind
		copy(k[2:8], cpRandom[:6])
		b.Encrypt(k[:], k[:])
		return k
	}
	return derive(0x82), derive(0x01), derive(0x02)
}

// Session is the state of one Secure Channel session, the same on both
// sides: the session keys and the running MAC chain. C-MAC is the MAC of
// the last command, R-MAC the MAC of the last reply; each message's MAC
// starts from the other side's last one, so a dropped, replayed or altered
// message breaks the chain.
type Session struct {
	enc, mac1, mac2 cipher.Block
	cpRandom        [8]byte
	pdRandom        [8]byte
	CMAC, RMAC      [16]byte
	// Scratch blocks for mac: a local array passed to cipher.Block (an
	// interface) escapes, two allocations per message.
	iv, blk [16]byte
}

// NewSession derives the session keys for one handshake. The MAC chain
// starts once Establish is called with the initial R-MAC.
func NewSession(scbk [16]byte, cpRandom, pdRandom [8]byte) *Session {
	enc, mac1, mac2 := SessionKeys(scbk, cpRandom)
	s := &Session{cpRandom: cpRandom, pdRandom: pdRandom}
	s.enc, _ = aes.NewCipher(enc[:])
	s.mac1, _ = aes.NewCipher(mac1[:])
	s.mac2, _ = aes.NewCipher(mac2[:])
	return s
}

func ecb(b cipher.Block, first, second [8]byte) (out [16]byte) {
	copy(out[:8], first[:])
	copy(out[8:], second[:])
	b.Encrypt(out[:], out[:])
	return out
}

// ClientCryptogram is the PD's proof of the key, sent in CCRYPT:
// AES(S-ENC, cpRandom ‖ pdRandom).
func (s *Session) ClientCryptogram() [16]byte { return ecb(s.enc, s.cpRandom, s.pdRandom) }

// ServerCryptogram is the CP's proof of the key, sent in SCRYPT:
// AES(S-ENC, pdRandom ‖ cpRandom).
func (s *Session) ServerCryptogram() [16]byte { return ecb(s.enc, s.pdRandom, s.cpRandom) }

// InitialRMAC is the PD's first R-MAC, sent in RMAC_I:
// AES(S-MAC2, AES(S-MAC1, server cryptogram)).
func (s *Session) InitialRMAC() [16]byte {
	r := s.ServerCryptogram()
	s.mac1.Encrypt(r[:], r[:])
	s.mac2.Encrypt(r[:], r[:])
	return r
}

// VerifyClientCryptogram checks a CCRYPT cryptogram in constant time.
func (s *Session) VerifyClientCryptogram(got []byte) bool {
	want := s.ClientCryptogram()
	return subtle.ConstantTimeCompare(got, want[:]) == 1
}

// VerifyServerCryptogram checks an SCRYPT cryptogram in constant time.
func (s *Session) VerifyServerCryptogram(got []byte) bool {
	want := s.ServerCryptogram()
	return subtle.ConstantTimeCompare(got, want[:]) == 1
}

// VerifyInitialRMAC checks an RMAC_I value in constant time.
func (s *Session) VerifyInitialRMAC(got []byte) bool {
	want := s.InitialRMAC()
	return subtle.ConstantTimeCompare(got, want[:]) == 1
}

// Establish starts the MAC chain from the initial R-MAC.
func (s *Session) Establish() { s.RMAC = s.InitialRMAC() }

// mac computes the MAC of msg (SOM through the end of the data) and
// advances the chain: a command's MAC starts from the last R-MAC and becomes
// the C-MAC, a reply's starts from the last C-MAC and becomes the R-MAC.
// The message is padded with 0x80 and zeros only when it is not a whole
// number of blocks; all blocks but the last are chained under S-MAC1, the
// last under S-MAC2.
func (s *Session) mac(msg []byte, command bool) [16]byte {
	iv, blk := &s.iv, &s.blk
	*iv = s.CMAC
	if command {
		*iv = s.RMAC
	}
	for i := 0; i < len(msg); i += 16 {
		n := copy(blk[:], msg[i:])
		if n < 16 {
			blk[n] = 0x80
			clear(blk[n+1:])
		}
		for j := range blk {
			blk[j] ^= iv[j]
		}
		if i+16 >= len(msg) {
			s.mac2.Encrypt(iv[:], blk[:])
		} else {
			s.mac1.Encrypt(iv[:], blk[:])
		}
	}
	if command {
		s.CMAC = *iv
	} else {
		s.RMAC = *iv
	}
	return *iv
}

// cryptIV is the CBC IV for a message's data: the complement of the MAC the
// message's own MAC starts from.
func (s *Session) cryptIV(command bool) (iv [16]byte) {
	src := s.CMAC
	if command {
		src = s.RMAC
	}
	for i := range iv {
		iv[i] = ^src[i]
	}
	return iv
}

// encrypt appends data padded with 0x80 and zeros to whole blocks (always at
// least one padding byte), AES-CBC encrypted under S-ENC.
func (s *Session) encrypt(dst, data []byte, command bool) []byte {
	start := len(dst)
	dst = append(dst, data...)
	dst = append(dst, 0x80)
	for (len(dst)-start)%16 != 0 {
		dst = append(dst, 0)
	}
	iv := s.cryptIV(command)
	cipher.NewCBCEncrypter(s.enc, iv[:]).CryptBlocks(dst[start:], dst[start:])
	return dst
}

// decrypt decrypts data in place with the given IV and strips the padding.
func (s *Session) decrypt(data []byte, iv [16]byte) ([]byte, error) {
	if len(data) == 0 || len(data)%16 != 0 {
		return nil, fmt.Errorf("%w: %d bytes", ErrPadding, len(data))
	}
	cipher.NewCBCDecrypter(s.enc, iv[:]).CryptBlocks(data, data)
	i := len(data) - 1
	for i > 0 && data[i] == 0 {
		i--
	}
	if data[i] != 0x80 {
		return nil, ErrPadding
	}
	return data[:i], nil
}

// Open checks a received secure frame's MAC, advances the chain and
// decrypts its data in place. A frame that fails leaves the chain broken on
// purpose: the session must be re-established.
func (s *Session) Open(f *Frame) error {
	if !f.Secure() {
		return ErrNotPlain
	}
	command := !f.Reply
	// Decryption uses the chain value before this message's MAC replaces it.
	iv := s.cryptIV(command)
	mac := s.mac(f.macInput, command)
	if subtle.ConstantTimeCompare(mac[:macLen], f.MAC) != 1 {
		return ErrMAC
	}
	if f.SCB.Type == scsCmdEnc || f.SCB.Type == scsRepEnc {
		data, err := s.decrypt(f.Data, iv)
		if err != nil {
			return err
		}
		f.Data = data
	}
	return nil
}
