package main_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cmd/portier/config"
	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/osdp/osdpsim"
	"github.com/portier-io/portier/hal/osdp/osdptest"
	"github.com/portier-io/portier/hal/wiegand"
)

// withRealOSDPStudio is withOSDPStudio with the studio's bus real, on port.
func withRealOSDPStudio(t *testing.T, cfg []byte, port string) []byte {
	t.Helper()
	s := string(withOSDPStudio(t, cfg))
	bus := "{name: rs485-0, port: /dev/ttyUSB0, baud: 115200}"
	require.Contains(t, s, bus)
	return []byte(strings.Replace(s, bus, "{name: rs485-0, port: "+port+", baud: 115200, real: true}", 1))
}

// TestRealOSDPReaderEndToEnd runs the real binary on the sim board with
// the studio's OSDP bus real: its reader is an independent OSDP reader on a
// pseudo-terminal, driven by the test, not by --sim-input. A reader without
// a key file is installed by `portier reader install`; then its card and
// PIN are decided by the agent (the simulated relay pulses), its LED
// follows, status shows it, `reader output` and `reader set-address` reach
// it, the sim's osdp commands refuse it, and unplugged it goes offline.
func TestRealOSDPReaderEndToEnd(t *testing.T) {
	rd := osdptest.NewReader(t, osdpsim.Config{Addr: 1, Install: true, Outputs: 2,
		Identity: osdp.Identity{Vendor: [3]byte{0x0A, 0x0B, 0x0C}, Model: 7, Version: 3, Serial: 0x1234, Firmware: [3]byte{1, 2, 3}}})
	g := newGateway(t, "300ms", "clock_sync_check: \"off\"\n")
	cfg, err := os.ReadFile(g.cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(g.cfg, withRealOSDPStudio(t, cfg, rd.Port), 0o600))
	// doctor, portier stopped: the periph board's check of the bus.
	doc, stderr, code := runPortier(t, g.env, "doctor", "--config", g.cfg)
	assert.Equal(t, 3, code, "%s\n%s", doc, stderr)
	assert.Regexp(t, `pass  OSDP bus rs485-0: `+rd.Port+` at 115200 baud +the port opens`, doc)
	assert.Regexp(t, `FAIL  studio: reader at OSDP rs485-0 \(`+rd.Port+`\) address 1 +answers: vendor 0A-0B-0C .*; no key of its own yet`, doc)

	out := newLineBuffer()
	g.tee = out
	g.start()
	g.follow()

	refused := g.waitEvent(agent.EventReaderRefused)
	assert.Equal(t, "studio", refused.Door)
	assert.Contains(t, refused.Detail, "portier reader install --door studio")
	stdout, stderr, code := runPortier(t, g.env, "reader", "install", "--config", g.cfg, "--door", "studio")
	require.Equal(t, 0, code, "%s\n%s", stdout, stderr)
	assert.Contains(t, stdout, "Done: door studio's reader has a key of its own")
	raw, err := os.ReadFile(filepath.Join(g.dir, "osdp", "studio.key"))
	require.NoError(t, err)
	key, err := config.ParseOSDPKey(string(raw))
	require.NoError(t, err)
	held, install := rd.PD.Key()
	assert.Equal(t, key, held, "the reader holds the key portier stored")
	assert.False(t, install)
	online := g.waitEvent(agent.EventReaderOnline)
	assert.Contains(t, online.Detail, "OSDP rs485-0 ("+rd.Port+") address 1: secure channel established")

	// Ada's fob, then her PIN, at the reader itself.
	h10301, ok := wiegand.FormatByName("H10301")
	require.True(t, ok)
	fr, err := h10301.Encode(12, 1001)
	require.NoError(t, err)
	from := len(rd.PD.Commands())
	rd.PD.PresentWiegand(fr.Raw, fr.Bits)
	w := g.waitEvent(agent.EventAwaitingPIN)
	assert.Equal(t, "studio", w.Door)
	rd.PD.PressKeys("482915#")
	granted := g.waitEvent(agent.EventAccessGranted)
	assert.Equal(t, "studio", granted.Door)
	assert.Equal(t, "Ada Lovelace", granted.User.Name)
	assert.Equal(t, "studio", g.waitEvent(agent.EventRelayOn).Door, "the simulated relay pulses")
	assert.Equal(t, "studio", g.waitEvent(agent.EventRelayOff).Door)
	rd.WaitFeedback(t, from, osdp.FeedbackGrant)

	status, stderr, code := runPortier(t, g.env, "status", "--config", g.cfg)
	require.Equal(t, 0, code, stderr)
	assert.Regexp(t, `reader studio/osdp online, secure channel since .*; vendor 0A-0B-0C model 7 v3 serial 00001234 firmware 1\.2\.3; 2 outputs; OSDP rs485-0 \(`+rd.Port+`\) address 1; \d+ polls`, status)

	stdout, stderr, code = runPortier(t, g.env, "reader", "output", "--config", g.cfg, "--door", "studio", "--output", "1", "--on")
	require.Equal(t, 0, code, "%s\n%s", stdout, stderr)
	assert.True(t, rd.PD.Output(1, time.Now()), "the reader switched its output on")
	stdout, stderr, code = runPortier(t, g.env, "reader", "set-address", "--config", g.cfg, "--door", "studio", "--address", "5")
	require.Equal(t, 0, code, "%s\n%s", stdout, stderr)
	assert.Contains(t, stdout, "it moved from address 1 to 5 at 115200 baud")
	assert.Equal(t, byte(5), rd.PD.Addr())

	g.sim("osdp studio card H10301 12 1001")
	lines := waitNewLine(t, out, 0)
	assert.Contains(t, strings.Join(lines, "\n"), "door studio's OSDP reader is real (bus rs485-0 on "+rd.Port+", real: true)")

	rd.PD.SetFaults(osdpsim.Faults{Silent: true})
	off := g.waitEvent(agent.EventReaderOffline)
	assert.Equal(t, "studio", off.Door)
	assert.Contains(t, off.Detail, "timeout")
	rd.PD.SetFaults(osdpsim.Faults{})
	assert.Equal(t, "studio", g.waitEvent(agent.EventReaderOnline).Door)
	require.Equal(t, 0, g.signal(syscall.SIGTERM))
}

