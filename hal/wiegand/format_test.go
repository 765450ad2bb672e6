package wiegand_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/wiegand"
)

func format(t testing.TB, name string) wiegand.Format {
	t.Helper()
	f, ok := wiegand.FormatByName(name)
	require.True(t, ok, name)
	return f
}

func frame(t testing.TB, bits string) wiegand.Frame {
	t.Helper()
	v, err := strconv.ParseUint(bits, 2, 64)
	require.NoError(t, err)
	return wiegand.Frame{Bits: len(bits), Raw: v}
}

// Vectors from the access-control anchors reference §C1 (published captures
// and generated vectors cross-checked against Proxmark3's packers).
func TestPublishedVectors(t *testing.T) {
	tests := []struct {
		format       string
		facility     uint64
		card         uint64
		bits         string // whole frame, when published
		hex          uint64 // whole frame as hex, when published
		payload24    uint64 // H10301 24 data bits, when that is what was published
		hasFrameBits bool
	}{
		{format: "H10301", facility: 21, card: 15890, bits: "10001010100111110000100100", payload24: 1392146},
		{format: "H10301", facility: 13, card: 36912, payload24: 0x0D9030},
		{format: "H10301", facility: 1, card: 11572, payload24: 77108},
		{format: "H10301", facility: 118, card: 15080, payload24: 7748328},
		{format: "H10301", facility: 1, card: 1, bits: "10000000100000000000000010", hex: 0x2020002},
		{format: "H10301", facility: 0, card: 0, bits: "00000000000000000000000001", hex: 0x0000001},
		{format: "H10301", facility: 255, card: 65535, bits: "01111111111111111111111111", hex: 0x1FFFFFF},
		{format: "H10306", facility: 1, card: 1, bits: "1000000000000000100000000000000010", hex: 0x200020002},
		{format: "H10306", facility: 1234, card: 56789, bits: "1000001001101001011011101110101010", hex: 0x209A5BBAA},
		{format: "H10304", facility: 1, card: 1, bits: "1000000000000000100000000000000000010", hex: 0x1000100002},
		{format: "H10304", facility: 1234, card: 56789, bits: "1000001001101001000011011101110101010", hex: 0x104D21BBAA},
		{format: "H10302", card: 123456789, bits: "1000000001110101101111001101000101011", hex: 0x100EB79A2B},
		{format: "C1000", facility: 1, card: 1, bits: "11000000000001000000000000000000011", hex: 0x600200003},
		{format: "C1000", facility: 0, card: 0, bits: "00000000000000000000000000000000001", hex: 0x000000001},
		{format: "C1000", facility: 4095, card: 1048575, bits: "10111111111111111111111111111111110", hex: 0x5FFFFFFFE},
		{format: "C1000", facility: 1234, card: 567890, bits: "11010011010010100010101010010100100", hex: 0x69A5154A4},
	}
	for _, tt := range tests {
		t.Run(tt.format+"/"+strconv.FormatUint(tt.facility, 10)+"/"+strconv.FormatUint(tt.card, 10), func(t *testing.T) {
			f := format(t, tt.format)
			enc, err := f.Encode(tt.facility, tt.card)
			require.NoError(t, err)
			if tt.bits != "" {
				assert.Equal(t, tt.bits, enc.String())
			}
			if tt.hex != 0 || tt.bits == "00000000000000000000000000000000001" {
				assert.Equal(t, tt.hex, enc.Raw)
			}
			if tt.payload24 != 0 {
				assert.Equal(t, tt.payload24, enc.Raw>>1&0xFFFFFF)
			}
			d := wiegand.Decoder{Formats: []wiegand.Format{f}}
			got, err := d.Decode(enc)
			require.NoError(t, err)
			assert.Equal(t, wiegand.Reading{
				Kind: wiegand.KindCard, Format: tt.format, Facility: tt.facility, Card: tt.card,
				Bits: f.Bits, Raw: enc.Raw,
			}, got)
		})
	}
}

