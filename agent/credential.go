package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CredentialKind says how a credential identifies its holder.
type CredentialKind string

// Credential kinds. UID, Wiegand, tag number and DESFire are cards ("tags");
// PIN is a keypad code.
const (
	KindUID       CredentialKind = "uid"        // card UID bytes as an MFRC522 reads them
	KindWiegand   CredentialKind = "wiegand"    // a decoded Wiegand card reading
	KindTagNumber CredentialKind = "tag_number" // Salto's 8-digit tag number
	KindPIN       CredentialKind = "pin"        // 6–10 digit keypad code
	// KindDESFire is a MIFARE DESFire card checked against the site's
	// diversified key: when it proved the key, TagNumber is the tag number
	// its enciphered identity file names (Card says how the check went).
	KindDESFire CredentialKind = "desfire"
)

// IsCard reports whether the kind is presented by tapping a card or tag.
func (k CredentialKind) IsCard() bool {
	return k == KindUID || k == KindWiegand || k == KindTagNumber || k == KindDESFire
}

// Valid reports whether k is one of the known kinds.
func (k CredentialKind) Valid() bool { return k.IsCard() || k == KindPIN }

// ErrInvalidCredential marks input that cannot be a credential (bad length,
// bad digits, bad parity). It is wrapped with the detail.
var ErrInvalidCredential = errors.New("invalid credential")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidCredential, fmt.Sprintf(format, args...))
}

// PIN length bounds: Salto generates 6–10 digit PINs.
const (
	MinPINLength = 6
	MaxPINLength = 10
)

// Wiegand is a decoded Wiegand card reading. Format is the frame format name
// (e.g. "H10301"); a frame of an unknown format keeps only Bits and Raw.
type Wiegand struct {
	Format   string // H10301, H10306, C1000, H10302, H10304, or "raw"
	Facility uint64 // facility/site code, 0 when the format has none
	Card     uint64 // card number
	Bits     int    // frame length in bits, parity included
	Raw      uint64 // the frame bits, MSB first (frames up to 64 bits)
}

// Presented is one credential as a reader produced it, before any lookup.
// Only the fields matching Kind are set (a DESFire card has its UID and,
// once it proved the site's key, its tag number). Its String never shows a
// PIN and masks card identifiers.
type Presented struct {
	Kind      CredentialKind
	UID       []byte
	Wiegand   Wiegand
	TagNumber string
	PIN       string
	// Card is what the reader learned about the card beyond its
	// identifier; nil when it learned nothing (a Wiegand reader, a
	// credential typed for `portier check`).
	Card *CardCheck
}

// CardUID builds a presented UID credential.
func CardUID(uid []byte) Presented { return Presented{Kind: KindUID, UID: uid} }

// CardDESFire builds a presented DESFire card: tagNumber is the identity
// its file names, "" when the card did not prove the site's key.
func CardDESFire(uid []byte, tagNumber string, check CardCheck) Presented {
	return Presented{Kind: KindDESFire, UID: uid, TagNumber: tagNumber, Card: &check}
}

// CardWiegand builds a presented Wiegand credential.
func CardWiegand(w Wiegand) Presented { return Presented{Kind: KindWiegand, Wiegand: w} }

// CardTagNumber builds a presented tag-number credential.
func CardTagNumber(n string) Presented { return Presented{Kind: KindTagNumber, TagNumber: n} }

// KeypadPIN builds a presented PIN credential.
func KeypadPIN(pin string) Presented { return Presented{Kind: KindPIN, PIN: pin} }

// String masks the credential; it is safe to log.
func (p Presented) String() string { return p.Masked() }

// Masked is the credential as it may appear in logs and events: never a PIN,
// never a whole card identifier.
func (p Presented) Masked() string {
	switch p.Kind {
	case KindUID:
		return fmt.Sprintf("uid:%d bytes …%s", len(p.UID), maskTail(strings.ToUpper(hex.EncodeToString(p.UID)), 4))
	case KindWiegand:
		w := p.Wiegand
		if w.Format == "" || w.Format == WiegandRaw {
			return fmt.Sprintf("wiegand:%d bits", w.Bits)
		}
		return fmt.Sprintf("wiegand:%s fc=%d cn=…%s", w.Format, w.Facility, maskTail(strconv.FormatUint(w.Card, 10), 2))
	case KindTagNumber:
		return "tag:…" + maskTail(p.TagNumber, 3)
	case KindPIN:
		return "pin:******"
	case KindDESFire:
		if p.TagNumber != "" {
			return "desfire:tag …" + maskTail(p.TagNumber, 3)
		}
		return fmt.Sprintf("desfire:uid %d bytes …%s", len(p.UID), maskTail(strings.ToUpper(hex.EncodeToString(p.UID)), 4))
	}
	return "unknown"
}

