package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// packagedTemplate is the config the .deb installs, with its state dir moved
// to dir so the test needs no root.
func packagedTemplate(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "packaging", "portier.yaml"))
	require.NoError(t, err)
	body := strings.Replace(string(b), "state_dir: /var/lib/portier", "state_dir: "+filepath.Join(dir, "state"), 1)
	require.NotEqual(t, string(b), body, "the template no longer sets state_dir: /var/lib/portier")
	return writeConfig(t, body)
}

func TestCheckConfigPassesThePackagedTemplate(t *testing.T) {
	dir := t.TempDir()
	path := packagedTemplate(t, dir)
	out, errOut, code := runPortier(t, nil, "check-config", "--config", path)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, path+": OK (1 door(s), driver periph")
	assert.Contains(t, out, "\nfit for portier run, doctor, pinout, check, import; not sync, access-code: no salto: section\n")
	// The template's placeholder lock is pointed out, with its line.
	assert.Regexp(t, `warning: .*portier.yaml:\d+: doors\[0\]\.salto_locks: 00000000-0000-0000-0000-000000000000 is the template's placeholder`, out)
	// Checking creates nothing: the PIN key and state dir appear at first start.
	_, err := os.Stat(filepath.Join(dir, "state"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestCheckConfigReportsEveryProblemWithItsLine(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "salto-password")
	require.NoError(t, os.WriteFile(pw, []byte("secret\n"), 0o644))
	notDir := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	path := writeConfig(t, fmt.Sprintf(`gateway_id: test
state_dir: %s
pin_key_file: %s
doors:
  - id: front
    mode: card
    salto_locks: [0b5e0000-0000-4000-8000-000000000001]
salto:
  identity_url: https://identity.example
  api_url: https://api.example
  site_id: 5173e000-0000-4000-8000-000000000001
  client_id: gateway
  username: gw@example.com
  password_file: %s
hardware:
  driver: periph
  doors:
    front:
      relay: {pin: GPIO99}
      door_contact: {pin: GPIO4, switch: maybe}
`, notDir, filepath.Join(dir, "missing.key"), pw))
	out, errOut, code := runPortier(t, nil, "check-config", "--config", path)
	assert.Equal(t, 2, code)
	assert.Empty(t, out)
	for _, want := range []string{
		path + `:19: hardware.doors.front.relay.pin: "GPIO99" is not a GPIO of the 40-pin header`,
		path + `:20: hardware.doors.front.door_contact.switch: "maybe" is not no (normally open) or nc`,
		path + `:14: salto.password_file: ` + pw + ` is readable by other users (mode 0644): run ` + "`chmod 600 " + pw + "`",
		path + `:3: pin_key_file: pin key ` + filepath.Join(dir, "missing.key") + `: no such file or directory`,
		path + `:2: state_dir: ` + notDir + ` is not a directory`,
		"portier check-config: " + path + ": 5 problems",
	} {
		assert.Contains(t, errOut, want)
	}
	assert.NotContains(t, errOut, "secret", "a secret file's content was printed")
}

func TestCheckConfigSyntaxAndSchemaErrorsCarryLines(t *testing.T) {
	path := writeConfig(t, "gateway_id: g\ndoors:\n  - id: a\n    mode: card\n    salto_locks: [0b5e0000-0000-4000-8000-000000000001]\n    colour: red\n")
	_, errOut, code := runPortier(t, nil, "check-config", "--config", path)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, path+`:6: unknown key "colour"`)

	path = writeConfig(t, "gateway_id: g\ndoors: [\n")
	_, errOut, code = runPortier(t, nil, "check-config", "--config", path)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, path+`:2: did not find expected node content (`)
	assert.Contains(t, errOut, ": 1 problem\n")

	_, errOut, code = runPortier(t, nil, "check-config", "--config", filepath.Join(t.TempDir(), "none.yaml"))
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "none.yaml: no such file (check the path")
}