// TestRealOSDPInstallFailuresRecorded: an install that fails is recorded as
// reader_setup_failed, by whom and why, without a key: a reader that holds
// another key refuses the install key (the key file is put back: there is
// none), and an installer who gives up on a reader that went silent (the
// command is killed mid-install) leaves the failure in the history too.
func TestRealOSDPInstallFailuresRecorded(t *testing.T) {
	held := [16]byte{0x5A, 0x11, 0xC3, 0x9E, 0x70, 0x42, 0xB8, 0x0D, 0xE6, 0x27, 0x94, 0xFA, 0x3B, 0x81, 0x6C, 0xD5}
	rd := osdptest.NewReader(t, osdpsim.Config{Addr: 1, Key: held,
		Identity: osdp.Identity{Vendor: [3]byte{0x0A, 0x0B, 0x0C}, Model: 7, Version: 3, Serial: 0x1234, Firmware: [3]byte{1, 2, 3}}})
	g := newGateway(t, "300ms", "clock_sync_check: \"off\"\n")
	cfg, err := os.ReadFile(g.cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(g.cfg, withRealOSDPStudio(t, cfg, rd.Port), 0o600))
	g.start()
	g.follow()
	assert.Equal(t, "studio", g.waitEvent(agent.EventReaderRefused).Door)
	actor := fmt.Sprintf("local:uid=%d", os.Getuid())

	_, stderr, code := runPortier(t, g.env, "reader", "install", "--config", g.cfg, "--door", "studio")
	assert.Equal(t, 3, code, stderr)
	assert.Contains(t, stderr, "the reader refused the default install key: it holds another key")
	failed := g.waitEvent(agent.EventReaderSetupFailed)
	assertReaderEvent(t, failed, held, actor, `^command local-[0-9a-f]{16} by `+actor+`: install: reader vendor 0A-0B-0C model 7 v3 serial 00001234 firmware 1\.2\.3 at OSDP rs485-0 \(`+rd.Port+`\) address 1: the reader refused the default install key: it holds another key`)
	_, err = os.Stat(filepath.Join(g.dir, "osdp", "studio.key"))
	assert.ErrorIs(t, err, fs.ErrNotExist, "the key file is put back as it was: none")
	k, _ := rd.PD.Key()
	assert.Equal(t, held, k, "the reader keeps its key")

	// The reader goes silent; the installer gives up mid-install.
	rd.PD.SetFaults(osdpsim.Faults{Silent: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inst := exec.CommandContext(ctx, portierBin, "reader", "install", "--config", g.cfg, "--door", "studio")
	inst.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, g.env...)
	out := newLineBuffer()
	inst.Stdout, inst.Stderr = out, out
	require.NoError(t, inst.Start())
	for seen := 0; ; {
		lines := waitNewLine(t, out, seen)
		seen = len(lines)
		if strings.Contains(lines[seen-1], "sending it the new key (osdp_KEYSET)") {
			break
		}
		require.NotContains(t, lines[seen-1], "reader install:", "the install ended before it was given up")
	}
	cancel() // the installer's Ctrl-C
	assert.Error(t, inst.Wait())
	gaveUp := g.waitEvent(agent.EventReaderSetupFailed)
	assertReaderEvent(t, gaveUp, held, actor, `: install: reader vendor 0A-0B-0C .* address 1: the installer's command gave up before it ended: osdp: install studio: context canceled$`)
	assert.NotEqual(t, failed.CommandID, gaveUp.CommandID, "every attempt is its own command")
	require.Equal(t, 0, g.signal(syscall.SIGTERM))
}

// A real bus is checked where it goes wrong: real with the periph board
// and a DE pin on the simulated board at their lines; a port that does not
// exist stops run and fails doctor's port check, both with the fix.
func TestRealOSDPConfigChecks(t *testing.T) {
	dir := t.TempDir()
	missing := "/dev/serial/by-id/usb-portier-test-no-such-adapter"
	base := string(withRealOSDPStudio(t, []byte(fmt.Sprintf(runConfig, dir, "300ms")), missing))
	path := filepath.Join(dir, "portier.yaml")
	env := []string{"HOME=" + dir}
	for _, tc := range []struct {
		name    string
		old     string
		new     string
		problem string
	}{
		{"real with the periph board", "driver: sim", "driver: periph",
			`portier.yaml:\d+: hardware.osdp_buses\[0\].real: only with driver: sim \(a simulated board with this bus real\); with driver: periph every bus is real: remove it`},
		{"a DE pin on a real bus of the simulated board", "real: true}", "real: true, direction: gpio, de_pin: GPIO7}",
			`portier.yaml:\d+: hardware.osdp_buses\[0\].direction: gpio needs a DE pin, and the simulated board \(driver: sim\) drives no GPIO: use auto`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, base, tc.old)
			require.NoError(t, os.WriteFile(path, []byte(strings.Replace(base, tc.old, tc.new, 1)), 0o600))
			_, errOut, code := runPortier(t, env, "check-config", "--config", path)
			assert.Equal(t, 2, code, errOut)
			assert.Regexp(t, tc.problem, errOut)
		})
	}

	require.NoError(t, os.WriteFile(path, []byte(base), 0o600))
	out, errOut, code := runPortier(t, env, "check-config", "--config", path)
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	_, errOut, code = runPortier(t, env, "run", "--config", path)
	assert.Equal(t, 3, code, errOut)
	assert.Contains(t, errOut, "hardware.osdp_buses[0].port: osdp: open "+missing)
	assert.Contains(t, errOut, "plug in the RS-485 adapter")
	out, errOut, code = runPortier(t, env, "doctor", "--config", path)
	assert.Equal(t, 3, code, "%s\n%s", out, errOut)
	assert.Regexp(t, `FAIL  OSDP bus rs485-0: `+missing+` at 115200 baud +osdp: open `+missing, out)
	assert.Contains(t, out, "fix: plug in the RS-485 adapter")
}
