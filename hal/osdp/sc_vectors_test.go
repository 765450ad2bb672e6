package osdp_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/osdp"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

// Known-answer values of the OSDP specification's Annex E ("Examples"), as
// quoted by libosdp's unit tests (goToMain/libosdp
// tests/unit-tests/test-sc-sia-vectors.c: test_crc_vectors,
// test_checksum_vectors, test_scbkd_vectors).
func TestAnnexECheckCharacters(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		crc  string // as on the wire, LSB first
		sum  byte
	}{
		{"CRC example 1 (COMSET broadcast)", "53 7F 0D 00 04 6E 00 80 25 00 00", "6E 38", 0},
		{"CRC example 2 (ID)", "53 00 09 00 04 61 00", "C0 66", 0},
		{"checksum example 1", "53 7F 0C 00 00 6E 00 80 25 00 00", "", 0x0F},
		{"checksum example 2", "53 00 08 00 00 61 00", "", 0x44},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := unhex(t, tt.msg)
			if tt.crc != "" {
				crc := osdp.CRC16(msg)
				assert.Equal(t, unhex(t, tt.crc), []byte{byte(crc), byte(crc >> 8)})
				return
			}
			assert.Equal(t, tt.sum, osdp.Checksum(msg))
		})
	}
}

func TestAnnexESecureChannel(t *testing.T) {
	var cp, pd [8]byte
	copy(cp[:], unhex(t, "B0B1B2B3B4B5B6B7"))
	copy(pd[:], unhex(t, "A0A1A2A3A4A5A6A7"))
	assert.Equal(t, unhex(t, "303132333435363738393A3B3C3D3E3F"), osdp.DefaultKey[:], "SCBK-D")

	enc, mac1, mac2 := osdp.SessionKeys(osdp.DefaultKey, cp)
	assert.Equal(t, unhex(t, "BF8DC2A8329ACB8C67C6D0CD9A451682"), enc[:], "S-ENC")
	assert.Equal(t, unhex(t, "5E86C676603BDEE2D8BEAFE178637332"), mac1[:], "S-MAC1")
	assert.Equal(t, unhex(t, "6FDA86E857777E81132035758239172E"), mac2[:], "S-MAC2")

	s := osdp.NewSession(osdp.DefaultKey, cp, pd)
	client := s.ClientCryptogram() // "client cryptogram" (PD, in osdp_CCRYPT)
	assert.Equal(t, unhex(t, "FDE5D2F428EC16312471EA3C02BD7796"), client[:])
	server := s.ServerCryptogram() // "host cryptogram" (CP, in osdp_SCRYPT)
	assert.Equal(t, unhex(t, "26D3356E07762D262801FC8E6665A891"), server[:])
	rmac := s.InitialRMAC()
	assert.Equal(t, unhex(t, "B2A30057EB98BA2229EC1F875662B524"), rmac[:], "R-MAC-I")

	assert.True(t, s.VerifyClientCryptogram(client[:]))
	assert.True(t, s.VerifyServerCryptogram(server[:]))
	client[0] ^= 1
	assert.False(t, s.VerifyClientCryptogram(client[:]))
	assert.False(t, s.VerifyServerCryptogram(client[:8]), "short cryptogram")
}
