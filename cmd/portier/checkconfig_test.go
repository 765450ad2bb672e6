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
  site_id: site-1
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
		"portier check-config: " + path + ": 5 problem(s)",
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
	assert.Regexp(t, `portier.yaml:\d+: did not find expected node content`, errOut)

	_, errOut, code = runPortier(t, nil, "check-config", "--config", filepath.Join(t.TempDir(), "none.yaml"))
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "none.yaml: no such file or directory")
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
  site_id: site-1
  client_id: gateway
  username: gw@example.com
  password_file: pw
hardware: {driver: sim}
`, dir, key)
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
				assert.Contains(t, out, "OK (1 door(s), driver sim, state dir "+dir+", Salto KS site site-1, no MQTT broker)")
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
		path := writeConfig(t, "gateway_id: g\nstate_dir: "+filepath.Join(f, "state")+"\ndoors:\n  - {id: a, mode: card, salto_locks: [0b5e0000-0000-4000-8000-000000000001]}\nhardware: {driver: sim}\n")
		_, errOut, code := runPortier(t, nil, "check-config", "--config", path)
		assert.Equal(t, 2, code)
		assert.Contains(t, errOut, f+" is not a directory")
		return
	}
	ro := filepath.Join(t.TempDir(), "ro")
	require.NoError(t, os.Mkdir(ro, 0o500))
	path := writeConfig(t, "gateway_id: g\nstate_dir: "+filepath.Join(ro, "state")+"\ndoors:\n  - {id: a, mode: card, salto_locks: [0b5e0000-0000-4000-8000-000000000001]}\nhardware: {driver: sim}\n")
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
hardware: {driver: sim}
mqtt:
  broker: tcp://127.0.0.1:1883
  site_id: site-1
  username: gw
  password_file: %s
`, dir, pw))
	_, errOut, code := runPortier(t, nil, "check-config", "--config", path)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, path+":10: mqtt.password_file: "+pw+" is readable by other users (mode 0644)")
	assert.NotContains(t, errOut, "mqtt-secret")

	require.NoError(t, os.Chmod(pw, 0o600))
	out, errOut, code := runPortier(t, nil, "check-config", "--config", path)
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "no salto: section (offline: decides from the cache only), MQTT tcp://127.0.0.1:1883)")
}
