package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cmd/portier/config"
)

const (
	readKey = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
	piccKey = "00112233445566778899AABBCCDDEEFF"
	appKey  = "FFEEDDCCBBAA99887766554433221100"
)

func TestParseDESFireKeys(t *testing.T) {
	door := "system_id: Hive Coworking\nkeys:\n  - {version: 1, read: " + readKey + "}\n  - {version: 2, read: " + appKey + "}\n"
	keys, err := config.ParseDESFireKeys([]byte(door), "door.keys")
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.Equal(t, byte(2), keys[0].Version, "newest first")
	assert.Equal(t, []byte("Hive Coworking"), keys[1].SystemID)
	assert.Nil(t, keys[1].PICC)
	assert.Len(t, keys[1].Read, 16)
	assert.EqualValues(t, 0x504F52, keys[1].AID)

	issuing := "system_id: Hive Coworking\naid: 123456\nkeys:\n  - version: 7\n    picc: " + piccKey + "\n    app: " + appKey + "\n    read: " + readKey + "\n"
	keys, err = config.ParseDESFireKeys([]byte(issuing), "issuing.keys")
	require.NoError(t, err)
	assert.EqualValues(t, 0x123456, keys[0].AID)
	assert.Len(t, keys[0].PICC, 16)
	assert.Len(t, keys[0].App, 16)

	for _, tt := range []struct {
		name, body, want string
	}{
		{"no keys", "system_id: x\n", "keys: no key set"},
		{"no system id", "keys:\n  - {version: 1, read: " + readKey + "}\n", "system_id must have 1–21 bytes"},
		{"long system id", "system_id: this name is far too long for AN10922\nkeys:\n  - {version: 1, read: " + readKey + "}\n", "it has 37"},
		{"short key", "system_id: x\nkeys:\n  - {version: 1, read: 0011}\n", "keys[0].read must be an AES-128 key"},
		{"no read key", "system_id: x\nkeys:\n  - {version: 1, picc: " + piccKey + ", app: " + appKey + "}\n", "keys[0].read is missing"},
		{"picc without app", "system_id: x\nkeys:\n  - {version: 1, read: " + readKey + ", picc: " + piccKey + "}\n", "picc and app go together"},
		{"twice the same version", "system_id: x\nkeys:\n  - {version: 1, read: " + readKey + "}\n  - {version: 1, read: " + appKey + "}\n", "version 1 appears twice"},
		{"no version", "system_id: x\nkeys:\n  - {read: " + readKey + "}\n", "keys[0].version must be 0–255"},
		{"bad aid", "system_id: x\naid: 000000\nkeys:\n  - {version: 1, read: " + readKey + "}\n", "aid must be 6 hex digits"},
		{"unknown key", "system_id: x\nmaster: " + piccKey + "\nkeys:\n  - {version: 1, read: " + readKey + "}\n", "not a DESFire key file"},
		{"not YAML", "\x00\x01", "not a DESFire key file"},
		{"a key where a number belongs", "system_id: x\nkeys:\n  - {version: " + readKey + ", read: " + readKey + "}\n", "line 3: cannot unmarshal !!str (a value) into int"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.ParseDESFireKeys([]byte(tt.body), "k.keys")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "k.keys: "), err.Error())
			for _, k := range []string{readKey, piccKey, appKey} {
				assert.NotContains(t, strings.ToUpper(err.Error()), k, "a message never holds a key")
			}
		})
	}
}

func TestDemoKeysArePublicAndRecognised(t *testing.T) {
	demo := config.DemoDESFireKeys()
	require.Len(t, demo, 1)
	assert.Equal(t, "DEMO-READ-KEY--!", string(demo[0].Read))
	assert.True(t, config.IsDemo(demo))
	own, err := config.ParseDESFireKeys([]byte("system_id: x\nkeys:\n  - {version: 1, read: "+readKey+"}\n"), "own")
	require.NoError(t, err)
	assert.False(t, config.IsDemo(own))
}

const cardsConfig = `gateway_id: gw
state_dir: STATE
cards:
  unfingerprinted: UNFP
  desfire_key_file: KEYFILE
doors:
  - {id: front, mode: card, salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a1]}
  - {id: lab, mode: card, credential: desfire, salto_locks: [5a2d0c11-7c1e-4a52-8000-0000000000a2]}
hardware:
  driver: sim
  doors:
    front:
      mfrc522: {spi: SPI0.0}
      relay: {pin: GPIO17}
    lab:
      mfrc522: {spi: SPI0.1}
      relay: {pin: GPIO18}
`

// cardsCheck writes the config with its key file (mode, content) and checks it.
func cardsCheck(t *testing.T, unfp, keyFile string, mode os.FileMode, keys string) config.Report {
	t.Helper()
	body := strings.ReplaceAll(strings.ReplaceAll(cardsConfig, "UNFP", unfp), "KEYFILE", keyFile)
	path, dir := writeConfig(t, body)
	if keys != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "desfire.keys"), []byte(keys), mode))
	}
	return config.Check(path, noEnv)
}

