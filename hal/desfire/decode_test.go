package desfire_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/desfire"
)

func TestIdentityFile(t *testing.T) {
	id := desfire.Identity{TagNumber: 12345678, Generation: 2, Issued: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := id.Encode()
	require.Len(t, b, desfire.IdentityFileSize)
	assert.Equal(t, h("50 01 0000 00BC614E 00000002 00000000695735A5 000000000000000000000000"), b)
	got, err := desfire.ParseIdentity(b)
	require.NoError(t, err)
	assert.Equal(t, id.TagNumber, got.TagNumber)
	assert.Equal(t, id.Generation, got.Generation)
	assert.True(t, id.Issued.Equal(got.Issued))
	for name, mutate := range map[string]func([]byte){
		"magic":       func(b []byte) { b[0] = 'Q' },
		"version":     func(b []byte) { b[1] = 2 },
		"reserved":    func(b []byte) { b[31] = 1 },
		"nine digits": func(b []byte) { copy(b[4:8], h("05F5E100")) },
	} {
		bad := append([]byte(nil), b...)
		mutate(bad)
		_, err := desfire.ParseIdentity(bad)
		assert.ErrorIs(t, err, desfire.ErrIdentity, name)
	}
	_, err = desfire.ParseIdentity(b[:31])
	assert.ErrorIs(t, err, desfire.ErrIdentity)
}

func TestNextGeneration(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	tests := []struct {
		name   string
		last   uint32
		issued time.Time
		want   uint32
	}{
		{"a station that never saw the lost card still goes past it", 1, at("2026-12-07T00:00:00Z"), 1_015_200},
		{"the minutes since 2025", 0, at("2025-01-01T01:00:30Z"), 60},
		{"a second card in the same minute counts on", 1_015_200, at("2026-12-07T00:00:59Z"), 1_015_201},
		{"a clock behind the newest card known", 2_000_000, at("2026-12-07T00:00:00Z"), 2_000_001},
		{"an untrusted clock: the counter alone", 4, time.Time{}, 5},
		{"a clock before 2025", 0, at("2024-06-01T00:00:00Z"), 1},
		{"the last generation there is", math.MaxUint32, at("2026-12-07T00:00:00Z"), math.MaxUint32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, desfire.NextGeneration(tt.last, tt.issued))
		})
	}
}

func TestSiteKeys(t *testing.T) {
	s := desfire.SiteKeys{SystemID: h("4E585020416275"), Read: h("00112233445566778899AABBCCDDEEFF"), AID: 0xF54230, Version: 7}
	k, err := s.ForCard(h("04782E21801D80"))
	require.NoError(t, err)
	assert.Equal(t, h("A8DD63A3B89D54B37CA802473FDA9175"), k.Read.Bytes, "AN10922's example is a read key of this layout")
	assert.Equal(t, byte(7), k.Read.Version)
	assert.Nil(t, k.PICC.Bytes, "a door holds no PICC master")
	_, err = s.ForCard(h("04782E21"))
	assert.ErrorIs(t, err, desfire.ErrKey, "4-byte (random) UIDs are not diversified")
	s.SystemID = make([]byte, 22)
	_, err = s.ForCard(h("04782E21801D80"))
	assert.ErrorIs(t, err, desfire.ErrKey)
}

func TestFingerprintEncoding(t *testing.T) {
	f := desfire.Fingerprint{
		UID: h("045A115A346180"), ATQA: 0x0344, SAK: 0x20, ATS: h("067577810280"),
		Version: h("0401011200 1A05 04010102001A05 045A115A346180 BA5A115A20 2125"), Signature: bytes.Repeat([]byte{0xAB}, 56),
		Original: "NXP DESFire EV2 / NTAG 424 DNA",
	}
	s := f.Encode()
	got, err := desfire.ParseFingerprint(s)
	require.NoError(t, err)
	assert.Equal(t, f, got)
	assert.Empty(t, got.Diff(f))

	magic := desfire.Fingerprint{UID: f.UID, ATQA: 0x0044, SAK: 0x08}
	got, err = desfire.ParseFingerprint(magic.Encode())
	require.NoError(t, err)
	assert.Equal(t, magic, got)
	assert.Equal(t, []string{"atqa", "sak", "ats", "version", "signature", "originality"}, magic.Diff(f))

	refusing := f
	refusing.Version, refusing.VersionRefusal = nil, "iso 6E00"
	refusing.Signature, refusing.SignatureRefusal, refusing.Original = nil, "status 9D", ""
	got, err = desfire.ParseFingerprint(refusing.Encode())
	require.NoError(t, err)
	assert.Equal(t, refusing, got)
	assert.Equal(t, []string{"version", "signature", "originality"}, refusing.Diff(f))

	renamed := f
	renamed.Original = "another trusted key"
	assert.Empty(t, renamed.Diff(f), "which trusted key verifies does not matter")
	assert.Equal(t, f.MatchKey(), renamed.MatchKey())
	assert.NotEqual(t, f.MatchKey(), refusing.MatchKey())
	assert.NotEqual(t, f.MatchKey(), magic.MatchKey())

	for _, bad := range []string{"", "fp2;uid=-", s + ";x=1", s[:len(s)-1], "fp1;uid=zz;atqa=0000;sak=00;ats=-;ver=-;verr=-;sig=-;sigerr=-;orig=-"} {
		_, err := desfire.ParseFingerprint(bad)
		assert.ErrorIs(t, err, desfire.ErrFingerprint, bad)
	}
}

