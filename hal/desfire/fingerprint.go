package desfire

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Fingerprint is what a presented card is, without any secret: its ISO/IEC
// 14443-3 answers (UID, ATQA, SAK), its ATS, its GetVersion answer and its
// originality signature, and whether that signature verifies. Recorded at
// enrolment and compared on later taps, it tells a copied UID on another
// chip (a "magic" MIFARE Classic, an emulator that does not mimic the rest)
// from the enrolled card.
//
// It is no proof of the card's identity: everything in it is static and
// public, so an emulator that replays all of it passes. Only a DESFire
// authentication (ReadIdentity) proves a key.
type Fingerprint struct {
	UID  []byte
	ATQA uint16
	SAK  byte
	ATS  []byte // nil: the card does not speak ISO/IEC 14443-4
	// Version is the raw GetVersion answer; nil when the card refused it,
	// VersionRefusal then says how ("status 1C", "iso 6E00", "malformed").
	Version        []byte
	VersionRefusal string
	// Signature is the originality signature; nil when the card refused
	// Read_Sig, SignatureRefusal then says how.
	Signature        []byte
	SignatureRefusal string
	// Original names the trusted key the signature verifies under; "" when
	// it verifies under none (or there is none).
	Original string
}

const fingerprintFormat = "fp1"

// Encode returns the fingerprint's stable text form: fields in a fixed
// order, hex in upper case, "-" for absent. Stored at enrolment and
// compared as a whole or field by field (Diff).
func (f Fingerprint) Encode() string {
	var orig []byte
	if f.Original != "" {
		orig = []byte(f.Original)
	}
	return strings.Join([]string{
		fingerprintFormat,
		"uid=" + hexOr(f.UID),
		fmt.Sprintf("atqa=%04X", f.ATQA),
		fmt.Sprintf("sak=%02X", f.SAK),
		"ats=" + hexOr(f.ATS),
		"ver=" + hexOr(f.Version),
		"verr=" + wordOr(f.VersionRefusal),
		"sig=" + hexOr(f.Signature),
		"sigerr=" + wordOr(f.SignatureRefusal),
		"orig=" + hexOr(orig),
	}, ";")
}

