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

// osdpConfig has two doors' OSDP readers on one bus; KEYS is replaced by the
// studio reader's extra keys.
const osdpConfig = `gateway_id: gw
state_dir: STATE
doors:
  - {id: front, mode: card, salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a1]}
  - {id: studio, mode: card_and_pin, salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a1]}
hardware:
  driver: sim
  osdp_buses:
    - {name: rs485-0, port: /dev/ttyUSB0, baud: 115200}
  doors:
    front:
      relay: {pin: GPIO17}
      osdp: {bus: rs485-0, address: 1, key_file: front.key}
    studio:
      relay: {pin: GPIO18}
      osdp: {bus: rs485-0, address: 2KEYS}
`

const keyHex = "000102030405060708090A0B0C0D0E0F"

func osdpCheck(t *testing.T, studio string, prepare func(dir string)) config.Report {
	t.Helper()
	path, dir := writeConfig(t, strings.Replace(osdpConfig, "KEYS", studio, 1))
	if prepare != nil {
		prepare(dir)
	}
	return config.Check(path, noEnv)
}

func TestCheckOSDPKeys(t *testing.T) {
	t.Run("keys read into the config", func(t *testing.T) {
		r := osdpCheck(t, ", secure_channel: on", func(dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "front.key"), []byte(keyHex+"\n"), 0o600))
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "state", "osdp"), 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "state", "osdp", "studio.key"), []byte(strings.ToLower(keyHex)), 0o600))
		})
		require.Empty(t, r.Problems)
		assert.Empty(t, r.Warnings)
		require.NotNil(t, r.Config)
		front := r.Config.Hardware.Doors["front"].OSDP
		assert.Equal(t, [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, front.Key)
		assert.True(t, filepath.IsAbs(front.KeyFile), "relative to the config")
		studio := r.Config.Hardware.Doors["studio"].OSDP
		assert.Equal(t, filepath.Join(r.Config.StateDir, "osdp", "studio.key"), studio.KeyFile, "the default: in the state dir")
		assert.Equal(t, front.Key, studio.Key)
	})
	t.Run("a missing key file waits for the install", func(t *testing.T) {
		r := osdpCheck(t, "", nil)
		assert.Empty(t, r.Problems, "portier run starts: the install goes through it")
		require.Len(t, r.Warnings, 2)
		assert.Regexp(t, `portier.yaml:13: hardware.doors.front.osdp.key_file: .*front.key does not exist yet: the reader at door front is refused until `+"`portier reader install --door front`", r.Warnings[0])
		assert.Contains(t, r.Warnings[1], "hardware.doors.studio.osdp.key_file")
	})
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"readable by others", keyHex, 0o644, "is readable by other users (mode 0644): run `chmod 600"},
		{"empty", "", 0o600, "is empty"},
		{"not hex", "not a key", 0o600, "want 32 hex digits"},
		{"too short", "00010203", 0o600, "want 32 hex digits"},
		{"all zero", strings.Repeat("0", 32), 0o600, "an all-zero key is no key"},
	} {
		t.Run("bad key file: "+tc.name, func(t *testing.T) {
			r := osdpCheck(t, ", secure_channel: off", func(dir string) {
				p := filepath.Join(dir, "front.key")
				require.NoError(t, os.WriteFile(p, []byte(tc.content), tc.mode))
				require.NoError(t, os.Chmod(p, tc.mode))
			})
			require.Len(t, r.Problems, 1, "%v", r.Problems)
			assert.Regexp(t, `portier.yaml:13: hardware.doors.front.osdp.key_file: `, r.Problems[0])
			assert.Contains(t, r.Problems[0], tc.want)
		})
	}
	t.Run("plaintext warns every time", func(t *testing.T) {
		r := osdpCheck(t, ", secure_channel: off", func(dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "front.key"), []byte(keyHex), 0o600))
		})
		require.Empty(t, r.Problems)
		require.Len(t, r.Warnings, 1)
		assert.Regexp(t, `portier.yaml:16: hardware.doors.studio.osdp.secure_channel: off: the reader at door studio talks PLAINTEXT`, r.Warnings[0])
		assert.Empty(t, r.Config.Hardware.Doors["studio"].OSDP.KeyFile, "a plaintext reader has no key")
	})
	t.Run("a poll interval some readers drop their session at", func(t *testing.T) {
		r := osdpCheck(t, ", secure_channel: off", func(dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "front.key"), []byte(keyHex), 0o600))
			p := filepath.Join(dir, "portier.yaml")
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(p, []byte(strings.Replace(string(b), "baud: 115200}", "baud: 115200, poll_interval: 900ms}", 1)), 0o600))
		})
		require.Empty(t, r.Problems)
		require.Len(t, r.Warnings, 2)
		assert.Regexp(t, `portier.yaml:9: hardware.osdp_buses\[0\].poll_interval: 900ms: readers built on libosdp end their secure session after 0.8 s`, r.Warnings[0])
	})
	t.Run("wiring errors name their line", func(t *testing.T) {
		r := osdpCheck(t, ", bus: rs485-9", nil)
		assert.Contains(t, strings.Join(r.Problems, "\n"), "mapping key \"bus\" already defined")
		r = osdpCheck(t, "", func(dir string) {
			p := filepath.Join(dir, "portier.yaml")
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(p, []byte(strings.Replace(string(b), "address: 2", "address: 1", 1)), 0o600))
		})
		require.Len(t, r.Problems, 1)
		assert.Regexp(t, `portier.yaml:16: hardware.doors.studio.osdp.address: address 1 on bus rs485-0 is already used by hardware.doors.front.osdp`, r.Problems[0])
	})
}

func TestOSDPKeyFormat(t *testing.T) {
	k, err := config.ParseOSDPKey(" " + strings.ToLower(keyHex) + "\n")
	require.NoError(t, err)
	assert.Equal(t, keyHex, config.FormatOSDPKey(k))
}

func TestOSDPReaderLookup(t *testing.T) {
	path, _ := writeConfig(t, strings.Replace(osdpConfig, "KEYS", "", 1))
	cfg, err := config.Load(path, noEnv)
	require.NoError(t, err)
	o, err := cfg.OSDPReader("front")
	require.NoError(t, err)
	assert.Equal(t, 1, *o.Address)
	_, err = cfg.OSDPReader("garage")
	assert.ErrorContains(t, err, `no door "garage"`)
}
