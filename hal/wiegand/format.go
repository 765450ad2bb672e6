// Package wiegand reads Wiegand card readers and keypads: it assembles D0/D1
// falling edges into frames closed by a silence timeout and decodes frames
// with data-driven formats (bit fields and parity masks), so a new format is a
// table entry, not code.
//
// A frame whose length matches no enabled format, or whose parity fails, is
// reported as an error and never turned into a card number: a dropped bit
// must not open a door for someone else.
package wiegand

import (
	"errors"
	"fmt"
	"math/bits"
)

// Errors reported for frames that are not credentials. They are wrapped with
// the frame length.
var (
	ErrParity   = errors.New("wiegand: parity error")
	ErrLength   = errors.New("wiegand: unknown frame length")
	ErrKey      = errors.New("wiegand: invalid keypad code")
	ErrOverflow = errors.New("wiegand: frame longer than 64 bits")
	ErrRange    = errors.New("wiegand: value out of range for format")
)

// MaxBits is the longest frame kept: Raw holds the frame in a uint64.
const MaxBits = 64

// Field is a run of frame bits holding a number, MSB first. Start is the
// 1-based position of its first bit on the wire (bit 1 is the first bit
// received), as format documents number them.
type Field struct {
	Start, Len int
}

// Parity is one parity bit: the count of ones over Over (which includes the
// parity bit itself) must be odd or even. Over is a mask in frame positions
// (see Format.Mask).
type Parity struct {
	Bit  int // 1-based position of the parity bit
	Odd  bool
	Over uint64
}

// Format describes a card frame layout.
type Format struct {
	Name     string
	Bits     int
	Facility Field // Len 0: the format has no facility code
	Card     Field
	// Parity bits in the order an encoder must compute them: a parity bit
	// that covers other parity bits comes after them.
	Parity []Parity
}

// mask returns the frame mask with the given 1-based positions set.
func mask(n int, positions ...int) uint64 {
	var m uint64
	for _, p := range positions {
		m |= 1 << (n - p)
	}
	return m
}

// span returns the positions from a to b inclusive.
func span(a, b int) []int {
	p := make([]int, 0, b-a+1)
	for i := a; i <= b; i++ {
		p = append(p, i)
	}
	return p
}

// StandardFormats returns the built-in card formats, most common first.
// H10302 and H10304 are both 37 bits with the same parity rule, so a frame
// cannot tell them apart: a decoder uses the first of them it is given.
func StandardFormats() []Format {
	c1000Even := []int{2}
	c1000Odd := []int{35}
	for i := 3; i <= 34; i++ {
		if i%3 != 2 {
			c1000Even = append(c1000Even, i)
		}
	}
	for i := 2; i <= 33; i++ {
		if i%3 != 1 {
			c1000Odd = append(c1000Odd, i)
		}
	}
	return []Format{
		{
			Name: "H10301", Bits: 26,
			Facility: Field{2, 8}, Card: Field{10, 16},
			Parity: []Parity{
				{Bit: 1, Over: mask(26, span(1, 13)...)},
				{Bit: 26, Odd: true, Over: mask(26, span(14, 26)...)},
			},
		},
		{
			Name: "H10306", Bits: 34,
			Facility: Field{2, 16}, Card: Field{18, 16},
			Parity: []Parity{
				{Bit: 1, Over: mask(34, span(1, 17)...)},
				{Bit: 34, Odd: true, Over: mask(34, span(18, 34)...)},
			},
		},
		{
			Name: "C1000", Bits: 35,
			Facility: Field{3, 12}, Card: Field{15, 20},
			Parity: []Parity{
				{Bit: 2, Over: mask(35, c1000Even...)},
				{Bit: 35, Odd: true, Over: mask(35, c1000Odd...)},
				{Bit: 1, Odd: true, Over: mask(35, span(1, 35)...)},
			},
		},
		{
			Name: "H10304", Bits: 37,
			Facility: Field{2, 16}, Card: Field{18, 19},
			Parity: []Parity{
				{Bit: 1, Over: mask(37, span(1, 19)...)},
				{Bit: 37, Odd: true, Over: mask(37, span(19, 37)...)},
			},
		},
		{
			Name: "H10302", Bits: 37,
			Card: Field{2, 35},
			Parity: []Parity{
				{Bit: 1, Over: mask(37, span(1, 19)...)},
				{Bit: 37, Odd: true, Over: mask(37, span(19, 37)...)},
			},
		},
	}
}

// FormatByName returns the built-in format with that name.
func FormatByName(name string) (Format, bool) {
	for _, f := range StandardFormats() {
		if f.Name == name {
			return f, true
		}
	}
	return Format{}, false
}

func (f Field) get(n int, raw uint64) uint64 {
	if f.Len == 0 {
		return 0
	}
	return (raw >> (n - f.Start - f.Len + 1)) & (1<<f.Len - 1)
}

func (f Field) put(n int, raw, v uint64) (uint64, error) {
	if f.Len == 0 {
		if v != 0 {
			return 0, ErrRange
		}
		return raw, nil
	}
	if v > 1<<f.Len-1 {
		return 0, ErrRange
	}
	shift := n - f.Start - f.Len + 1
	return raw&^((1<<f.Len-1)<<shift) | v<<shift, nil
}

func (p Parity) ok(raw uint64) bool {
	odd := bits.OnesCount64(raw&p.Over)%2 == 1
	return odd == p.Odd
}