func TestCheckConfigSecretFiles(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "pin.key")
	pw := filepath.Join(dir, "pw")
	cfg := fmt.Sprintf(`gateway_id: test
state_dir: %s
pin_key_file: %s
doors:
  - {id: front, mode: card, salto_locks: [0b5e0000-0000-4000-8000-000000000001]}
salto:
  identity_url: https://identity.example
  api_url: https://api.example
  site_id: 5173E000-0000-4000-8000-000000000001
  client_id: gateway
  username: gw@example.com
  password_file: pw
`, dir, key) // a config for sync: no hardware: section
	path := filepath.Join(dir, "portier.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o640))

	cases := []struct {
		name      string
		key, pass string
		keyMode   os.FileMode
		want      string
	}{
		{"good", strings.Repeat("ab", 32), "hunter2", 0o600, ""},
		{"short key", "abcd", "hunter2", 0o600, "want at least 32 bytes written as hex"},
		{"key readable by others", strings.Repeat("ab", 32), "hunter2", 0o640, "is readable by other users (mode 0640)"},
		{"empty password file", strings.Repeat("ab", 32), "", 0o600, "salto.password_file: " + pw + " is empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(key, []byte(c.key+"\n"), c.keyMode))
			require.NoError(t, os.Chmod(key, c.keyMode))
			require.NoError(t, os.WriteFile(pw, []byte(c.pass), 0o600))
			out, errOut, code := runPortier(t, nil, "check-config", "--config", path)
			if c.want == "" {
				assert.Equal(t, 0, code, errOut)
				assert.Contains(t, out, "OK (1 door(s), no hardware: section, state dir "+dir+", Salto KS site 5173e000-0000-4000-8000-000000000001, no MQTT broker)")
				assert.Contains(t, out, "fit for portier sync, access-code, check, import; not run, doctor, pinout: no hardware: section")
				return
			}
			assert.Equal(t, 2, code)
			assert.Contains(t, errOut, c.want)
			assert.NotContains(t, errOut, "hunter2")
		})
	}
}

func TestCheckConfigRefusesAStateDirItCannotWrite(t *testing.T) {
	if os.Geteuid() == 0 {
		// root may write anywhere; the case is covered by "not a directory".
		t.Log("running as root: a read-only directory is writable for root, checking the non-directory case only")
		f := filepath.Join(t.TempDir(), "f")
		require.NoError(t, os.WriteFile(f, nil, 0o600))
		path := writeConfig(t, "gateway_id: g\nstate_dir: "+filepath.Join(f, "state")+"\ndoors:\n  - {id: a, mode: card, salto_locks: [0b5e0000-0000-4000-8000-000000000001]}\n")
		_, errOut, code := runPortier(t, nil, "check-config", "--config", path)
		assert.Equal(t, 2, code)
		assert.Contains(t, errOut, f+" is not a directory")
		return
	}
	ro := filepath.Join(t.TempDir(), "ro")
	require.NoError(t, os.Mkdir(ro, 0o500))
	path := writeConfig(t, "gateway_id: g\nstate_dir: "+filepath.Join(ro, "state")+"\ndoors:\n  - {id: a, mode: card, salto_locks: [0b5e0000-0000-4000-8000-000000000001]}\n")
	_, errOut, code := runPortier(t, nil, "check-config", "--config", path)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "does not exist and "+ro+" is not writable by this user to create it")
}

func TestCheckConfigMQTTSecrets(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "mqtt-password")
	require.NoError(t, os.WriteFile(pw, []byte("mqtt-secret\n"), 0o644))
	path := writeConfig(t, fmt.Sprintf(`gateway_id: test
state_dir: %s
doors:
  - {id: front, mode: card, salto_locks: [0b5e0000-0000-4000-8000-000000000001]}
hardware: {driver: sim, doors: {front: {relay: {pin: GPIO17}}}}
mqtt:
  broker: tcp://127.0.0.1:1883
  site_id: site-1
  username: gw
  password_file: %s
`, dir, pw))
	_, errOut, code := runPortier(t, nil, "check-config", "--for", "run", "--config", path)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, path+":10: mqtt.password_file: "+pw+" is readable by other users (mode 0644)")
	assert.NotContains(t, errOut, "mqtt-secret")

	require.NoError(t, os.Chmod(pw, 0o600))
	out, errOut, code := runPortier(t, nil, "check-config", "--for", "run", "--config", path)
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "no salto: section (offline: decides from the cache only), MQTT tcp://127.0.0.1:1883)")
}

// problemLines are the "file:line: …" lines of an error output.
func problemLines(out, path string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, path+":") {
			lines = append(lines, l)
		}
	}
	return lines
}