// A card that answers GetVersion and Read_Sig in various ways: refusals
// are recorded, failures are errors.
func TestCaptureFingerprint(t *testing.T) {
	base := desfire.Fingerprint{UID: h("045A115A346180"), ATQA: 0x0344, SAK: 0x20, ATS: h("067577810280")}
	sig := h("1CA298FC3F0F04A329254AC0DF7A3EB8E756C076CD1BAAF47B8BBA6D CD78BCC64DFD3E80E679D9A663CAE9E4D4C2C77023077CC549CE4A61")
	ctx := context.Background()

	// AN12343's DESFire Light: genuine signature for its UID.
	r := &replay{answers: [][]byte{h("04010108 000000 91AF"), h("04010108000000 91AF"), h("045A115A346180 0000000000 0000 9100"), append(sig, 0x91, 0x90)}}
	f, err := desfire.CaptureFingerprint(ctx, r, base, desfire.NXPOriginalityKeys())
	require.NoError(t, err)
	assert.Equal(t, "NXP DESFire Light", f.Original)
	assert.Len(t, f.Version, 28)

	// A JavaCard emulator: no DESFire, ISO status words.
	r = &replay{answers: [][]byte{h("6E00"), h("6E00")}}
	f, err = desfire.CaptureFingerprint(ctx, r, base, desfire.NXPOriginalityKeys())
	require.NoError(t, err)
	assert.Equal(t, "iso 6E00", f.VersionRefusal)
	assert.Equal(t, "iso 6E00", f.SignatureRefusal)
	assert.Empty(t, f.Original)

	// A card that goes away.
	r = &replay{}
	_, err = desfire.CaptureFingerprint(ctx, r, base, nil)
	require.Error(t, err)

	// Not ISO/IEC 14443-4: nothing to ask.
	f, err = desfire.CaptureFingerprint(ctx, nil, desfire.Fingerprint{UID: h("04A1B2C3"), ATQA: 4, SAK: 8}, nil)
	require.NoError(t, err)
	assert.Nil(t, f.Version)
}

func FuzzParseVersion(f *testing.F) {
	f.Add(h("04010112001A05 04010102001A05 045A115A346180 BA5A115A20 2125"))
	f.Add(make([]byte, 27))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := desfire.ParseVersion(b)
		if err != nil {
			return
		}
		if len(v.UID) != 7 || len(v.Batch) != 5 || !bytes.Equal(v.Raw, b) {
			t.Fatalf("% X: %+v", b, v)
		}
		_ = v.String()
	})
}

func FuzzParseIdentity(f *testing.F) {
	f.Add(desfire.Identity{TagNumber: 1, Generation: 1, Issued: time.Unix(1e9, 0)}.Encode())
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := desfire.ParseIdentity(b)
		if err != nil {
			return
		}
		if id.TagNumber > desfire.MaxTagNumber || !bytes.Equal(id.Encode(), b) {
			t.Fatalf("% X accepted as %+v", b, id)
		}
	})
}

func FuzzParseFingerprint(f *testing.F) {
	f.Add(desfire.Fingerprint{UID: h("04A1B2C3"), ATQA: 4, SAK: 8}.Encode())
	f.Add(desfire.Fingerprint{UID: h("045A115A346180"), ATQA: 0x344, SAK: 0x20, ATS: h("0675"), Version: h("00"), SignatureRefusal: "status 9D", Original: "x"}.Encode())
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := desfire.ParseFingerprint(s)
		if err != nil {
			return
		}
		if fp.Encode() != s || len(fp.Diff(fp)) != 0 {
			t.Fatalf("%q accepted as %+v", s, fp)
		}
	})
}

// fuzzCard answers every frame with the next fuzz-chosen answer.
type fuzzCard struct {
	answers [][]byte
	frames  int
}

func (c *fuzzCard) Transmit(context.Context, []byte) ([]byte, error) {
	c.frames++
	if len(c.answers) == 0 {
		return nil, errors.New("no answer")
	}
	a := c.answers[0]
	c.answers = c.answers[1:]
	return a, nil
}

// FuzzCardAnswers feeds arbitrary answers to the client's decoders through
// a door's identity read and a fingerprint: never a panic, never more
// frames than the bounds allow, and never an identity (a card that does
// not know the key cannot MAC its answer).
func FuzzCardAnswers(f *testing.F) {
	f.Add([]byte{0x91, 0x00}, []byte{0x91, 0xAF}, []byte{0x91, 0x00}, true)
	f.Add(h("A04C124213C186F22399D33AC2A30215 91AF"), h("3FA64DB5446D1F34CD6EA311167F5E4985B89690C04A05F17FA7AB2F08120663 9100"), h("00 9100"), false)
	f.Add([]byte{0xAF}, []byte{0xAF, 0x01}, []byte{0x00, 0x01, 0x02}, true)
	site := desfire.SiteKeys{Read: make([]byte, 16)}
	uid := h("04A1B2C3D4E5F6")
	f.Fuzz(func(t *testing.T, a, b, c []byte, native bool) {
		card := &fuzzCard{answers: [][]byte{a, b, c, a, b, c, a, b, c}}
		cl := desfire.New(card, desfire.Options{Native: native, Rand: bytes.NewReader(make([]byte, 64))})
		id, err := desfire.ReadIdentity(context.Background(), cl, uid, site)
		if err == nil {
			t.Fatalf("identity %+v from arbitrary answers", id)
		}
		card = &fuzzCard{answers: [][]byte{a, b, c, a, b, c, a, b, c}}
		_, _ = desfire.CaptureFingerprint(context.Background(), card, desfire.Fingerprint{UID: uid, ATS: []byte{1}}, desfire.NXPOriginalityKeys())
		if card.frames > 10 {
			t.Fatalf("%d frames", card.frames)
		}
	})
}