func TestCheckCards(t *testing.T) {
	good := "system_id: x\nkeys:\n  - {version: 1, read: " + readKey + "}\n"
	r := cardsCheck(t, "require", "desfire.keys", 0o600, good)
	require.Empty(t, r.Problems)
	require.NotNil(t, r.Config)
	door, err := r.Config.Door("lab")
	require.NoError(t, err)
	assert.Equal(t, agent.CardModeDESFire, door.CardMode)
	assert.Equal(t, agent.FingerprintRequire, door.Unfingerprinted)
	front, err := r.Config.Door("front")
	require.NoError(t, err)
	assert.Equal(t, agent.CardModeUID, front.CardMode)
	hw, err := r.Config.HardwareConfig()
	require.NoError(t, err)
	assert.Equal(t, agent.CardModeDESFire, hw.Cards.Mode("lab"))
	assert.Equal(t, agent.CardModeUID, hw.Cards.Mode("front"))
	require.Len(t, hw.Cards.Sites, 1)

	for _, tt := range []struct {
		name, unfp, file string
		mode             os.FileMode
		keys, want       string
	}{
		{"readable by others", "learn", "desfire.keys", 0o644, good, ":5: cards.desfire_key_file: "},
		{"missing", "learn", "desfire.keys", 0, "", "no such file"},
		{"malformed", "learn", "desfire.keys", 0o600, "system_id: x\nkeys: []\n", "keys: no key set"},
		{"not set", "learn", `""`, 0, "", ":5: cards.desfire_key_file: not set, but door(s) lab require DESFire cards"},
		{"bad policy", "maybe", "desfire.keys", 0o600, good, `:4: cards.unfingerprinted "maybe": want learn or require`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := cardsCheck(t, tt.unfp, tt.file, tt.mode, tt.keys)
			assert.Contains(t, strings.Join(r.Problems, "\n"), tt.want)
		})
	}
	t.Run("demo keys warn", func(t *testing.T) {
		r := cardsCheck(t, "learn", "desfire.keys", 0o600, "system_id: x\nkeys:\n  - {version: 1, read: 44454D4F2D524541442D4B45592D2D21}\n")
		assert.Empty(t, r.Problems)
		assert.Contains(t, strings.Join(r.Warnings, "\n"), ":5: cards.desfire_key_file: holds Portier's public demo keys")
	})
}

func TestDoorCredentialKey(t *testing.T) {
	for _, tt := range []struct{ name, edit, want string }{
		{"desfire", "mode: card, credential: desfire", ""},
		{"uid", "mode: card, credential: uid", ""},
		{"bad value", "mode: card, credential: nfc", `doors[1].credential "nfc": want uid (the default) or desfire`},
		{"at a pin door", "mode: pin, credential: desfire", "doors[1].credential: desfire at a pin door"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.Replace(cardsConfig, "mode: card, credential: desfire", tt.edit, 1)
			_, err := config.Parse([]byte(strings.ReplaceAll(strings.ReplaceAll(body, "UNFP", "learn"), "KEYFILE", "k")), "p.yaml")
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	noReader := strings.Replace(cardsConfig, "      mfrc522: {spi: SPI0.1}\n", "", 1)
	_, err := config.Parse([]byte(strings.ReplaceAll(strings.ReplaceAll(noReader, "UNFP", "learn"), "KEYFILE", "k")), "p.yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `desfire needs an MFRC522 reader at door "lab"`)
}

func TestEmbeddedConfigUsesTheDemoKeys(t *testing.T) {
	cfg, err := config.Load("", func(k string) string {
		if k == "HOME" {
			return t.TempDir()
		}
		return ""
	})
	require.NoError(t, err)
	keys, err := cfg.DESFireKeys()
	require.NoError(t, err)
	assert.True(t, config.IsDemo(keys))
}

// FuzzParseDESFireKeys: a key file of any content is decoded or refused,
// never a panic, and a refusal never quotes a key.
func FuzzParseDESFireKeys(f *testing.F) {
	f.Add([]byte("system_id: x\nkeys:\n  - {version: 1, read: " + readKey + "}\n"))
	f.Add([]byte("system_id: Hive\naid: 123456\nkeys:\n  - version: 7\n    picc: " + piccKey + "\n    app: " + appKey + "\n    read: " + readKey + "\n"))
	f.Add([]byte("keys: [{version: 300, read: zz}]"))
	f.Add([]byte("system_id: [1, 2]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := config.ParseDESFireKeys(data, "k")
		if err != nil {
			for _, k := range []string{readKey, piccKey, appKey} {
				if strings.Contains(strings.ToUpper(err.Error()), k) {
					t.Fatalf("a key in the message: %v", err)
				}
			}
			return
		}
		for _, k := range keys {
			if len(k.Read) != 16 || len(k.SystemID) == 0 || len(k.SystemID) > 21 || (k.PICC == nil) != (k.App == nil) {
				t.Fatalf("accepted an unusable key set: %+v", k)
			}
		}
	})
}