// Encode builds the frame of a card: fields set, parity bits computed.
func (f Format) Encode(facility, card uint64) (Frame, error) {
	raw, err := f.Facility.put(f.Bits, 0, facility)
	if err != nil {
		return Frame{}, fmt.Errorf("%w: %s facility %d", ErrRange, f.Name, facility)
	}
	if raw, err = f.Card.put(f.Bits, raw, card); err != nil {
		return Frame{}, fmt.Errorf("%w: %s card %d", ErrRange, f.Name, card)
	}
	for _, p := range f.Parity {
		if !p.ok(raw) {
			raw ^= 1 << (f.Bits - p.Bit)
		}
	}
	return Frame{Bits: f.Bits, Raw: raw}, nil
}

// decode checks parity and extracts the fields of a frame of f.Bits bits.
func (f Format) decode(raw uint64) (Reading, bool) {
	for _, p := range f.Parity {
		if !p.ok(raw) {
			return Reading{}, false
		}
	}
	return Reading{
		Kind: KindCard, Format: f.Name, Bits: f.Bits, Raw: raw,
		Facility: f.Facility.get(f.Bits, raw), Card: f.Card.get(f.Bits, raw),
	}, true
}

// Frame is the bits of one burst, MSB first: the first bit received is bit
// Bits-1 of Raw.
type Frame struct {
	Bits int
	Raw  uint64
}

// String renders the frame as the 0/1 string a capture shows.
func (fr Frame) String() string {
	b := make([]byte, fr.Bits)
	for i := range b {
		b[i] = '0' + byte(fr.Raw>>(fr.Bits-1-i)&1)
	}
	return string(b)
}

// Kind says what a reading is.
type Kind uint8

// Reading kinds.
const (
	KindCard Kind = iota + 1 // a card (known format or raw)
	KindKey                  // one keypad key
)

// RawFormat is the Format of a card frame that matched no enabled format,
// kept whole because the decoder was told to accept raw frames.
const RawFormat = "raw"

// Reading is one decoded frame.
type Reading struct {
	Kind     Kind
	Format   string // format name, or RawFormat
	Facility uint64
	Card     uint64
	Bits     int
	Raw      uint64
	Key      rune // KindKey: '0'–'9', '*' or '#'
}

// keyRunes maps 4-bit key codes 0–11 to keys.
const keyRunes = "0123456789*#"

// Decoder turns frames into readings. The zero value rejects every card
// frame; use NewDecoder for the usual setup.
type Decoder struct {
	// Formats are tried in order; the first whose length matches and whose
	// parity holds wins.
	Formats []Format
	// Raw accepts card frames of lengths no format claims as RawFormat
	// readings. A length some format claims still fails on bad parity.
	Raw bool
	// Keys decodes 4-bit and 8-bit bursts as keypad keys.
	Keys bool
}

// NewDecoder returns a decoder for the standard formats except H10302
// (which shares its length with H10304), with keypad bursts and without raw
// frames.
func NewDecoder() Decoder {
	var fs []Format
	for _, f := range StandardFormats() {
		if f.Name != "H10302" {
			fs = append(fs, f)
		}
	}
	return Decoder{Formats: fs, Keys: true}
}

// Decode decodes one frame. Bits beyond fr.Bits in fr.Raw are ignored.
func (d Decoder) Decode(fr Frame) (Reading, error) {
	n := fr.Bits
	switch {
	case n <= 0:
		return Reading{}, fmt.Errorf("%w: empty frame", ErrLength)
	case n > MaxBits:
		return Reading{}, fmt.Errorf("%w: %d bits", ErrOverflow, n)
	}
	raw := fr.Raw
	if n < 64 {
		raw &= 1<<n - 1
	}
	if d.Keys && (n == 4 || n == 8) {
		return decodeKey(n, raw)
	}
	claimed := false
	for _, f := range d.Formats {
		if f.Bits != n {
			continue
		}
		claimed = true
		if r, ok := f.decode(raw); ok {
			return r, nil
		}
	}
	switch {
	case claimed:
		return Reading{}, fmt.Errorf("%w: %d-bit frame", ErrParity, n)
	case d.Raw:
		return Reading{Kind: KindCard, Format: RawFormat, Bits: n, Raw: raw}, nil
	}
	return Reading{}, fmt.Errorf("%w: %d bits", ErrLength, n)
}

func decodeKey(n int, raw uint64) (Reading, error) {
	code := raw & 0xF
	if n == 8 && raw>>4 != ^code&0xF {
		return Reading{}, fmt.Errorf("%w: 8-bit burst %08b is not a key and its complement", ErrKey, raw)
	}
	if code >= uint64(len(keyRunes)) {
		return Reading{}, fmt.Errorf("%w: code %d", ErrKey, code)
	}
	return Reading{Kind: KindKey, Bits: n, Raw: raw, Key: rune(keyRunes[code])}, nil
}

// EncodeKey returns the burst a keypad sends for key in 4- or 8-bit mode.
func EncodeKey(key rune, nbits int) (Frame, error) {
	code := -1
	for i, r := range keyRunes {
		if r == key {
			code = i
		}
	}
	if code < 0 || (nbits != 4 && nbits != 8) {
		return Frame{}, fmt.Errorf("%w: key %q in %d-bit mode", ErrKey, key, nbits)
	}
	c := uint64(code)
	if nbits == 8 {
		c |= (^c & 0xF) << 4
	}
	return Frame{Bits: nbits, Raw: c}, nil
}
