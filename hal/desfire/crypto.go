package desfire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/crc32"
)

// CMAC returns the NIST SP 800-38B / RFC 4493 CMAC of msg under b (AES or
// DES/TDEA), full length (one cipher block).
func CMAC(b cipher.Block, msg []byte) []byte { return cmacIV(b, nil, msg) }

// cmacIV is CMAC started from iv instead of zero: DESFire EV1 secure
// messaging chains the session IV through every CMAC it computes. iv nil
// means zero.
func cmacIV(b cipher.Block, iv, msg []byte) []byte {
	bs := b.BlockSize()
	k1, k2 := cmacSubkeys(b)
	n := (len(msg) + bs - 1) / bs
	if n == 0 {
		n = 1
	}
	last := make([]byte, bs)
	rest := msg[(n-1)*bs:]
	if len(msg) > 0 && len(rest) == bs {
		subtle.XORBytes(last, rest, k1)
	} else {
		copy(last, rest)
		last[len(rest)] = 0x80
		subtle.XORBytes(last, last, k2)
	}
	x := make([]byte, bs)
	if iv != nil {
		copy(x, iv)
	}
	for i := 0; i < n-1; i++ {
		subtle.XORBytes(x, x, msg[i*bs:(i+1)*bs])
		b.Encrypt(x, x)
	}
	subtle.XORBytes(x, x, last)
	b.Encrypt(x, x)
	return x
}

// cmacSubkeys derives K1 and K2 (SP 800-38B §6.1).
func cmacSubkeys(b cipher.Block) (k1, k2 []byte) {
	bs := b.BlockSize()
	l := make([]byte, bs)
	b.Encrypt(l, l)
	k1 = dbl(l)
	k2 = dbl(k1)
	return k1, k2
}

// dbl multiplies by x in GF(2^n): shift left one bit, reduce with Rb.
func dbl(in []byte) []byte {
	out := make([]byte, len(in))
	for i := range in {
		out[i] = in[i] << 1
		if i+1 < len(in) {
			out[i] |= in[i+1] >> 7
		}
	}
	if in[0]&0x80 != 0 {
		rb := byte(0x87) // 128-bit blocks
		if len(in) == 8 {
			rb = 0x1B
		}
		out[len(out)-1] ^= rb
	}
	return out
}

// truncMAC is EV2's MACt: the 8 odd-indexed bytes of a 16-byte CMAC
// (NT4H2421Gx §9.1.3, AN12196 "CMACt").
func truncMAC(full []byte) []byte {
	out := make([]byte, 8)
	for i := range out {
		out[i] = full[2*i+1]
	}
	return out
}

// CRC32 is the CRC DESFire appends to enciphered data and key cryptograms:
// the IEEE CRC-32 without the final inversion (JAMCRC), little-endian.
func CRC32(b []byte) [4]byte {
	c := ^crc32.ChecksumIEEE(b)
	return [4]byte{byte(c), byte(c >> 8), byte(c >> 16), byte(c >> 24)}
}

// RotateLeft returns b rotated left by one byte (RndA', RndB').
func RotateLeft(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append(append([]byte(nil), b[1:]...), b[0])
}

// padISO appends ISO/IEC 9797-1 padding method 2 (0x80 then zeros) up to a
// multiple of bs; an aligned input gets a whole extra block.
func padISO(b []byte, bs int) []byte {
	out := append(append([]byte(nil), b...), 0x80)
	for len(out)%bs != 0 {
		out = append(out, 0)
	}
	return out
}

// unpadISO removes method-2 padding: the last 0x80 followed only by zeros,
// within the last block.
func unpadISO(b []byte, bs int) ([]byte, error) {
	for i := len(b) - 1; i >= 0 && i >= len(b)-bs; i-- {
		if b[i] == 0x80 {
			return b[:i], nil
		}
		if b[i] != 0x00 {
			break
		}
	}
	return nil, fmt.Errorf("%w: bad padding", ErrIntegrity)
}

// padZero pads with zeros to a multiple of bs (EV1 enciphered data, whose
// length the reader knows).
func padZero(b []byte, bs int) []byte {
	out := append([]byte(nil), b...)
	for len(out)%bs != 0 {
		out = append(out, 0)
	}
	return out
}

// cbcEncrypt and cbcDecrypt run CBC from iv and return the output and the
// next IV (the last ciphertext block), which DESFire EV1 chains on.
func cbcEncrypt(b cipher.Block, iv, plain []byte) (out, next []byte) {
	out = make([]byte, len(plain))
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, plain)
	return out, append([]byte(nil), out[len(out)-b.BlockSize():]...)
}

func cbcDecrypt(b cipher.Block, iv, ct []byte) (out, next []byte) {
	out = make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, ct)
	return out, append([]byte(nil), ct[len(ct)-b.BlockSize():]...)
}

// KeyType is a DESFire key's cipher.
type KeyType uint8

// Key types. Portier issues AES keys and meets DES as the factory default;
// the others are here so any EV1 card can be inspected and re-issued.
const (
	KeyDES    KeyType = iota + 1 // 8 bytes, or 16 with equal halves (how cards store it)
	Key2K3DES                    // 16 bytes, two-key triple DES
	Key3K3DES                    // 24 bytes, three-key triple DES
	KeyAES                       // 16 bytes, AES-128
)

func (t KeyType) String() string {
	switch t {
	case KeyDES:
		return "DES"
	case Key2K3DES:
		return "2K3DES"
	case Key3K3DES:
		return "3K3DES"
	case KeyAES:
		return "AES"
	}
	return fmt.Sprintf("KeyType(%d)", t)
}