func hexOr(b []byte) string {
	if b == nil {
		return "-"
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

func wordOr(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ReplaceAll(s, " ", "_")
}

// MatchKey is the form to store at enrolment and compare on later taps as
// an opaque string: Encode with the verifying key's name reduced to
// whether one verified, so equal keys mean an empty Diff.
func (f Fingerprint) MatchKey() string {
	if f.Original != "" {
		f.Original = "verified"
	}
	return f.Encode()
}

// Describe says what the card is, for people and events: the product from
// its GetVersion answer (else from its SAK), and its originality
// signature's verdict. It reveals nothing secret.
func (f Fingerprint) Describe() string {
	what := sakProduct(f.SAK, f.ATS != nil)
	if v, err := ParseVersion(f.Version); err == nil {
		what = v.Generation().String()
		if v.Generation() == GenUnknown {
			what = fmt.Sprintf("ISO/IEC 14443-4 card, vendor %02X type %02X", v.Hardware.Vendor, v.Hardware.Type)
		}
	}
	switch {
	case f.Original != "":
		what += ", originality signature verified"
	case f.Signature != nil:
		what += ", originality signature does NOT verify"
	case f.SignatureRefusal != "":
		what += ", no originality signature"
	}
	return what
}

// sakProduct names the usual product behind a SAK (NXP AN10833).
func sakProduct(sak byte, iso bool) string {
	switch {
	case sak == 0x08 || sak == 0x88:
		return "MIFARE Classic 1K (or a copy)"
	case sak == 0x18:
		return "MIFARE Classic 4K (or a copy)"
	case sak == 0x09:
		return "MIFARE Mini"
	case sak == 0x00:
		return "MIFARE Ultralight or NTAG"
	case sak == 0x10 || sak == 0x11:
		return "MIFARE Plus"
	case iso:
		return "ISO/IEC 14443-4 card"
	}
	return fmt.Sprintf("ISO/IEC 14443-3 card (SAK %02X)", sak)
}

// ErrFingerprint: a stored fingerprint that does not decode.
var ErrFingerprint = errors.New("desfire: malformed fingerprint record")

// ParseFingerprint decodes Encode's text.
func ParseFingerprint(s string) (Fingerprint, error) {
	parts := strings.Split(s, ";")
	names := []string{"uid", "atqa", "sak", "ats", "ver", "verr", "sig", "sigerr", "orig"}
	if len(parts) != len(names)+1 || parts[0] != fingerprintFormat {
		return Fingerprint{}, fmt.Errorf("%w: %d fields or unknown format", ErrFingerprint, len(parts))
	}
	vals := map[string]string{}
	for i, name := range names {
		k, v, ok := strings.Cut(parts[i+1], "=")
		if !ok || k != name {
			return Fingerprint{}, fmt.Errorf("%w: field %d is not %q", ErrFingerprint, i+1, name)
		}
		vals[k] = v
	}
	var f Fingerprint
	var err error
	hexField := func(name string) []byte {
		v := vals[name]
		if v == "-" || err != nil {
			return nil
		}
		b, e := hex.DecodeString(v)
		if e != nil || strings.ToUpper(v) != v {
			err = fmt.Errorf("%w: %s", ErrFingerprint, name)
		}
		return b
	}
	f.UID, f.ATS, f.Version, f.Signature = hexField("uid"), hexField("ats"), hexField("ver"), hexField("sig")
	f.Original = string(hexField("orig"))
	if err != nil {
		return Fingerprint{}, err
	}
	atqa, e1 := strconv.ParseUint(vals["atqa"], 16, 16)
	sak, e2 := strconv.ParseUint(vals["sak"], 16, 8)
	if e1 != nil || e2 != nil || len(vals["atqa"]) != 4 || len(vals["sak"]) != 2 {
		return Fingerprint{}, fmt.Errorf("%w: atqa or sak", ErrFingerprint)
	}
	f.ATQA, f.SAK = uint16(atqa), byte(sak)
	for _, r := range []struct {
		dst *string
		v   string
	}{{&f.VersionRefusal, vals["verr"]}, {&f.SignatureRefusal, vals["sigerr"]}} {
		if r.v != "-" {
			*r.dst = strings.ReplaceAll(r.v, "_", " ")
		}
	}
	if f.Encode() != s {
		return Fingerprint{}, fmt.Errorf("%w: not in canonical form", ErrFingerprint)
	}
	return f, nil
}

// Diff lists the fields in which f differs from the enrolled fingerprint;
// none means the same card as far as a fingerprint can tell. Every field
// must be equal, except that the signature's verifying key is compared only
// as "verifies or not" (the trusted key list may grow).
func (f Fingerprint) Diff(enrolled Fingerprint) []string {
	var d []string
	add := func(name string, same bool) {
		if !same {
			d = append(d, name)
		}
	}
	add("uid", bytes.Equal(f.UID, enrolled.UID))
	add("atqa", f.ATQA == enrolled.ATQA)
	add("sak", f.SAK == enrolled.SAK)
	add("ats", bytes.Equal(f.ATS, enrolled.ATS) && (f.ATS == nil) == (enrolled.ATS == nil))
	add("version", bytes.Equal(f.Version, enrolled.Version) && f.VersionRefusal == enrolled.VersionRefusal)
	add("signature", bytes.Equal(f.Signature, enrolled.Signature) && f.SignatureRefusal == enrolled.SignatureRefusal)
	add("originality", (f.Original != "") == (enrolled.Original != ""))
	return d
}

// CaptureFingerprint completes a fingerprint holding the ISO/IEC 14443-3
// facts (UID, ATQA, SAK) and, for an ISO/IEC 14443-4 card, its ATS: it
// asks the card over t for GetVersion and its originality signature
// (neither needs a key) and verifies the signature against trusted. A
// card's refusals are part of the fingerprint; an error means the exchange
// itself failed (card gone, link broken). t is unused for a card without
// ATS.
func CaptureFingerprint(ctx context.Context, t Transport, f Fingerprint, trusted []OriginalityKey) (Fingerprint, error) {
	if f.ATS == nil {
		return f, nil
	}
	c := New(t, Options{})
	v, err := c.GetVersion(ctx)
	switch refusal, ok := refusalOf(err); {
	case err == nil:
		f.Version = v.Raw
		trusted = orderFor(trusted, v.Generation())
	case ok:
		f.VersionRefusal = refusal
	default:
		return f, fmt.Errorf("desfire: fingerprint: %w", err)
	}
	sig, err := c.ReadSignature(ctx)
	switch refusal, ok := refusalOf(err); {
	case err == nil:
		f.Signature = sig
		if name, err := VerifyOriginality(f.UID, sig, trusted); err == nil {
			f.Original = name
		}
	case ok:
		f.SignatureRefusal = refusal
	default:
		return f, fmt.Errorf("desfire: fingerprint: %w", err)
	}
	return f, nil
}

// refusalOf names an answer that refuses a command (a card characteristic,
// recorded) as opposed to a failed exchange (an error).
func refusalOf(err error) (string, bool) {
	var ce *CommandError
	var ie *ISOError
	switch {
	case errors.As(err, &ce):
		return fmt.Sprintf("status %02X", byte(ce.Status)), true
	case errors.As(err, &ie):
		return fmt.Sprintf("iso %04X", ie.SW), true
	case errors.Is(err, ErrMalformed):
		return "malformed", true
	}
	return "", false
}