// Issue 15: check-config refuses what portier run refuses before it touches
// hardware, with the same words (one function, config.Check, plus what run
// lacks); the unit's ExecStartPre checks --for run.
func TestCheckConfigRefusesWhatRunRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body string
		forRun     bool // only check-config --for run refuses it
		want       string
	}{
		{"a door without a relay", "hardware:\n  driver: sim\n  doors:\n    front:\n      door_contact: {pin: GPIO4, switch: nc}\n", false,
			`:8: hardware.doors.front: door "front" has no relay: a door the gateway cannot unlock cannot be run`},
		{"no hardware section", "", true,
			": hardware.driver is not set: add a hardware: section with driver sim (a simulated board) or periph (GPIO and SPI) and a relay per door: portier run needs it"},
		{"an id that cannot name a topic", "hardware: {driver: sim, doors: {front: {relay: {pin: GPIO17}}}}\n", false,
			`:1: gateway_id: "hall.1" is not an id: 1–64 letters, digits, '_' or '-'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := "g"
			if strings.Contains(tc.name, "id") {
				gw = "hall.1"
			}
			path := writeConfig(t, "gateway_id: "+gw+"\nstate_dir: "+filepath.Join(dir, tc.name)+"\ndoors:\n  - {id: front, mode: card, salto_locks: [0b5e0000-0000-4000-8000-000000000001]}\n"+tc.body)
			out, errOut, code := runPortier(t, nil, "check-config", "--config", path)
			if tc.forRun {
				require.Equal(t, 0, code, errOut)
				assert.Contains(t, out, "not run, doctor, pinout: no hardware: section")
			} else {
				require.Equal(t, 2, code, out)
				assert.Contains(t, errOut, path+tc.want)
				assert.Contains(t, errOut, "portier check-config: "+path+": 1 problem\n")
			}
			_, checkOut, code := runPortier(t, nil, "check-config", "--for", "run", "--config", path)
			require.Equal(t, 2, code)
			assert.Contains(t, checkOut, path+tc.want)

			_, runOut, code := runPortier(t, nil, "run", "--config", path)
			assert.Equal(t, 2, code, runOut)
			assert.Contains(t, runOut, "1 problem in the config (portier check-config --for run shows the same)")
			assert.Equal(t, problemLines(checkOut, path), problemLines(runOut, path), "run and check-config --for run report the same problems")
		})
	}

	_, errOut, code := runPortier(t, nil, "check-config", "--for", "dance")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `--for "dance": want one of run, doctor, pinout, sync, access-code, check, import`)

	unit, err := os.ReadFile(filepath.Join("..", "..", "packaging", "portier.service"))
	require.NoError(t, err)
	assert.Contains(t, string(unit), "\nExecStartPre=/usr/bin/portier check-config --for run --config /etc/portier/portier.yaml\n")
}

// Issue 15: a file with three problems reports the three, and says so.
func TestCheckConfigCountsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, `gateway_id: g
state_dir: `+dir+`
doors:
  - {id: front, mode: card, salto_locks: [not-a-uuid]}
hardware: {driver: sim, doors: {front: {relay: {pin: GPIO17}}}}
mqtt:
  broker: broker.example
  outbox_limit: -1
`)
	_, errOut, code := runPortier(t, nil, "check-config", "--config", path)
	assert.Equal(t, 2, code)
	assert.Len(t, problemLines(errOut, path), 3, errOut)
	assert.Contains(t, errOut, path+`:4: doors[0].salto_locks: "not-a-uuid" is not a Salto KS id`)
	assert.Contains(t, errOut, "portier check-config: "+path+": 3 problems\n")
}

// Issue 15: YAML mistakes are reported on their line with a hint, a tab in
// plain words.
func TestCheckConfigSyntaxErrors(t *testing.T) {
	path := writeConfig(t, "gateway_id: g\nstate_dir: /tmp/s\n\n# doors\n\ndoors:\n  - id: front\n   mode: card\n")
	_, errOut, code := runPortier(t, nil, "check-config", "--config", path)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, path+":8: did not find expected '-' indicator (check this line's indentation")

	path = writeConfig(t, "gateway_id: g\ndoors:\n  - id: front\n\tmode: card\n")
	_, errOut, code = runPortier(t, nil, "check-config", "--config", path)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, path+":4: tabs are not allowed for indentation, use spaces (line 4)\n")
	assert.NotContains(t, errOut, "cannot start any token")
	assert.NotContains(t, errOut, "violates indentation")
}
