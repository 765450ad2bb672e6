package osdp

import "testing"

// FuzzReplyData feeds arbitrary data to every reply decoder: none may
// panic, and whatever they accept must be consistent with the input.
func FuzzReplyData(f *testing.F) {
	f.Add([]byte{0, 1, 26, 0, 0xAA, 0xBB, 0xCC, 0xC0})
	f.Add([]byte{0, 3, '1', 0x7F, 0x0D})
	f.Add([]byte{0, 0, 4, '1', '2', '3', '4'})
	f.Add([]byte{0x00, 0x06, 0x8E, 2, 1, 4, 3, 2, 1, 1, 4, 7})
	f.Add([]byte{9, 1, 1, 8, 1, 0})
	f.Fuzz(func(t *testing.T, d []byte) {
		if id, err := parsePDID(d); err == nil && id.VendorOUI() == "" {
			t.Fatal("empty OUI")
		}
		if cs, err := parsePDCAP(d); err == nil && len(cs)*3 != len(d) {
			t.Fatalf("%d capabilities from %d bytes", len(cs), len(d))
		}
		_, _, _ = parseLSTATR(d)
		if c, err := parseRAW(d); err == nil {
			if len(c.Data) != (c.Bits+7)/8 || c.Bits == 0 {
				t.Fatalf("RAW of %d bits in %d bytes", c.Bits, len(c.Data))
			}
			c.Uint64()
		}
		if c, err := parseFMT(d); err == nil && len(c.Text) != len(d)-3 {
			t.Fatal("FMT length")
		}
		if k, err := parseKEYPPAD(d); err == nil && len(k) != len(d)-2 {
			t.Fatal("KEYPPAD length")
		}
		_, _, _ = parseCOM(d)
	})
}
