package main_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(want), got)
}

func TestPinout(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "pinout.svg")
	out, errOut, code := runPortier(t, nil, "pinout", "--svg", svg)
	require.Equal(t, 0, code, errOut)
	golden(t, "pinout.txt", strings.Replace(out, svg, "PINOUT.svg", 1))
	b, err := os.ReadFile(svg)
	require.NoError(t, err)
	golden(t, "pinout.svg", string(b))
	assert.Contains(t, string(b), "front MFRC522 SDA")
}

const periphConfig = `gateway_id: test
doors:
  - id: front
    name: Front door
    mode: card
    salto_locks: [0b5e0000-0000-4000-8000-000000000001]
hardware:
  driver: periph
  doors:
    front:
      mfrc522: {spi: SPI1.2}
      wiegand: {d0: GPIO5, d1: GPIO6}
      relay: {pin: GPIO27, active_low: true}
      door_contact: {pin: GPIO4, switch: nc}
`

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portier.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

func TestDoctor(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		installed bool // the studio's OSDP reader has its key file
		wantCode  int
		wantOut   []string
		wantErr   string
	}{
		{
			name: "sim config passes", args: []string{"doctor"}, wantCode: 0, installed: true,
			wantOut: []string{"driver sim", "pass  front: MFRC522 on SPI0.0", "pass  studio: reader at OSDP rs485-0 (simulated line) address 1 ", "answers: vendor 02-50-54 model 1 v1",
				"secure channel established (AES-128)", "pass  storage: ",
				"pass  lab: ISO/IEC 14443-4 (card mode desfire)", "pass  cards: credential modes and DESFire keys", "front uid, studio uid, lab desfire; DESFire keys: Portier's public DEMO keys", "All 18 checks passed."},
		},
		{
			name: "a new OSDP reader fails until installed", args: []string{"doctor"}, wantCode: 3,
			wantOut: []string{"FAIL  studio: reader at OSDP rs485-0 (simulated line) address 1 ", "answers: vendor 02-50-54", "no key of its own yet", "does not exist yet (portier run creates it); ",
				"fix: with portier running, run `portier reader install --door studio`"},
		},
		{
			name: "sim with actuate", args: []string{"doctor", "--actuate"}, wantCode: 0, installed: true,
			wantOut: []string{"pass  front: relay on GPIO17", "switched and back to its safe state"},
		},
		{
			// No GPIO or SPI here (and SPI1.2 is rarely enabled on a Pi
			// either): every device check fails with a fix.
			name: "periph without the hardware fails helpfully", args: []string{"doctor", "--config", "PERIPH"}, wantCode: 3,
			wantOut: []string{"driver periph", "FAIL  front: MFRC522 on SPI1.2", "fix: ", "checks failed."},
		},
		{
			name: "bad wiring is a usage error", args: []string{"doctor", "--config", "BAD"}, wantCode: 2,
			wantErr: "hardware.doors.front.door_contact.pin: GPIO4 is already used by hardware.doors.front.relay.pin",
		},
		{name: "stray argument", args: []string{"doctor", "now"}, wantCode: 2, wantErr: "Usage: portier doctor"},
	}
	periph := writeConfig(t, periphConfig)
	bad := writeConfig(t, strings.Replace(periphConfig, "pin: GPIO27", "pin: GPIO4", 1))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = map[string]string{"PERIPH": periph, "BAD": bad}[a]
				if args[i] == "" {
					args[i] = a
				}
			}
			home := t.TempDir()
			if tt.installed {
				dir := filepath.Join(home, ".local", "state", "portier", "osdp")
				require.NoError(t, os.MkdirAll(dir, 0o700))
				require.NoError(t, os.WriteFile(filepath.Join(dir, "studio.key"), []byte("00112233445566778899AABBCCDDEEFF\n"), 0o600))
			}
			out, errOut, code := runPortier(t, []string{"HOME=" + home}, args...)
			assert.Equal(t, tt.wantCode, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			for _, w := range tt.wantOut {
				assert.Contains(t, out, w)
			}
			if tt.wantErr != "" {
				assert.Contains(t, errOut, tt.wantErr)
			}
		})
	}
}

// Issue 15: doctor on a machine without GPIO or SPI (this one, unless the
// tests run on a gateway) says so plainly and never shows periph's internal
// hints.
func TestDoctorWithoutGPIO(t *testing.T) {
	out, errOut, code := runPortier(t, nil, "doctor", "--config", writeConfig(t, periphConfig))
	assert.Equal(t, 3, code, errOut)
	assert.NotContains(t, out, "did you forget to call Init()")
	assert.NotContains(t, out, "none loaded")
	chips, _ := filepath.Glob("/dev/gpiochip*")
	spis, _ := filepath.Glob("/dev/spidev*")
	if len(chips) > 0 || len(spis) > 0 {
		t.Logf("this machine has GPIO or SPI (%v %v): the no-GPIO verdict is checked by hal's TestHostCheck only", chips, spis)
		return
	}
	assert.Contains(t, out, "FAIL  periph host drivers")
	assert.Contains(t, out, "this machine has no GPIO and no SPI: it is not a Raspberry Pi")
	assert.Regexp(t, `FAIL  front: MFRC522 on SPI1\.2 +SPI1\.2 not available: this machine has no SPI port`, out)
	assert.NotContains(t, out, "dtparam=spi=on to /boot", "no advice to enable SPI on a machine that has none")
}

// TestPinoutWarnsOnlyForWiegand: the 5 V warning is for Wiegand readers'
// D0/D1; a gateway without one is not told to buy a level shifter.
func TestPinoutWarnsOnlyForWiegand(t *testing.T) {
	const warning = "Wiegand readers drive 5 V"
	out, errOut, code := runPortier(t, nil, "pinout", "--config", writeConfig(t, periphConfig))
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, warning)
	svg := filepath.Join(t.TempDir(), "pinout.svg")
	out, errOut, code = runPortier(t, nil, "pinout", "--svg", svg, "--config",
		writeConfig(t, strings.Replace(periphConfig, "      wiegand: {d0: GPIO5, d1: GPIO6}\n", "", 1)))
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "front MFRC522 SDA")
	assert.NotContains(t, out, warning)
	b, err := os.ReadFile(svg)
	require.NoError(t, err)
	assert.NotContains(t, string(b), warning)
}

func TestPinoutErrors(t *testing.T) {
	_, errOut, code := runPortier(t, nil, "pinout", "extra")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "Usage: portier pinout")
	_, errOut, code = runPortier(t, nil, "pinout", "--svg", filepath.Join(t.TempDir(), "missing", "x.svg"))
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "pinout: ")
}
