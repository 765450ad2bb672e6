package desfire_test

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/portier-io/portier/hal/desfire"
)

func TestFingerprintDescribe(t *testing.T) {
	ev2 := mustHex(t, "04 01 01 12 00 1A 05  04 01 01 02 00 1A 05  04 5A 11 5A 34 61 80  BA 5A 11 5A 20  21 25")
	for _, tt := range []struct {
		name string
		f    desfire.Fingerprint
		want string
	}{
		{"a Classic", desfire.Fingerprint{SAK: 0x08}, "MIFARE Classic 1K (or a copy)"},
		{"an Ultralight", desfire.Fingerprint{SAK: 0x00}, "MIFARE Ultralight or NTAG"},
		{"an unknown ISO card", desfire.Fingerprint{SAK: 0x20, ATS: []byte{1}, VersionRefusal: "iso 6E00", SignatureRefusal: "iso 6E00"}, "ISO/IEC 14443-4 card, no originality signature"},
		{"not asked", desfire.Fingerprint{SAK: 0x20, ATS: []byte{1}}, "ISO/IEC 14443-4 card"},
		{"an EV2 without signature", desfire.Fingerprint{SAK: 0x20, ATS: []byte{1}, Version: ev2, SignatureRefusal: "status 9D"}, "DESFire EV2, no originality signature"},
		{"an original EV2", desfire.Fingerprint{SAK: 0x20, ATS: []byte{1}, Version: ev2, Signature: make([]byte, 56), Original: "NXP"}, "DESFire EV2, originality signature verified"},
		{"a forged signature", desfire.Fingerprint{SAK: 0x20, ATS: []byte{1}, Version: ev2, Signature: make([]byte, 56)}, "DESFire EV2, originality signature does NOT verify"},
		{"an odd SAK", desfire.Fingerprint{SAK: 0x01}, "ISO/IEC 14443-3 card (SAK 01)"},
	} {
		assert.Equal(t, tt.want, tt.f.Describe(), tt.name)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	clean := ""
	for _, r := range s {
		if r != ' ' {
			clean += string(r)
		}
	}
	b, err := hex.DecodeString(clean)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
