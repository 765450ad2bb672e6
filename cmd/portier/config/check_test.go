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

// writeConfig writes body as portier.yaml in a temp dir; "STATE" in body is
// replaced by a state dir there.
func writeConfig(t *testing.T, body string) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "portier.yaml")
	body = strings.ReplaceAll(body, "STATE", filepath.Join(dir, "state"))
	require.NoError(t, os.WriteFile(path, []byte(body), 0o640))
	return path, dir
}

func noEnv(string) string { return "" }

const goodConfig = `gateway_id: gw
state_dir: STATE
doors:
  - {id: front, mode: card, salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a1]}
hardware:
  driver: sim
  doors:
    front:
      relay: {pin: GPIO17}
`

func TestCheckGoodConfig(t *testing.T) {
	path, dir := writeConfig(t, goodConfig)
	r := config.Check(path, noEnv)
	assert.Empty(t, r.Problems)
	assert.Empty(t, r.Warnings)
	require.NotNil(t, r.Config)
	assert.Equal(t, path, r.Config.Path())
	assert.Equal(t, "1 door(s), driver sim, state dir "+filepath.Join(dir, "state")+", no salto: section (offline: decides from the cache only), no MQTT broker", r.Config.Summary())
	_, err := os.Stat(filepath.Join(dir, "state"))
	assert.ErrorIs(t, err, os.ErrNotExist, "Check creates nothing")
}

// TestCheckReportsEveryProblem: problems of different kinds in one file are
// all reported, each with its line, in the file's line order, where a first
// decoding error used to hide the rest.
func TestCheckReportsEveryProblem(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"a key, a value and a pin", `gateway_id: gw
state_dir: STATE
log_level: loud
doors:
  - id: front
    mode: card
    salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a1]
    colour: red
hardware:
  driver: sim
  doors:
    front:
      relay: {pin: GPIO99}
`, []string{
			`:3: log_level: "loud" is not debug, info, warn or error`,
			`:8: unknown key "colour"`,
			`:13: hardware.doors.front.relay.pin: "GPIO99" is not a GPIO`,
		}},
		{"the mqtt section, the doors and the state dir", `gateway_id: gw
state_dir: /dev/null/state
doors:
  - {id: front, mode: sometimes, salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a1]}
hardware: {driver: sim, doors: {front: {relay: {pin: GPIO17}}}}
mqtt:
  broker: broker.example
`, []string{
			`:2: state_dir: /dev/null is not a directory`,
			`:4: doors[0]: door "front": mode "sometimes" is not card, pin, card_or_pin or card_and_pin`,
			`:7: mqtt: broker "broker.example": want scheme://host:port`,
		}},
		// A bad gateway id is said once, at its line, not again under mqtt
		// (it names the topics).
		{"a bad gateway id with mqtt", `gateway_id: hall.1
state_dir: STATE
doors:
  - {id: front, mode: card, salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a1]}
hardware: {driver: sim, doors: {front: {relay: {pin: GPIO17}}}}
mqtt:
  broker: tcp://127.0.0.1:1883
  site_id: s1
`, []string{
			`:1: gateway_id: "hall.1" is not an id`,
		}},
		// Issue 15: three problems in one section are three problems.
		{"three mqtt mistakes", `gateway_id: gw
state_dir: STATE
doors:
  - {id: front, mode: card, salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a1]}
hardware: {driver: sim, doors: {front: {relay: {pin: GPIO17}}}}
mqtt:
  broker: broker.example
  password_file: mqtt-password
  outbox_limit: -1
`, []string{
			`:7: mqtt: broker "broker.example": want scheme://host:port`,
			`:7: mqtt: password_file is set but username is not`,
			`:7: mqtt: outbox_limit must not be negative`,
		}},
		// Issue 15: what portier run refuses before it touches hardware,
		// check-config refuses too.
		{"ids, a door without a relay, Salto addresses", `gateway_id: hall.1
state_dir: STATE
doors:
  - {id: front, mode: card, salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a1]}
  - {id: side.door, mode: card, salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a1]}
salto:
  identity_url: https://identity.eu.my-clay.com/connect/token
  api_url: https://connect.my-clay.com/v1.2
  site_id: ES0000012345
  client_id: gw
  username: gw@example.com
  password_file: salto-password
hardware:
  driver: sim
  doors:
    front:
      door_contact: {pin: GPIO4}
`, []string{
			`:1: gateway_id: "hall.1" is not an id: 1–64 letters, digits, '_' or '-'`,
			`:5: doors[1]: door id "side.door" is not an id`,
			`:7: salto.identity_url: "https://identity.eu.my-clay.com/connect/token" ends in /connect/token, which the client adds itself: give the identity server's address, e.g. https://identity.eu.my-clay.com`,
			`:8: salto.api_url: "https://connect.my-clay.com/v1.2" ends in the API version /v1.2, which the client adds to every request itself: give the server's address, e.g. https://connect.my-clay.com`,
			`:9: salto.site_id: "ES0000012345" is the site's uid, not its id`,
			`:12: salto.password_file: `,
			`:16: hardware.doors.front: door "front" has no relay: a door the gateway cannot unlock cannot be run`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := writeConfig(t, tc.body)
			r := config.Check(path, noEnv)
			require.Len(t, r.Problems, len(tc.want), "%q", r.Problems)
			for i, w := range tc.want {
				assert.True(t, strings.HasPrefix(r.Problems[i], path), r.Problems[i])
				assert.Contains(t, r.Problems[i], w)
			}
		})
	}
}

