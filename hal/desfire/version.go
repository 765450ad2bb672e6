package desfire

import (
	"fmt"
)

// VersionPart is the hardware or software half of a GetVersion answer.
type VersionPart struct {
	Vendor   byte // 0x04: NXP
	Type     byte // 0x01: DESFire, 0x08: DESFire Light, 0x04: NTAG
	Subtype  byte
	Major    byte
	Minor    byte
	Storage  byte // storage size code: 2^(n>>1) bytes, "or more" when n is odd
	Protocol byte // 0x05: ISO/IEC 14443-2 and -3
}

func parsePart(b []byte) VersionPart {
	return VersionPart{Vendor: b[0], Type: b[1], Subtype: b[2], Major: b[3], Minor: b[4], Storage: b[5], Protocol: b[6]}
}

// Version is a card's answer to GetVersion.
type Version struct {
	Hardware, Software VersionPart
	UID                []byte // the UID the card reports (the real one even with random ID on)
	Batch              []byte // production batch number, 5 bytes
	Week, Year         byte   // production calendar week and year, BCD
	Raw                []byte // the whole answer, for fingerprints
}

// ParseVersion decodes the joined GetVersion frames: 7 bytes of hardware,
// 7 of software, then UID (7), batch (5), week and year; some products add
// a byte or two, kept in Raw.
func ParseVersion(b []byte) (Version, error) {
	if len(b) < 28 || len(b) > 32 {
		return Version{}, fmt.Errorf("%w: GetVersion answer of %d bytes, want 28", ErrMalformed, len(b))
	}
	return Version{
		Hardware: parsePart(b[0:7]),
		Software: parsePart(b[7:14]),
		UID:      append([]byte(nil), b[14:21]...),
		Batch:    append([]byte(nil), b[21:26]...),
		Week:     b[26],
		Year:     b[27],
		Raw:      append([]byte(nil), b...),
	}, nil
}

// Generation is the DESFire product generation, which decides how to
// authenticate.
type Generation uint8

// Generations.
const (
	GenUnknown Generation = iota
	GenD40                // MF3ICD40: DES only, not supported for issuing
	GenEV1
	GenEV2
	GenEV3
	GenLight
)

func (g Generation) String() string {
	return [...]string{"unknown", "DESFire (D40)", "DESFire EV1", "DESFire EV2", "DESFire EV3", "DESFire Light"}[g]
}

// SupportsEV2 reports whether AuthenticateEV2First is available.
func (g Generation) SupportsEV2() bool { return g == GenEV2 || g == GenEV3 || g == GenLight }

// Generation names the product from the hardware version (the mapping
// proxmark3's `hf mfdes info` uses).
func (v Version) Generation() Generation {
	h := v.Hardware
	if h.Vendor != 0x04 {
		return GenUnknown
	}
	switch {
	case h.Type == 0x08:
		return GenLight
	case h.Type != 0x01 && h.Type != 0x81:
		return GenUnknown
	case h.Major == 0x00:
		return GenD40
	case h.Major == 0x01:
		return GenEV1
	case h.Major == 0x12 || h.Major == 0x22 || h.Major == 0x42:
		return GenEV2
	case h.Major == 0x33:
		return GenEV3
	case h.Major == 0x30:
		return GenLight
	}
	return GenUnknown
}

// StorageBytes is the storage size the hardware version announces (the
// lower bound when the code says "more than").
func (v Version) StorageBytes() int {
	n := int(v.Hardware.Storage >> 1)
	if n > 24 {
		return 0
	}
	return 1 << n
}

func bcd(b byte) int { return int(b>>4)*10 + int(b&0x0F) }

func (v Version) String() string {
	return fmt.Sprintf("%s %d.%d, %d bytes, software %d.%d, made week %d of 20%02d",
		v.Generation(), v.Hardware.Major, v.Hardware.Minor, v.StorageBytes(),
		v.Software.Major, v.Software.Minor, bcd(v.Week), bcd(v.Year))
}
