package agent_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

func TestCredentialKeys(t *testing.T) {
	k := agent.PINKey("0123456789abcdef0123456789abcdef")
	tests := []struct {
		name string
		p    agent.Presented
		key  string
		err  string
	}{
		{"4-byte UID", agent.CardUID([]byte{0x04, 0xa1, 0xb2, 0xc3}), "uid:04A1B2C3", ""},
		{"7-byte UID", agent.CardUID([]byte{1, 2, 3, 4, 5, 6, 7}), "uid:01020304050607", ""},
		{"10-byte UID", agent.CardUID(make([]byte, 10)), "uid:00000000000000000000", ""},
		{"3-byte UID", agent.CardUID([]byte{1, 2, 3}), "", "UID has 3 bytes"},
		{"H10301", agent.CardWiegand(agent.Wiegand{Format: "H10301", Facility: 12, Card: 3456, Bits: 26}), "wg:H10301:12:3456", ""},
		{"lower-case format", agent.CardWiegand(agent.Wiegand{Format: "h10301", Facility: 1, Card: 2}), "wg:H10301:1:2", ""},
		{"raw frame", agent.CardWiegand(agent.Wiegand{Format: "raw", Bits: 40, Raw: 0xABCDEF0123}), "wg:raw40:ABCDEF0123", ""},
		{"raw frame too long", agent.CardWiegand(agent.Wiegand{Format: "raw", Bits: 65}), "", "raw Wiegand frame of 65 bits"},
		{"bad format name", agent.CardWiegand(agent.Wiegand{Format: "H1:0"}), "", "format name"},
		{"tag padded", agent.CardTagNumber(" 2301234 "), "tag:02301234", ""},
		{"tag too long", agent.CardTagNumber("123456789"), "", "1–8 digits"},
		{"tag with letters", agent.CardTagNumber("12a4"), "", "1–8 digits"},
		{"PIN", agent.KeypadPIN("482915"), k.Key("482915"), ""},
		{"PIN 10 digits", agent.KeypadPIN("0123456789"), k.Key("0123456789"), ""},
		{"PIN 11 digits", agent.KeypadPIN("01234567890"), "", "6–10 digits, got 11"},
		{"PIN with star", agent.KeypadPIN("1234*6"), "", "decimal digits"},
		{"unknown kind", agent.Presented{Kind: "face"}, "", "unknown kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := tt.p.Key(k)
			if tt.err != "" {
				require.Error(t, err)
				assert.True(t, errors.Is(err, agent.ErrInvalidCredential))
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.key, key)
		})
	}
	t.Run("PIN keys differ per gateway key and never contain the PIN", func(t *testing.T) {
		other := agent.PINKey("fedcba9876543210fedcba9876543210")
		assert.NotEqual(t, k.Key("482915"), other.Key("482915"))
		assert.NotContains(t, k.Key("482915"), "482915")
		assert.Len(t, k.Key("482915"), 4+64)
		assert.NotEqual(t, k.Fingerprint(), other.Fingerprint())
	})
	t.Run("a PIN needs a key", func(t *testing.T) {
		_, err := agent.KeypadPIN("482915").Key(nil)
		assert.ErrorContains(t, err, "no PIN key")
	})
}

func TestMasked(t *testing.T) {
	tests := []struct {
		p    agent.Presented
		want string
	}{
		{agent.CardUID([]byte{0x04, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6}), "uid:7 bytes …E5F6"},
		{agent.CardUID([]byte{0x04, 0xa1, 0xb2, 0xc3}), "uid:4 bytes …B2C3"},
		{agent.CardWiegand(agent.Wiegand{Format: "H10301", Facility: 12, Card: 3456}), "wiegand:H10301 fc=12 cn=…56"},
		{agent.CardWiegand(agent.Wiegand{Format: "raw", Bits: 40, Raw: 0xabc}), "wiegand:40 bits"},
		{agent.CardTagNumber("02301234"), "tag:…234"},
		{agent.KeypadPIN("482915"), "pin:******"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.p.Masked())
		assert.Equal(t, tt.want, tt.p.String())
	}
}

func TestParseUIDAndWiegand(t *testing.T) {
	for in, want := range map[string]string{
		"04:A1:B2:C3": "uid:04A1B2C3", "04-a1-b2-c3": "uid:04A1B2C3", "0x04a1b2c3": "uid:04A1B2C3",
		" 04 A1 B2 C3 D4 E5 F6 ": "uid:04A1B2C3D4E5F6",
	} {
		b, err := agent.ParseUID(in)
		require.NoError(t, err, in)
		k, _ := agent.UIDKey(b)
		assert.Equal(t, want, k)
	}
	for _, in := range []string{"", "zz", "04:A1:B2", "0x"} {
		_, err := agent.ParseUID(in)
		assert.Error(t, err, in)
	}
	w, err := agent.ParseWiegand("h10301:12:3456")
	require.NoError(t, err)
	assert.Equal(t, agent.Wiegand{Format: "H10301", Facility: 12, Card: 3456}, w)
	w, err = agent.ParseWiegand("raw:37:1A2B3C4D5")
	require.NoError(t, err)
	assert.Equal(t, agent.Wiegand{Format: "raw", Bits: 37, Raw: 0x1A2B3C4D5}, w)
	for _, in := range []string{"H10301:12", "raw:8:1FF", "raw:0:0", "H10301:-1:2", "::"} {
		_, err := agent.ParseWiegand(in)
		assert.Error(t, err, in)
	}
}

// FuzzCredentialInput checks that no input normalisation panics, that what is
// accepted yields a well-formed key, and that a PIN never shows in a key,
// an error or a mask.
func FuzzCredentialInput(f *testing.F) {
	for _, s := range []string{"04:A1:B2:C3", "H10301:12:3456", "raw:37:1A2B3C4D5", "02301234", "482915", "", "::", "0x", "raw:64:FFFFFFFFFFFFFFFF"} {
		f.Add(s)
	}
	k := agent.PINKey("0123456789abcdef0123456789abcdef")
	f.Fuzz(func(t *testing.T, s string) {
		if b, err := agent.ParseUID(s); err == nil {
			key, err := agent.UIDKey(b)
			if err != nil || !strings.HasPrefix(key, "uid:") {
				t.Fatalf("accepted UID %q gives key %q, %v", s, key, err)
			}
		}
		if w, err := agent.ParseWiegand(s); err == nil {
			if key, err := agent.WiegandKey(w); err != nil || !strings.HasPrefix(key, "wg:") {
				t.Fatalf("accepted Wiegand %q gives key %q, %v", s, key, err)
			}
		}
		if n, err := agent.NormalizeTagNumber(s); err == nil && len(n) != 8 {
			t.Fatalf("tag %q normalised to %q", s, n)
		}
		p := agent.KeypadPIN(s)
		key, err := p.Key(k)
		if len(s) >= agent.MinPINLength {
			if err != nil && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q shows the PIN", err)
			}
			if err == nil && strings.Contains(key, s) {
				t.Fatalf("key %q shows the PIN", key)
			}
		}
		if p.Masked() != "pin:******" {
			t.Fatalf("mask %q", p.Masked())
		}
	})
}
