package osdp

import (
	"crypto/aes"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// MAC-chain and data-block vectors from libosdp's unit tests
// (goToMain/libosdp tests/unit-tests/test-sc.c), built on the NIST SP 800-38A
// F.2.1 AES-128-CBC example: key 2b7e…4f3c, IV 00…0f. They reach into the
// session's unexported MAC and cipher steps, hence this internal test.
var (
	nistKey = mustHex("2b7e151628aed2a6abf7158809cf4f3c")
	nistIV  = mustHex("000102030405060708090a0b0c0d0e0f")
	nistPT  = mustHex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51" +
		"30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func nistSession(t *testing.T) *Session {
	t.Helper()
	b, err := aes.NewCipher(nistKey)
	require.NoError(t, err)
	return &Session{enc: b, mac1: b, mac2: b}
}

func TestMACVectors(t *testing.T) {
	tests := []struct {
		name    string
		msg     []byte
		command bool
		want    string
	}{
		{"command, one block", nistPT[:16], true, "7649abac8119b246cee98e9b12e9197d"},
		{"command, four blocks", nistPT, true, "3ff1caa1681fac09120eca307586e1a7"},
		{"reply, one block", nistPT[:16], false, "7649abac8119b246cee98e9b12e9197d"},
		{"command, partial block padded", mustHex("000102030405060708090a0b0c0d0e"), true, "c5311f3d23d086ea86f5ee7f85247b40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := nistSession(t)
			if tt.command {
				copy(s.RMAC[:], nistIV)
			} else {
				copy(s.CMAC[:], nistIV)
			}
			got := s.mac(tt.msg, tt.command)
			assert.Equal(t, tt.want, hex.EncodeToString(got[:]))
			chained := s.RMAC
			if tt.command {
				chained = s.CMAC
			}
			assert.Equal(t, got, chained, "the MAC becomes the next IV")
		})
	}
}

func TestDataBlockVectors(t *testing.T) {
	tests := []struct {
		name    string
		plain   string
		command bool
		want    string
	}{
		{"command, empty data", "", true, "4c08220c79d9191022dc6674874ceaf8"},
		{"command, 15 bytes", "000102030405060708090a0b0c0d0e", true, "c5311f3d23d086ea86f5ee7f85247b40"},
		{"reply, 16 bytes", "000102030405060708090a0b0c0d0e0f", false,
			"7df76b0c1ab899b33e42f047b91b546fe2fe5bd6c1dfcdd19124f03e1a134d3b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := nistSession(t)
			// The data IV is the complement of the chain value.
			for i := range nistIV {
				if tt.command {
					s.RMAC[i] = ^nistIV[i]
				} else {
					s.CMAC[i] = ^nistIV[i]
				}
			}
			ct := s.encrypt(nil, mustHex(tt.plain), tt.command)
			assert.Equal(t, tt.want, hex.EncodeToString(ct))
			pt, err := s.decrypt(ct, s.cryptIV(tt.command))
			require.NoError(t, err)
			assert.Equal(t, tt.plain, hex.EncodeToString(pt))
		})
	}

	s := nistSession(t)
	_, err := s.decrypt(make([]byte, 15), s.cryptIV(true))
	assert.ErrorIs(t, err, ErrPadding, "not whole blocks")
	blk := make([]byte, 16) // encrypts to a block without the 0x80 marker
	s.enc.Encrypt(blk, blk)
	_, err = s.decrypt(blk, [16]byte{})
	assert.ErrorIs(t, err, ErrPadding, "no end marker")
}
