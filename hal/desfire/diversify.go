package desfire

import (
	"crypto/aes"
	"crypto/subtle"
	"fmt"
)

// DiversifyAES128 derives a card's key from a master key per NXP AN10922
// §2.2 (AES-128): the CMAC, under the master key, of 0x01 ‖ M where M is the
// diversification input (1–31 bytes). Unlike a plain CMAC the message is
// always padded to two blocks (0x80 then zeros, last block ⊕ K2); only a
// 31-byte M fills them exactly (last block ⊕ K1).
func DiversifyAES128(master, m []byte) ([]byte, error) {
	if len(master) != 16 {
		return nil, fmt.Errorf("%w: AN10922 master key of %d bytes, want 16", ErrKey, len(master))
	}
	if len(m) < 1 || len(m) > 31 {
		return nil, fmt.Errorf("%w: AN10922 diversification input of %d bytes, want 1–31", ErrKey, len(m))
	}
	b, err := aes.NewCipher(master)
	if err != nil {
		return nil, err
	}
	k1, k2 := cmacSubkeys(b)
	d := make([]byte, 32)
	d[0] = 0x01
	copy(d[1:], m)
	last := k1
	if len(m) < 31 {
		d[1+len(m)] = 0x80
		last = k2
	}
	subtle.XORBytes(d[16:], d[16:], last)
	x := make([]byte, 16)
	b.Encrypt(x, d[:16])
	subtle.XORBytes(x, x, d[16:])
	b.Encrypt(x, x)
	return x, nil
}

// DiversificationInput is the AN10922 input Portier uses: the 7-byte UID,
// the application id as sent on the wire (least significant byte first)
// and the site's system identifier.
func DiversificationInput(uid []byte, aid AID, systemID []byte) []byte {
	a := aid.Bytes()
	m := append(append([]byte(nil), uid...), a[:]...)
	return append(m, systemID...)
}