// maskTail keeps at most n trailing characters of s, and fewer when s is so
// short that n would reveal half of it.
func maskTail(s string, n int) string {
	if n > len(s)/2 {
		n = len(s) / 2
	}
	return s[len(s)-n:]
}

// WiegandRaw is the format name of a frame that matched no known format.
const WiegandRaw = "raw"

// Key is the canonical lookup key of the credential in the cache. PINs are
// turned into a keyed hash with k; card keys do not need it. A malformed
// credential yields an error wrapping ErrInvalidCredential.
func (p Presented) Key(k PINKey) (string, error) {
	switch p.Kind {
	case KindUID:
		return UIDKey(p.UID)
	case KindWiegand:
		return WiegandKey(p.Wiegand)
	case KindTagNumber:
		n, err := NormalizeTagNumber(p.TagNumber)
		if err != nil {
			return "", err
		}
		return TagKey(n), nil
	case KindPIN:
		if err := ValidatePIN(p.PIN); err != nil {
			return "", err
		}
		if len(k) == 0 {
			return "", errors.New("no PIN key configured")
		}
		return k.Key(p.PIN), nil
	case KindDESFire:
		if p.TagNumber == "" {
			return "", invalid("a DESFire card that did not prove the site's key has no identity")
		}
		n, err := NormalizeTagNumber(p.TagNumber)
		if err != nil {
			return "", err
		}
		return TagKey(n), nil
	}
	return "", invalid("unknown kind %q", p.Kind)
}

// UIDKey is the cache key of a card UID (4, 7 or 10 bytes, as ISO 14443-A
// cascade levels 1–3 deliver them).
func UIDKey(uid []byte) (string, error) {
	switch len(uid) {
	case 4, 7, 10:
		return "uid:" + strings.ToUpper(hex.EncodeToString(uid)), nil
	}
	return "", invalid("UID has %d bytes, want 4, 7 or 10", len(uid))
}

// ParseUID reads a UID written in hex, with optional ':', '-' or ' '
// separators (e.g. "04:A1:B2:C3"). The byte count must be 4, 7 or 10.
func ParseUID(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		if r == ':' || r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	clean = strings.TrimPrefix(strings.TrimPrefix(clean, "0x"), "0X")
	b, err := hex.DecodeString(clean)
	if err != nil || clean == "" {
		return nil, invalid("UID %q is not hex bytes", s)
	}
	if _, err := UIDKey(b); err != nil {
		return nil, err
	}
	return b, nil
}

// WiegandKey is the cache key of a Wiegand reading: format, facility and card
// for known formats; bit count and raw bits otherwise.
func WiegandKey(w Wiegand) (string, error) {
	switch {
	case w.Format == "" || w.Format == WiegandRaw:
		if w.Bits <= 0 || w.Bits > 64 {
			return "", invalid("raw Wiegand frame of %d bits", w.Bits)
		}
		return fmt.Sprintf("wg:raw%d:%X", w.Bits, w.Raw), nil
	case validFormatName(w.Format):
		return fmt.Sprintf("wg:%s:%d:%d", strings.ToUpper(w.Format), w.Facility, w.Card), nil
	}
	return "", invalid("Wiegand format name %q", w.Format)
}

func validFormatName(s string) bool {
	if len(s) > 16 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return s != ""
}

// TagKey is the cache key of a normalised Salto tag number.
func TagKey(tagNumber string) string { return "tag:" + tagNumber }

// NormalizeTagNumber accepts 1–8 decimal digits and returns Salto's 8-digit
// form with leading zeros ("2301234" → "02301234").
func NormalizeTagNumber(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 8 || !allDigits(s) {
		return "", invalid("tag number must be 1–8 digits")
	}
	return strings.Repeat("0", 8-len(s)) + s, nil
}

