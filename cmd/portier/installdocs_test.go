package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The wiring pictures of docs/install.md are `portier pinout` output for the
// configs `portier init --wiring …` writes. This regenerates them and fails
// when the committed ones are stale (go test -run InstallDocs -update
// rewrites them).
func TestInstallDocsWiringPicturesAreCurrent(t *testing.T) {
	guide, err := os.ReadFile(filepath.Join("..", "..", "docs", "install.md"))
	require.NoError(t, err)
	for _, wiring := range []string{"mfrc522", "wiegand"} {
		t.Run(wiring, func(t *testing.T) {
			s := newInitSetup(t)
			_, errOut, code := runPortier(t, nil, "init", "--config", s.config, "--state-dir", s.state, "--owner=",
				"--gateway-id", "gateway-1", "--salto-locks", "0b5e0000-0000-4000-8000-000000000001", "--wiring", wiring)
			require.Equal(t, 0, code, errOut)
			svg := filepath.Join(s.dir, "pinout.svg")
			text, errOut, code := runPortier(t, nil, "pinout", "--config", s.config, "--svg", svg)
			require.Equal(t, 0, code, errOut)
			got, err := os.ReadFile(svg)
			require.NoError(t, err)

			committed := filepath.Join("..", "..", "docs", "img", "pinout-"+wiring+".svg")
			if *updateGolden {
				require.NoError(t, os.WriteFile(committed, got, 0o644))
			}
			want, err := os.ReadFile(committed)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got), "%s is stale: run go test ./cmd/portier -run InstallDocs -update", committed)

			// The guide shows the same header as text.
			header := text[:strings.Index(text, "\nWrote ")]
			header = strings.TrimSpace(header[strings.Index(header, "\n\n")+2:])
			assert.Contains(t, string(guide), header, "docs/install.md's %s pinout text is stale: paste `portier pinout` output for `portier init --wiring %s`", wiring, wiring)
		})
	}
}

// The package's template wires the same door as init's mfrc522 setup, so
// the guide's first picture is also the template's.
func TestPackagedTemplateMatchesTheMFRC522Picture(t *testing.T) {
	path := packagedTemplate(t, t.TempDir())
	svg := filepath.Join(t.TempDir(), "pinout.svg")
	_, errOut, code := runPortier(t, nil, "pinout", "--config", path, "--svg", svg)
	require.Equal(t, 0, code, errOut)
	got, err := os.ReadFile(svg)
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join("..", "..", "docs", "img", "pinout-mfrc522.svg"))
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "packaging/portier.yaml's wiring differs from docs/img/pinout-mfrc522.svg")
}