func TestDecodeDefault(t *testing.T) {
	tests := []struct {
		name    string
		frame   string
		want    wiegand.Reading
		wantErr error
	}{
		{name: "H10301", frame: "10001010100111110000100100", want: wiegand.Reading{Kind: wiegand.KindCard, Format: "H10301", Facility: 21, Card: 15890, Bits: 26, Raw: 0b10001010100111110000100100}},
		{name: "37 bits default to H10304", frame: "1000001001101001000011011101110101010", want: wiegand.Reading{Kind: wiegand.KindCard, Format: "H10304", Facility: 1234, Card: 56789, Bits: 37, Raw: 0x104D21BBAA}},
		{name: "H10301 even parity flipped", frame: "00001010100111110000100100", wantErr: wiegand.ErrParity},
		{name: "H10301 odd parity flipped", frame: "10001010100111110000100101", wantErr: wiegand.ErrParity},
		{name: "H10301 data bit flipped", frame: "10001010100111110000101100", wantErr: wiegand.ErrParity},
		{name: "H10301 with a dropped bit", frame: "1000101010011111000010010", wantErr: wiegand.ErrLength},
		{name: "C1000 whole-frame parity flipped", frame: "01000000000001000000000000000000011", wantErr: wiegand.ErrParity},
		{name: "C1000 b2 parity flipped", frame: "10000000000001000000000000000000011", wantErr: wiegand.ErrParity},
		{name: "key 5 (4-bit)", frame: "0101", want: wiegand.Reading{Kind: wiegand.KindKey, Bits: 4, Raw: 5, Key: '5'}},
		{name: "key * (4-bit)", frame: "1010", want: wiegand.Reading{Kind: wiegand.KindKey, Bits: 4, Raw: 10, Key: '*'}},
		{name: "key # (4-bit)", frame: "1011", want: wiegand.Reading{Kind: wiegand.KindKey, Bits: 4, Raw: 11, Key: '#'}},
		{name: "4-bit code 12 is no key", frame: "1100", wantErr: wiegand.ErrKey},
		{name: "key 1 (8-bit)", frame: "11100001", want: wiegand.Reading{Kind: wiegand.KindKey, Bits: 8, Raw: 0xE1, Key: '1'}},
		{name: "key 0 (8-bit)", frame: "11110000", want: wiegand.Reading{Kind: wiegand.KindKey, Bits: 8, Raw: 0xF0, Key: '0'}},
		{name: "key * (8-bit)", frame: "01011010", want: wiegand.Reading{Kind: wiegand.KindKey, Bits: 8, Raw: 0x5A, Key: '*'}},
		{name: "key # (8-bit)", frame: "01001011", want: wiegand.Reading{Kind: wiegand.KindKey, Bits: 8, Raw: 0x4B, Key: '#'}},
		{name: "8-bit without complement", frame: "11110001", wantErr: wiegand.ErrKey},
		{name: "unknown length", frame: "101", wantErr: wiegand.ErrLength},
		{name: "32-bit frame without raw", frame: "10101010101010101010101010101010", wantErr: wiegand.ErrLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wiegand.NewDecoder().Decode(frame(t, tt.frame))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Zero(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDecodeRaw(t *testing.T) {
	d := wiegand.NewDecoder()
	d.Raw = true
	tests := []struct {
		name    string
		fr      wiegand.Frame
		want    wiegand.Reading
		wantErr error
	}{
		{name: "32 bits", fr: wiegand.Frame{Bits: 32, Raw: 0xDEADBEEF}, want: wiegand.Reading{Kind: wiegand.KindCard, Format: "raw", Bits: 32, Raw: 0xDEADBEEF}},
		{name: "64 bits", fr: wiegand.Frame{Bits: 64, Raw: 0xFFFF0000FFFF0000}, want: wiegand.Reading{Kind: wiegand.KindCard, Format: "raw", Bits: 64, Raw: 0xFFFF0000FFFF0000}},
		{name: "high junk masked", fr: wiegand.Frame{Bits: 12, Raw: 0xF123}, want: wiegand.Reading{Kind: wiegand.KindCard, Format: "raw", Bits: 12, Raw: 0x123}},
		{name: "known length bad parity is not raw", fr: wiegand.Frame{Bits: 26, Raw: 0}, wantErr: wiegand.ErrParity},
		{name: "65 bits", fr: wiegand.Frame{Bits: 65}, wantErr: wiegand.ErrOverflow},
		{name: "empty", fr: wiegand.Frame{}, wantErr: wiegand.ErrLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Decode(tt.fr)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestEncodeRange(t *testing.T) {
	tests := []struct {
		format         string
		facility, card uint64
	}{
		{"H10301", 256, 1},
		{"H10301", 1, 65536},
		{"C1000", 4096, 0},
		{"H10304", 0, 524288},
		{"H10302", 1, 1}, // no facility field
	}
	for _, tt := range tests {
		_, err := format(t, tt.format).Encode(tt.facility, tt.card)
		assert.ErrorIs(t, err, wiegand.ErrRange, "%+v", tt)
	}
}

// Every single-bit error in a card frame of every format must be rejected:
// one flipped bit must never turn into another valid card.
func TestSingleBitErrorsRejected(t *testing.T) {
	for _, f := range wiegand.StandardFormats() {
		d := wiegand.Decoder{Formats: []wiegand.Format{f}}
		var fc uint64
		if f.Facility.Len > 0 {
			fc = 3
		}
		fr, err := f.Encode(fc, 12345)
		require.NoError(t, err)
		for i := 0; i < f.Bits; i++ {
			bad := fr
			bad.Raw ^= 1 << i
			_, err := d.Decode(bad)
			assert.ErrorIs(t, err, wiegand.ErrParity, "%s bit %d", f.Name, f.Bits-i)
		}
	}
}

func TestEncodeKey(t *testing.T) {
	d := wiegand.NewDecoder()
	for _, k := range "0123456789*#" {
		for _, n := range []int{4, 8} {
			fr, err := wiegand.EncodeKey(k, n)
			require.NoError(t, err)
			got, err := d.Decode(fr)
			require.NoError(t, err)
			assert.Equal(t, k, got.Key)
		}
	}
	_, err := wiegand.EncodeKey('A', 4)
	assert.ErrorIs(t, err, wiegand.ErrKey)
	_, err = wiegand.EncodeKey('1', 6)
	assert.ErrorIs(t, err, wiegand.ErrKey)
}

// FuzzDecode checks the decoder never panics, never accepts a frame whose
// re-encoding differs, and never returns both a reading and an error.
func FuzzDecode(f *testing.F) {
	f.Add(26, uint64(0b10001010100111110000100100), false)
	f.Add(35, uint64(0x69A5154A4), true)
	f.Add(37, uint64(0x100EB79A2B), false)
	f.Add(8, uint64(0xE1), false)
	f.Add(4, uint64(11), false)
	f.Add(70, uint64(1), true)
	f.Add(-1, uint64(0), true)
	f.Fuzz(func(t *testing.T, n int, raw uint64, acceptRaw bool) {
		d := wiegand.NewDecoder()
		d.Raw = acceptRaw
		r, err := d.Decode(wiegand.Frame{Bits: n, Raw: raw})
		if err != nil {
			if r != (wiegand.Reading{}) {
				t.Fatalf("reading %+v with error %v", r, err)
			}
			return
		}
		if r.Bits != n {
			t.Fatalf("reading has %d bits, frame %d", r.Bits, n)
		}
		switch {
		case r.Kind == wiegand.KindKey:
			fr, err := wiegand.EncodeKey(r.Key, n)
			if err != nil || fr.Raw != r.Raw {
				t.Fatalf("key %q does not re-encode to %x: %v", r.Key, r.Raw, err)
			}
		case r.Format != wiegand.RawFormat:
			f, _ := wiegand.FormatByName(r.Format)
			fr, err := f.Encode(r.Facility, r.Card)
			if err != nil || fr.Raw != r.Raw {
				t.Fatalf("%s %d/%d re-encodes to %x, frame was %x (%v)", r.Format, r.Facility, r.Card, fr.Raw, r.Raw, err)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	d := wiegand.NewDecoder()
	var frames []wiegand.Frame
	for _, f := range d.Formats {
		fr, err := f.Encode(1, 4242)
		require.NoError(b, err)
		frames = append(frames, fr)
	}
	// One b.N iteration decodes many frames so the figure is meaningful with
	// -benchtime=1x.
	const perIter = 100_000
	var spent time.Duration
	for b.Loop() {
		start := time.Now()
		for i := range perIter {
			if _, err := d.Decode(frames[i%len(frames)]); err != nil {
				b.Fatal(err)
			}
		}
		spent += time.Since(start)
	}
	b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N*perIter), "wiegand_decode_ns")
}