// ValidatePIN checks a PIN has 6–10 decimal digits. The error never contains
// the PIN.
func ValidatePIN(pin string) error {
	if !allDigits(pin) || pin == "" {
		return invalid("PIN must be decimal digits")
	}
	if len(pin) < MinPINLength || len(pin) > MaxPINLength {
		return invalid("PIN must have %d–%d digits, got %d", MinPINLength, MaxPINLength, len(pin))
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// PINKey is the per-gateway secret that turns PINs into keyed hashes. It lives
// in a file outside the database, so a copied database reveals no PIN.
type PINKey []byte

// MinPINKeyLength is the shortest accepted PIN key, in bytes.
const MinPINKeyLength = 32

// Key is the cache key of a PIN: "pin:" and the hex HMAC-SHA256 of the PIN.
func (k PINKey) Key(pin string) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(pin))
	return "pin:" + hex.EncodeToString(m.Sum(nil))
}

// Fingerprint identifies the key without revealing it. The cache records it so
// that a database is never used with a different key (every PIN would then be
// "unknown").
func (k PINKey) Fingerprint() string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("portier pin key fingerprint v1"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// Origin says where a stored credential came from, which decides who may
// replace it.
type Origin string

// Credential origins.
const (
	// OriginSalto credentials are derived from Salto data (a user's
	// tag_number) and replaced by every snapshot.
	OriginSalto Origin = "salto"
	// OriginEnrolment credentials are derived from a local enrolment
	// (UID/Wiegand → tag number) joined with the snapshot's tag holder.
	OriginEnrolment Origin = "enrolment"
	// OriginLocal credentials were imported or programmed on this gateway
	// (PINs, access codes, UIDs); snapshots never remove them.
	OriginLocal Origin = "local"
)

// Credential is a stored credential: the lookup key, whose it is, and its own
// validity window.
type Credential struct {
	Key       string // canonical key (see Presented.Key)
	Kind      CredentialKind
	Origin    Origin
	UserID    string    // site-user id of the holder
	TagNumber string    // for tag and enrolment credentials: the Salto tag number
	StartsAt  time.Time // zero: valid from the start
	EndsAt    time.Time // zero: valid forever
	Label     string    // free text, e.g. the access code name
}

// Enrolment maps a physical card identifier (a UID or Wiegand key) to the Salto
// tag number it carries. Salto knows tags only by tag number, readers only by
// UID, so a gateway learns the pairing once per card.
type Enrolment struct {
	Key       string // uid:… or wg:… key
	TagNumber string // 8 digits
	// Fingerprint is the card's fingerprint as the reader took it at
	// enrolment (CardCheck.Fingerprint); "" when the reader takes none.
	Fingerprint string
}

// ParseWiegand reads the text form of a Wiegand card used by the CLI and the
// control socket: "FORMAT:FACILITY:CARD" (e.g. "H10301:12:3456") or
// "raw:BITS:HEX" for a frame of no known format.
func ParseWiegand(s string) (Wiegand, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) != 3 {
		return Wiegand{}, invalid("Wiegand card %q: want FORMAT:FACILITY:CARD or raw:BITS:HEX", s)
	}
	if strings.EqualFold(parts[0], WiegandRaw) {
		bits, err := strconv.Atoi(parts[1])
		if err != nil || bits <= 0 || bits > 64 {
			return Wiegand{}, invalid("Wiegand raw frame length %q: want 1–64 bits", parts[1])
		}
		raw, err := strconv.ParseUint(parts[2], 16, 64)
		if err != nil || (bits < 64 && raw>>uint(bits) != 0) {
			return Wiegand{}, invalid("Wiegand raw bits %q do not fit %d bits of hex", parts[2], bits)
		}
		return Wiegand{Format: WiegandRaw, Bits: bits, Raw: raw}, nil
	}
	if !validFormatName(parts[0]) {
		return Wiegand{}, invalid("Wiegand format name %q", parts[0])
	}
	fc, err1 := strconv.ParseUint(parts[1], 10, 64)
	cn, err2 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return Wiegand{}, invalid("Wiegand facility and card must be decimal numbers in %q", s)
	}
	return Wiegand{Format: strings.ToUpper(parts[0]), Facility: fc, Card: cn}, nil
}