// Key is a card key: its type, bytes and version.
type Key struct {
	Type    KeyType
	Bytes   []byte
	Version byte // AES keys carry it explicitly; DES keys keep it in the parity bits
}

// AESKey returns an AES-128 key with a version.
func AESKey(b []byte, version byte) Key {
	return Key{Type: KeyAES, Bytes: append([]byte(nil), b...), Version: version}
}

// FactoryPICCKey is a blank card's PICC master key: DES, all zero.
func FactoryPICCKey() Key { return Key{Type: KeyDES, Bytes: make([]byte, 8)} }

// ZeroAESKey is a new application's key: AES, all zero, version 0.
func ZeroAESKey() Key { return AESKey(make([]byte, 16), 0) }

// ErrKey reports a key of the wrong size or type.
var ErrKey = errors.New("desfire: bad key")

// block returns the key's block cipher: AES, single DES, or two-key TDEA
// (K1, K2, K1), which is single DES again when both halves are equal.
func (k Key) block() (cipher.Block, error) {
	switch {
	case k.Type == KeyAES && len(k.Bytes) == 16:
		return aes.NewCipher(k.Bytes)
	case k.Type == KeyDES && len(k.Bytes) == 8:
		return des.NewCipher(k.Bytes)
	case (k.Type == KeyDES || k.Type == Key2K3DES) && len(k.Bytes) == 16:
		return des.NewTripleDESCipher(append(append([]byte(nil), k.Bytes...), k.Bytes[:8]...))
	case k.Type == Key3K3DES && len(k.Bytes) == 24:
		return des.NewTripleDESCipher(k.Bytes)
	}
	return nil, fmt.Errorf("%w: %s key of %d bytes", ErrKey, k.Type, len(k.Bytes))
}

// singleDES reports whether a DES-family key is effectively single DES,
// which decides the session key layout.
func (k Key) singleDES() bool {
	if k.Type == KeyAES || k.Type == Key3K3DES {
		return false
	}
	if len(k.Bytes) == 8 {
		return true
	}
	for i := range 8 {
		if k.Bytes[i]&0xFE != k.Bytes[i+8]&0xFE {
			return false
		}
	}
	return true
}

// cryptogramBytes is the key as ChangeKey sends it: 16 bytes for AES and
// 2K3DES, 24 for 3K3DES, a DES key doubled to 16.
func (k Key) cryptogramBytes() []byte {
	if len(k.Bytes) == 8 {
		return append(append([]byte(nil), k.Bytes...), k.Bytes...)
	}
	return append([]byte(nil), k.Bytes...)
}

// EV1SessionKey derives the session key of an EV1-style authentication
// (AuthenticateISO 0x1A, AuthenticateAES 0xAA) from the two randoms.
func EV1SessionKey(k Key, rndA, rndB []byte) Key {
	switch {
	case k.Type == Key3K3DES:
		var b []byte
		for _, r := range [][2]int{{0, 4}, {6, 10}, {12, 16}} {
			b = append(append(b, rndA[r[0]:r[1]]...), rndB[r[0]:r[1]]...)
		}
		return Key{Type: Key3K3DES, Bytes: b}
	case k.Type == KeyAES:
		b := append(append(append(append([]byte(nil), rndA[0:4]...), rndB[0:4]...), rndA[12:16]...), rndB[12:16]...)
		return Key{Type: KeyAES, Bytes: b}
	case k.singleDES():
		return Key{Type: KeyDES, Bytes: append(append([]byte(nil), rndA[0:4]...), rndB[0:4]...)}
	default:
		b := append(append(append(append([]byte(nil), rndA[0:4]...), rndB[0:4]...), rndA[4:8]...), rndB[4:8]...)
		return Key{Type: Key2K3DES, Bytes: b}
	}
}

// EV2SessionKeys derives SesAuthENCKey and SesAuthMACKey of an
// AuthenticateEV2First (NT4H2421Gx §9.1.7, AN12196 Table 14): CMAC under
// the authentication key of SV1 = A5 5A 00 01 00 80 ‖ RndA[15..14] ‖
// (RndA[13..8] ⊕ RndB[15..10]) ‖ RndB[9..0] ‖ RndA[7..0], byte 15 being
// the first; SV2 starts 5A A5.
func EV2SessionKeys(key, rndA, rndB []byte) (enc, mac []byte, err error) {
	if len(key) != 16 || len(rndA) != 16 || len(rndB) != 16 {
		return nil, nil, fmt.Errorf("%w: EV2 needs 16-byte key and randoms", ErrKey)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, err
	}
	sv := func(l0, l1 byte) []byte {
		v := []byte{l0, l1, 0x00, 0x01, 0x00, 0x80}
		v = append(v, rndA[0:2]...)
		for i := range 6 {
			v = append(v, rndA[2+i]^rndB[i])
		}
		v = append(v, rndB[6:16]...)
		return append(v, rndA[8:16]...)
	}
	return CMAC(b, sv(0xA5, 0x5A)), CMAC(b, sv(0x5A, 0xA5)), nil
}

// ctEqual compares MACs and challenges in constant time.
func ctEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// randomLen is the length of the challenges: 16 bytes for AES and 3K3DES,
// 8 for DES and 2K3DES.
func (k Key) randomLen() int {
	if k.Type == KeyAES || k.Type == Key3K3DES {
		return 16
	}
	return 8
}
