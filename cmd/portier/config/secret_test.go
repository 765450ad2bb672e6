package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cmd/portier/config"
	"github.com/portier-io/portier/sqlite/sqlitetest/powerfs"
)

// TestSecretFilesSurvivePowerCut: what a secret write or the PIN key's
// creation returned is still there, whole, after the power goes (a reader
// that took a new key answers only to it; a lost or empty PIN key would
// stop the agent from starting).
func TestSecretFilesSurvivePowerCut(t *testing.T) {
	fsys := powerfs.New(t, powerfs.Options{PowerCut: true})
	dir := fsys.Dir()
	secret := filepath.Join(dir, "reader.key")
	require.NoError(t, config.WriteSecret(secret, "old"))
	require.NoError(t, config.WriteSecret(secret, "new"))
	cfg := &config.Config{StateDir: dir}
	key, err := cfg.PINKey()
	require.NoError(t, err)

	require.NoError(t, fsys.Cut())
	require.NoError(t, fsys.PowerOn())

	got, err := config.ReadSecret(secret, "reader key")
	require.NoError(t, err)
	assert.Equal(t, "new", got, "the replaced secret came back after the power cut")
	again, err := cfg.PINKey()
	require.NoError(t, err)
	assert.Equal(t, key, again, "the PIN key was lost in the power cut and made anew")
	left, err := filepath.Glob(filepath.Join(dir, ".portier-*"))
	require.NoError(t, err)
	assert.Empty(t, left, "staged files left behind")
}

// TestPINKeyCreatedOnce: a key file that exists is used, never replaced.
func TestPINKeyCreatedOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{StateDir: dir}
	first, err := cfg.PINKey()
	require.NoError(t, err)
	st, err := os.Stat(filepath.Join(dir, "pin.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	second, err := cfg.PINKey()
	require.NoError(t, err)
	assert.Equal(t, first, second)
}
