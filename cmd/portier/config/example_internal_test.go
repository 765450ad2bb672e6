package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// findExample prefers the installed example (a gateway), then a checkout
// above the working directory, then names both (issue 15: the hint named a
// repository path on gateways).
func TestFindExample(t *testing.T) {
	dir := t.TempDir()
	installed := filepath.Join(dir, "usr", "share", "doc", "portier", "portier.yaml.example")
	checkout := filepath.Join(dir, "src", "portier")
	wd := filepath.Join(checkout, "cmd", "portier")
	require.NoError(t, os.MkdirAll(wd, 0o755))

	assert.Equal(t, "the example config ("+installed+" from the package, packaging/portier.yaml in the source)", findExample(installed, wd))

	require.NoError(t, os.MkdirAll(filepath.Join(checkout, "packaging"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(checkout, "packaging", "portier.yaml"), nil, 0o644))
	assert.Equal(t, filepath.Join("..", "..", "packaging", "portier.yaml"), findExample(installed, wd))
	assert.Equal(t, filepath.Join("packaging", "portier.yaml"), findExample(installed, checkout))

	require.NoError(t, os.MkdirAll(filepath.Dir(installed), 0o755))
	require.NoError(t, os.WriteFile(installed, nil, 0o644))
	assert.Equal(t, installed, findExample(installed, wd))
}
