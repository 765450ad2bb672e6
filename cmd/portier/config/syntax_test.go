package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cmd/portier/config"
)

// TestSyntaxErrors: a YAML mistake is reported on the line it is on (the
// parser names the line its block starts on), with what to do about it
// (issue 15).
func TestSyntaxErrors(t *testing.T) {
	head := "gateway_id: gw\nstate_dir: STATE\n# the doors\n#\n"
	for _, tc := range []struct {
		name, body, want string
	}{
		{"a key indented one space too few", head + "doors:\n  - id: front\n    mode: card\n   salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a1]\n",
			`:8: did not find expected '-' indicator (check this line's indentation: the keys of one section start in the same column`},
		{"a section indented under a list", head + "doors:\n  - id: front\n    mode: card\n  hardware:\n    driver: sim\n",
			`:8: did not find expected '-' indicator (check this line's indentation`},
		{"a top-level key indented", head + "doors:\n  - id: front\n    mode: card\n hardware:\n  driver: sim\n",
			`:8: did not find expected key (check this line's indentation`},
		{"an unclosed list", head + "doors:\n  - id: front\n    salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a1\n    mode: card\n",
			`:7: did not find expected ',' or ']' (a [ ] list is not closed on this line, or an item in it needs quotes)`},
		{"an unclosed quote", head + "doors:\n  - id: front\n    name: \"Front door\n    mode: card\n",
			`:7: found unexpected end of stream (a quoted value that starts on this line is not closed: add its closing quote)`},
		{"a colon in a value", head + "doors:\n  - id: front\n    name: Hall: front\n",
			`:7: mapping values are not allowed in this context (a value holding ": " must be quoted`},
		{"a tab", head + "doors:\n  - id: front\n\tmode: card\n",
			`:7: tabs are not allowed for indentation, use spaces (line 7)`},
		{"a tab at the top", "gateway_id: gw\n\tstate_dir: STATE\n",
			`:2: tabs are not allowed for indentation, use spaces (line 2)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := writeConfig(t, tc.body)
			r := config.Check(path, noEnv)
			require.Len(t, r.Problems, 1, "%q", r.Problems)
			assert.Equal(t, path+tc.want, r.Problems[0][:min(len(r.Problems[0]), len(path+tc.want))])
			_, err := config.Load(path, noEnv)
			require.Error(t, err)
			assert.Contains(t, err.Error(), strings.TrimPrefix(tc.want, ":"+strings.SplitN(tc.want, ":", 3)[1]+": "), "Load says the same")
		})
	}
}

// TestWrongTypeNamesTheKey: a value of the wrong type is reported with its
// key and what the key takes, in the installer's words, not the YAML
// library's Go types ("cannot unmarshal !!str `yes` into bool").
func TestWrongTypeNamesTheKey(t *testing.T) {
	head := "gateway_id: gw\nstate_dir: STATE\n"
	door := "doors:\n  - id: front\n    salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a1]\n"
	for _, tc := range []struct {
		name, body, want string
	}{
		{"a bool in a flow map", head + door + "hardware:\n  driver: sim\n  doors:\n    front:\n      relay: {pin: GPIO17, active_low: yes please}\n",
			":10: active_low: `yes please` is not true or false"},
		{"a duration with a unit word", head + door + "    access_time: 5 sec\n", ":6: access_time: `5 sec` is not a duration: write it like 5s, 1m30s or 200ms"},
		{"a number", head + door + "    lockout: {max_failures: five}\n", ":6: max_failures: `five` is not a whole number"},
		{"a list given as one value", head + "doors:\n  - id: front\n    mode: card\n    salto_locks: 5a2d0c11\n", ":6: salto_locks: `5a2d0c11` is not a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := writeConfig(t, tc.body)
			r := config.Check(path, noEnv)
			assert.Contains(t, strings.Join(r.Problems, "\n"), path+tc.want)
			for _, p := range r.Problems {
				assert.NotContains(t, p, "cannot unmarshal")
			}
		})
	}
}

// The unknown-key hint names the example config that exists where the user
// is: here, a checkout (issue 15).
func TestUnknownKeyNamesTheExample(t *testing.T) {
	path, _ := writeConfig(t, goodConfig+"colour: red\n")
	r := config.Check(path, noEnv)
	require.Len(t, r.Problems, 1)
	example := filepath.Join("..", "..", "..", "packaging", "portier.yaml")
	assert.Contains(t, r.Problems[0], `unknown key "colour" (check its spelling and indentation; `+example+" has every key)")
	_, err := os.Stat(example)
	require.NoError(t, err)

	// On a gateway the hint names the installed example: the package
	// installs the template there.
	nfpm, err := os.ReadFile(filepath.Join("..", "..", "..", "packaging", "nfpm.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(nfpm), "  - src: packaging/portier.yaml\n    dst: "+config.InstalledExample+"\n")
}
