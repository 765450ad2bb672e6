package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const demoSite = "defaults/demo-site.json"

// importedDemo imports the demo site into a fresh state dir and returns the
// environment that points portier at it.
func importedDemo(t *testing.T) []string {
	t.Helper()
	env := []string{"STATE_DIRECTORY=" + t.TempDir()}
	out, errOut, code := runPortier(t, env, "import", demoSite)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `imported site "Hive Coworking Berlin"`)
	return env
}

func TestCheckDemoSite(t *testing.T) {
	env := importedDemo(t)
	tests := []struct {
		name   string
		args   []string
		stdin  string
		reason string
		user   string
	}{
		{"enrolled UID, resident", []string{"--door", "front", "--uid", "04:A1:B2:C3:D4:E5:F6", "--at", "2026-11-24T10:00"}, "", "granted", "Ada Lovelace"},
		{"PIN from stdin", []string{"--door", "front", "--pin-stdin", "--at", "2026-11-24T10:00"}, "135790\n", "granted", "Grace Hopper"},
		{"flex desk on Saturday", []string{"--door", "front", "--tag", "02301235", "--at", "2026-11-28T11:00"}, "", "outside_schedule", "Grace Hopper"},
		{"card alone at card_and_pin", []string{"--door", "studio", "--tag", "2301234", "--at", "2026-11-24T10:00"}, "", "second_factor_required", "Ada Lovelace"},
		{"card and PIN at card_and_pin", []string{"--door", "studio", "--tag", "02301234", "--pin", "482915", "--at", "2026-11-24T10:00"}, "", "granted", "Ada Lovelace"},
		{"card and someone else's PIN", []string{"--door", "studio", "--tag", "02301234", "--pin", "135790", "--at", "2026-11-24T10:00"}, "", "credential_mismatch", ""},
		{"blocked member", []string{"--door", "front", "--tag", "02301236"}, "", "user_blocked", "Mallory Blocked"},
		{"suspended guest", []string{"--door", "front", "--pin", "246810", "--at", "2026-12-05T18:00"}, "", "user_suspended", "Gus Guest"},
		{"day pass before its day", []string{"--door", "front", "--pin", "975310", "--at", "2026-11-22T10:00"}, "", "not_yet_valid", "Dana Daypass"},
		{"day pass on its day", []string{"--door", "front", "--pin", "975310", "--at", "2026-11-23T10:00"}, "", "granted", "Dana Daypass"},
		{"day pass after its day", []string{"--door", "front", "--pin", "975310", "--at", "2026-11-24T10:00"}, "", "expired", "Dana Daypass"},
		{"expired member", []string{"--door", "front", "--tag", "02301237", "--at", "2026-11-24T10:00"}, "", "expired", "Eve Expired"},
		{"group without schedule", []string{"--door", "front", "--tag", "02301239"}, "", "no_access_to_door", "Carl Cleaner"},
		{"night shift after midnight", []string{"--door", "front", "--tag", "02301238", "--at", "2026-11-24T02:30"}, "", "granted", "Omar Nightshift"},
		{"night shift at noon", []string{"--door", "front", "--tag", "02301238", "--at", "2026-11-24T12:00"}, "", "outside_schedule", "Omar Nightshift"},
		{"Wiegand fob in the lab, which requires DESFire cards", []string{"--door", "lab", "--wiegand", "H10301:12:3456", "--at", "2026-11-23T10:00"}, "", "wrong_credential_type", ""},
		{"a bare UID in the lab", []string{"--door", "lab", "--uid", "04:A1:B2:C3:D4:E5:F6", "--at", "2026-11-23T10:00"}, "", "wrong_credential_type", ""},
		{"Ada's DESFire card in the lab", []string{"--door", "lab", "--tag", "02301234", "--at", "2026-11-23T10:00"}, "", "granted", "Ada Lovelace"},
		{"resident not in lab group", []string{"--door", "lab", "--tag", "02301236", "--at", "2026-11-23T10:00"}, "", "user_blocked", "Mallory Blocked"},
		{"grace has no lab access", []string{"--door", "lab", "--tag", "02301235", "--at", "2026-11-23T10:00"}, "", "no_access_to_door", "Grace Hopper"},
		{"unknown card", []string{"--door", "front", "--uid", "01:02:03:04"}, "", "unknown_credential", ""},
		{"PIN at a card-only door", []string{"--door", "lab", "--pin", "482915"}, "", "wrong_credential_type", ""},
		{"party guest's code before the party", []string{"--door", "front", "--pin", "246810", "--at", "2026-12-05T16:00"}, "", "user_suspended", "Gus Guest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"check", "--json"}, tt.args...)
			out, errOut, code := runPortierIn(t, env, tt.stdin, args...)
			var d struct {
				Granted bool   `json:"granted"`
				Reason  string `json:"reason"`
				User    *struct {
					Name string `json:"name"`
				} `json:"user"`
				Credential string `json:"credential"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &d), "stdout %q stderr %q", out, errOut)
			assert.Equal(t, tt.reason, d.Reason)
			if tt.reason == "granted" {
				assert.Equal(t, 0, code)
				assert.True(t, d.Granted)
			} else {
				assert.Equal(t, 1, code)
				assert.False(t, d.Granted)
			}
			if tt.user != "" {
				require.NotNil(t, d.User)
				assert.Equal(t, tt.user, d.User.Name)
			}
			for _, pin := range []string{"482915", "135790", "975310", "246810"} {
				assert.NotContains(t, out+errOut, pin, "a PIN leaked into the output")
			}
		})
	}
}

func TestCheckHumanOutput(t *testing.T) {
	env := importedDemo(t)
	out, _, code := runPortier(t, env, "check", "--door", "front", "--tag", "02301234", "--at", "2026-11-24T10:00")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, `GRANTED  Ada Lovelace opens "Front door" (front)`)
	assert.Contains(t, out, `via:        access group "Resident (24/7)"`)
	assert.Contains(t, out, "Tue 2026-11-24 10:00:00 CET")

	out, _, code = runPortier(t, env, "check", "--door", "front", "--tag", "02301236")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `DENIED   "Front door" (front) stays locked`)
	assert.Contains(t, out, "reason:     user_blocked")
}

func TestCheckUsageErrors(t *testing.T) {
	env := importedDemo(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no door", []string{"check", "--tag", "1"}, "Usage: portier check"},
		{"unknown door", []string{"check", "--door", "nope", "--tag", "1"}, `no door "nope" (doors: front, studio, lab) in the config`},
		{"two cards", []string{"check", "--door", "front", "--tag", "1", "--uid", "01020304"}, "at most one of --uid, --wiegand and --tag"},
		{"bad uid", []string{"check", "--door", "front", "--uid", "0102"}, "UID has 2 bytes, want 4, 7 or 10"},
		{"bad wiegand", []string{"check", "--door", "front", "--wiegand", "H10301:x:1"}, "must be decimal numbers"},
		{"bad time", []string{"check", "--door", "front", "--tag", "1", "--at", "tomorrow"}, "--at:"},
		{"no credential", []string{"check", "--door", "front"}, "give a credential"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runPortier(t, env, tt.args...)
			assert.Equal(t, 2, code)
			assert.Contains(t, errOut, tt.want)
		})
	}
}

func TestCheckBeforeImport(t *testing.T) {
	_, errOut, code := runPortier(t, []string{"STATE_DIRECTORY=" + t.TempDir()}, "check", "--door", "front", "--tag", "1")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "holds no site snapshot yet")
}

func TestCheckMalformedPINIsADenial(t *testing.T) {
	env := importedDemo(t)
	out, _, code := runPortier(t, env, "check", "--json", "--door", "front", "--pin", "12")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `"reason": "invalid_credential"`)
	assert.Contains(t, out, "PIN must have 6–10 digits, got 2")
}

func TestImport(t *testing.T) {
	t.Run("reimport writes nothing", func(t *testing.T) {
		env := importedDemo(t)
		out, _, code := runPortier(t, env, "import", "--json", demoSite)
		require.Equal(t, 0, code)
		var res struct {
			RowsWritten int             `json:"rows_written"`
			Generation  int             `json:"generation"`
			Site        map[string]any  `json:"site"`
			Warnings    json.RawMessage `json:"warnings"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &res))
		assert.Equal(t, 0, res.RowsWritten)
		assert.Equal(t, 1, res.Generation)
		// snake_case like every other JSON Portier prints, and a list.
		assert.Equal(t, map[string]any{"id": "1f0c9d8e-0000-4000-8000-00000000a001", "uid": "DE0000012345", "name": "Hive Coworking Berlin", "time_zone": "Europe/Berlin"}, res.Site)
		assert.JSONEq(t, "[]", string(res.Warnings))
	})
	t.Run("bad file points at the object", func(t *testing.T) {
		env := []string{"STATE_DIRECTORY=" + t.TempDir()}
		data, err := os.ReadFile(demoSite)
		require.NoError(t, err)
		bad := strings.Replace(string(data), `"subscription_state": "suspended"`, `"subscription_state": "paused"`, 1)
		path := filepath.Join(t.TempDir(), "bad.json")
		require.NoError(t, os.WriteFile(path, []byte(bad), 0o600))
		_, errOut, code := runPortier(t, env, "import", path)
		assert.Equal(t, 2, code)
		assert.Contains(t, errOut, `users[5] (9b7f3a20-0000-4000-8000-000000000006): subscription_state "paused" is not subscribed or suspended`)
	})
	t.Run("warns about unmapped doors", func(t *testing.T) {
		env := []string{"STATE_DIRECTORY=" + t.TempDir()}
		cfg := filepath.Join(t.TempDir(), "portier.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte("doors:\n  - id: back\n    mode: card\n    salto_locks: [0b5e0000-0000-4000-8000-00000000dead]\n"), 0o600))
		_, errOut, code := runPortier(t, env, "import", "--config", cfg, demoSite)
		assert.Equal(t, 0, code)
		assert.Contains(t, errOut, `warning: door "back": no access group in the snapshot covers its locks`)
	})
	t.Run("world-readable PIN key is refused", func(t *testing.T) {
		dir := t.TempDir()
		key := filepath.Join(dir, "pin.key")
		require.NoError(t, os.WriteFile(key, []byte(strings.Repeat("ab", 32)+"\n"), 0o644))
		cfg := filepath.Join(dir, "portier.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte("pin_key_file: "+key+"\ndoors:\n  - id: front\n    mode: card\n    salto_locks: [0b5e0000-0000-4000-8000-000000000001]\n"), 0o600))
		_, errOut, code := runPortier(t, []string{"STATE_DIRECTORY=" + dir}, "import", "--config", cfg, demoSite)
		assert.Equal(t, 2, code)
		assert.Contains(t, errOut, "readable by other users (mode 0644)")
	})
	t.Run("a different PIN key is refused", func(t *testing.T) {
		dir := t.TempDir()
		env := []string{"STATE_DIRECTORY=" + dir}
		_, _, code := runPortier(t, env, "import", demoSite)
		require.Equal(t, 0, code)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "pin.key"), []byte(strings.Repeat("cd", 32)+"\n"), 0o600))
		_, errOut, code := runPortier(t, env, "check", "--door", "front", "--tag", "1")
		assert.Equal(t, 2, code)
		assert.Contains(t, errOut, "was built with a different PIN key")
	})
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", "doors:\n  - id: front\n    mode: card\n    salto_lock: [x]\n", `line 4: unknown key "salto_lock"`},
		{"bad mode", "doors:\n  - id: front\n    mode: cards\n    salto_locks: [0b5e0000-0000-4000-8000-000000000001]\n", `line 2: doors[0]: door "front": mode "cards" is not card, pin, card_or_pin or card_and_pin`},
		{"unmapped door", "doors:\n  - id: front\n    mode: card\n", `line 2: doors[0]: door "front" is mapped to no Salto lock and no access group`},
		{"duplicate door", "doors:\n  - id: a\n    mode: card\n    salto_locks: [0b5e0000-0000-4000-8000-000000000001]\n  - id: a\n    mode: pin\n    salto_locks: [0b5e0000-0000-4000-8000-000000000001]\n", `door id "a" is used twice`},
		{"top-level typo", "dors: []\n", `unknown key "dors"`},
		{"no doors", "gateway_id: x\n", "no doors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "portier.yaml")
			require.NoError(t, os.WriteFile(cfg, []byte(tt.yaml), 0o600))
			_, errOut, code := runPortier(t, []string{"STATE_DIRECTORY=" + t.TempDir()}, "import", "--config", cfg, demoSite)
			assert.Equal(t, 2, code)
			assert.Contains(t, errOut, cfg+": ")
			assert.Contains(t, errOut, tt.want)
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	out, _, code := runPortier(t, nil, "version")
	assert.Equal(t, 0, code)
	assert.True(t, strings.HasPrefix(out, "portier "), out)
	out, _, code = runPortier(t, nil, "help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "check")
	assert.Contains(t, out, "import")
}

// TestBuildWithoutCGOFails: go-sqlite3 without cgo is a stub that fails on
// the gateway at run time, so the build itself must refuse, and say why.
func TestBuildWithoutCGOFails(t *testing.T) {
	cmd := exec.Command("go", "build", "-o", os.DevNull, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "a build without cgo succeeded")
	assert.Contains(t, string(out), "portierNeedsCGOSetCGOEnabled1")
}
