package saltoks_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cloud/saltoks"
)

// TestParseGUID pins the "Salto ids are GUIDs" defect: an id written in
// upper case (as Salto's portal or a copy from a .NET tool may show it) is the
// same object as Salto's lower-case answer, and a value that is no GUID at all
// is refused where an operator typed it.
func TestParseGUID(t *testing.T) {
	const canonical = "5a2d0c11-7c1e-4a52-8000-0000000000a1"
	for _, in := range []string{
		canonical,
		"5A2D0C11-7C1E-4A52-8000-0000000000A1",
		"{5a2d0c11-7c1e-4a52-8000-0000000000A1}",
		"5a2d0c117c1e4a5280000000000000a1",
		"  5A2D0C11-7c1e-4a52-8000-0000000000a1 ",
	} {
		g, err := saltoks.ParseGUID(in)
		require.NoError(t, err, in)
		assert.Equal(t, canonical, g.String(), in)
		assert.Equal(t, canonical, saltoks.CanonicalID(in), in)
		assert.True(t, saltoks.SameID(in, canonical), in)
	}
	for _, in := range []string{
		"not-a-uuid", "", "5a2d0c11-7c1e-4a52-8000-0000000000a", "5a2d0c11-7c1e-4a52-8000-0000000000a1x",
		"5a2d0c11-7c1e-4a52-8000_0000000000a1", "5a2d0c1-17c1e-4a52-8000-0000000000a1", "ga2d0c11-7c1e-4a52-8000-0000000000a1",
		"{5a2d0c11-7c1e-4a52-8000-0000000000a1", "lock-1",
	} {
		_, err := saltoks.ParseGUID(in)
		assert.Error(t, err, in)
		assert.Equal(t, in, saltoks.CanonicalID(in), "a non-GUID id is kept as it is")
	}
	_, err := saltoks.ParseGUID("not-a-uuid")
	assert.EqualError(t, err, `"not-a-uuid" is not a Salto KS id (a GUID such as 5a2d0c11-7c1e-4a52-8000-0000000000a1)`)
	assert.False(t, saltoks.SameID("u1", "U1"), "short ids of test files compare exactly")
}

// FuzzParseGUID: whatever parses comes out canonical, parses again to itself,
// and names the same object as the input.
func FuzzParseGUID(f *testing.F) {
	for _, s := range []string{"5A2D0C11-7C1E-4A52-8000-0000000000A1", "{00000000-0000-0000-0000-000000000000}", "not-a-uuid",
		"5a2d0c117c1e4a5280000000000000a1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := saltoks.ParseGUID(s)
		if err != nil {
			if saltoks.CanonicalID(s) != s {
				t.Fatalf("CanonicalID changed %q, which ParseGUID refuses", s)
			}
			return
		}
		again, err := saltoks.ParseGUID(g.String())
		if err != nil || again != g {
			t.Fatalf("%q → %q does not parse to itself: %q %v", s, g, again, err)
		}
		if len(g) != 36 || !saltoks.SameID(s, g.String()) {
			t.Fatalf("%q → %q", s, g)
		}
		for _, c := range g.String() {
			if c >= 'A' && c <= 'Z' {
				t.Fatalf("%q is not lower case", g)
			}
		}
	})
}
