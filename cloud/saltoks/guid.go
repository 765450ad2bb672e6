package saltoks

import (
	"fmt"
	"strings"
)

// GUID is the id of a Salto KS object (site, lock, access group, user, time
// schedule) in its canonical form: lower-case hex, 8-4-4-4-12. Salto's ids are
// .NET Guids, which compare without regard to case; Portier writes every id in
// this one form at the boundary (config, API answers, snapshot files), so
// inside the gateway two ids name the same object exactly when they are equal
// strings.
type GUID string

func (g GUID) String() string { return string(g) }

// ParseGUID reads a Salto id as an operator may write it: the usual
// 8-4-4-4-12 form in any case, with or without braces, or the 32 hex digits
// without dashes. It returns the canonical form.
func ParseGUID(s string) (GUID, error) {
	g, ok := canonicalGUID(s)
	if !ok {
		return "", fmt.Errorf("%q is not a Salto KS id (a GUID such as 5a2d0c11-7c1e-4a52-8000-0000000000a1)", s)
	}
	return GUID(g), nil
}

// CanonicalID returns a Salto id in canonical form when it is a GUID, and
// anything else unchanged. Ids read from Salto or from a snapshot file go
// through it: Salto's ids are GUIDs, and the short ids of hand-written test
// files ("u1") stay as they are and compare exactly.
func CanonicalID(s string) string {
	if g, ok := canonicalGUID(s); ok {
		return g
	}
	return s
}

// SameID reports whether two Salto ids name the same object.
func SameID(a, b string) bool { return CanonicalID(a) == CanonicalID(b) }

func canonicalGUID(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 38 && s[0] == '{' && s[37] == '}' {
		s = s[1:37]
	}
	var hex []byte
	switch len(s) {
	case 36:
		for i := 0; i < 36; i++ {
			if i == 8 || i == 13 || i == 18 || i == 23 {
				if s[i] != '-' {
					return "", false
				}
				continue
			}
			hex = append(hex, s[i])
		}
	case 32:
		hex = []byte(s)
	default:
		return "", false
	}
	out := make([]byte, 0, 36)
	for i, c := range hex {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		default:
			return "", false
		}
		if i == 8 || i == 12 || i == 16 || i == 20 {
			out = append(out, '-')
		}
		out = append(out, c)
	}
	return string(out), true
}