// TestCheckWithoutHardware: a config for sync and check needs no hardware:
// section; Lacks says which commands need one (issue 15).
func TestCheckWithoutHardware(t *testing.T) {
	path, _ := writeConfig(t, "gateway_id: gw\nstate_dir: STATE\ndoors:\n  - {id: front, mode: card, salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a1]}\n")
	r := config.Check(path, noEnv)
	assert.Empty(t, r.Problems)
	require.NotNil(t, r.Config)
	assert.Contains(t, r.Config.Summary(), "1 door(s), no hardware: section, state dir")
	for _, cmd := range []string{"run", "doctor", "pinout"} {
		lacks := r.Lacks(cmd)
		require.Len(t, lacks, 1, cmd)
		assert.Equal(t, path+": hardware.driver is not set: add a hardware: section with driver sim (a simulated board) or periph (GPIO and SPI) and a relay per door: portier "+cmd+" needs it (portier init writes one)", lacks[0])
	}
	assert.Equal(t, []string{path + ": there is no salto: section: portier sync talks to Salto KS with it (docs/saltoks.md)"}, r.Lacks("sync"))
	assert.Empty(t, r.Lacks("check"))
	assert.Empty(t, r.Lacks("import"))
	fit, unfit := r.FitFor()
	assert.Equal(t, []string{"check", "import"}, fit)
	assert.Equal(t, map[string]string{"run": "no hardware: section", "doctor": "no hardware: section", "pinout": "no hardware: section",
		"sync": "no salto: section", "access-code": "no salto: section"}, unfit)
	assert.ElementsMatch(t, config.Commands(), append(fit, "run", "doctor", "pinout", "sync", "access-code"))

	r = config.Check(writeFirst(t, goodConfig), noEnv)
	assert.Empty(t, r.Lacks("run"))
	fit, _ = r.FitFor()
	assert.Equal(t, []string{"run", "doctor", "pinout", "check", "import"}, fit)
}

func writeFirst(t *testing.T, body string) string {
	path, _ := writeConfig(t, body)
	return path
}

func TestCheckConfigOnlyWhenItLoads(t *testing.T) {
	// A config Load accepts but run cannot use: it is returned with what it
	// lacks, so run can make the outputs safe before refusing to start.
	path, _ := writeConfig(t, "gateway_id: gw\nstate_dir: STATE\ndoors:\n  - {id: front, mode: card, salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a1]}\n")
	_, err := config.Load(path, noEnv)
	require.NoError(t, err)
	r := config.Check(path, noEnv)
	assert.NotNil(t, r.Config)
	assert.Empty(t, r.Problems)
	assert.Len(t, r.Lacks("run"), 1)

	// A config Load refuses is not returned.
	path, _ = writeConfig(t, strings.Replace(goodConfig, "GPIO17", "GPIO99", 1))
	_, err = config.Load(path, noEnv)
	require.Error(t, err)
	r = config.Check(path, noEnv)
	assert.Nil(t, r.Config)
	assert.Len(t, r.Problems, 1)

	r = config.Check(filepath.Join(t.TempDir(), "none.yaml"), noEnv)
	assert.Nil(t, r.Config)
	require.Len(t, r.Problems, 1)
	assert.Contains(t, r.Problems[0], "none.yaml: no such file (check the path")

	r = config.Check(path, noEnv)
	assert.Nil(t, r.Config)
}

func TestCheckEmbeddedDefault(t *testing.T) {
	home := t.TempDir()
	r := config.Check("", func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	})
	assert.Empty(t, r.Problems)
	require.NotNil(t, r.Config)
	assert.Equal(t, config.EmbeddedName, r.Config.Name())
	assert.Equal(t, filepath.Join(home, ".local", "state", "portier"), r.Config.StateDir)

	r = config.Check("", noEnv)
	require.Len(t, r.Problems, 1)
	assert.Contains(t, r.Problems[0], "state_dir is not set and neither STATE_DIRECTORY, XDG_STATE_HOME nor HOME is")
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	require.NoError(t, config.WriteSecret(path, "hunter2"))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	got, err := config.ReadSecret(path, "salto.password_file")
	require.NoError(t, err)
	assert.Equal(t, "hunter2", got)
	require.NoError(t, config.CheckSecretFile(path))

	require.NoError(t, os.Chmod(path, 0o640))
	_, err = config.ReadSecret(path, "salto.password_file")
	assert.ErrorContains(t, err, "salto.password_file: "+path+" is readable by other users (mode 0640): run `chmod 600")
	assert.Error(t, config.CheckSecretFile(path))

	require.NoError(t, os.Chmod(path, 0o600))
	require.NoError(t, os.WriteFile(path, []byte("\n"), 0o600))
	_, err = config.ReadSecret(path, "mqtt.password_file")
	assert.EqualError(t, err, "mqtt.password_file: "+path+" is empty")
}

// TestUnreadableConfigSaysWhatToDo: the config file an installer names
// wrongly, or may not read, is reported with what to do, by Check and Load
// alike.
func TestUnreadableConfigSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, path, want string
	}{
		{"a missing file", filepath.Join(dir, "portier.yml"), "portier.yml: no such file (check the path; the installed service's config is " + config.PackagedPath + ")"},
		{"a directory", dir, dir + " is a directory: --config names the config file, e.g. " + filepath.Join(dir, "portier.yaml")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := config.Check(tt.path, noEnv)
			require.Len(t, r.Problems, 1)
			assert.Contains(t, r.Problems[0], tt.want)
			_, err := config.Load(tt.path, noEnv)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
