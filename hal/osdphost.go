package hal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal/osdp"
)

// openOSDP opens the OSDP buses of a validated config on this gateway: each
// serial port (exclusively) and DE pin, so a missing one is reported with
// the other missing hardware before anything is driven. On problems it
// closes what it opened.
func openOSDP(cfg Config, doorIDs []string, r *resolver) []OSDPBus {
	buses, err := cfg.OSDPBusPlan(doorIDs)
	if err != nil {
		r.fail("hardware.doors: %v", err)
		return nil
	}
	for i := range buses {
		b := &buses[i]
		if b.Direction.Mode == osdp.DirectionPin {
			bc, _ := cfg.Bus(b.Name)
			if p := r.pin(busKey(cfg, b.Name)+".de_pin", bc.DEPin); p != nil {
				b.Direction.Pin = p
			}
		}
	}
	r.problems = append(r.problems, OpenOSDPPorts(cfg, buses)...)
	return buses
}

// OpenOSDPPorts opens the serial port of each bus of cfg's plan, exclusively
// (a console, ModemManager or a second portier holding it is refused), and
// sets its Opened, and Open to open it again after it failed. It returns one
// problem per port that does not open, at its config key with its fix; such
// a bus keeps Opened nil. Close the opened ports with CloseOSDPPorts unless
// a runtime takes them. The periph board opens every bus this way, the
// simulated board its real ones.
func OpenOSDPPorts(cfg Config, buses []OSDPBus) []string {
	var problems []string
	for i := range buses {
		b := &buses[i]
		port, err := osdp.OpenSerial(b.Port, b.Baud)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s.port: %v (%s)", busKey(cfg, b.Name), err, serialFix(b.Port, err)))
			continue
		}
		b.Opened = port
		name, baud := b.Port, b.Baud
		b.Open = func() (OSDPPort, error) { return osdp.OpenSerial(name, baud) }
	}
	return problems
}

// CloseOSDPPorts closes the ports OpenOSDPPorts opened.
func CloseOSDPPorts(buses []OSDPBus) {
	for _, b := range buses {
		if b.Opened != nil {
			_ = b.Opened.Close()
		}
	}
}

// busKey is the config key of the bus named name.
func busKey(cfg Config, name string) string {
	for i, b := range cfg.OSDPBuses {
		if b.Name == name {
			return fmt.Sprintf("hardware.osdp_buses[%d]", i)
		}
	}
	return "hardware.osdp_buses"
}

// serialFix tells why a serial port could not be opened.
func serialFix(port string, err error) string {
	switch {
	case errors.Is(err, os.ErrPermission):
		return "add the service user to the dialout group (sudo usermod -aG dialout portier) and restart; the packaged unit does this"
	case errors.Is(err, syscall.EBUSY):
		return fmt.Sprintf("another program holds %s (a serial console, ModemManager, a running portier): stop it (sudo lsof %s)", port, port)
	case errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "no such file"):
		if strings.HasPrefix(port, "/dev/serial0") || strings.HasPrefix(port, "/dev/ttyAMA") || strings.HasPrefix(port, "/dev/ttyS") {
			return "enable the Pi's UART: enable_uart=1 in /boot/firmware/config.txt, remove console=serial0,… from cmdline.txt (sudo raspi-config: serial port on, login shell off), reboot"
		}
		return "plug in the RS-485 adapter and name it by id (ls -l /dev/serial/by-id); dmesg shows whether the kernel saw it"
	}
	return "check the port name and that it is a serial device"
}

// sysClassTTY is where the kernel shows serial ports' attributes.
const sysClassTTY = "/sys/class/tty"

// ttyName is the kernel's name of a serial port given by any of its paths
// (/dev/serial/by-id/… links to /dev/ttyUSB0: ttyUSB0).
func ttyName(port string) string {
	if p, err := filepath.EvalSymlinks(port); err == nil {
		port = p
	}
	return filepath.Base(port)
}

// usbLatencyTimer reads the latency timer of a USB serial adapter (FTDI's,
// in ms) under sysClass; ok is false for a port without one (a UART, other
// adapters).
func usbLatencyTimer(sysClass, port string) (ms int, ok bool) {
	b, err := os.ReadFile(filepath.Join(sysClass, ttyName(port), "device", "latency_timer"))
	if err != nil {
		return 0, false
	}
	ms, err = strconv.Atoi(strings.TrimSpace(string(b)))
	return ms, err == nil
}

// osdpProbeTime bounds how long doctor waits for OSDP readers: a silent
// reader is given up after the probe's offline limit.
const (
	osdpProbeOffline = 3 * time.Second
	osdpProbeTime    = osdpProbeOffline + 3*time.Second
)

// OSDPSelfTest checks a configured gateway's OSDP buses for an installer:
// every port opens (exclusively: not while portier runs), then the buses
// run for a few seconds and each reader is checked (it answers, its secure
// channel, what it is). The readers' keys are those the config loader read.
func OSDPSelfTest(ctx context.Context, cfg Config, doorIDs []string, log *slog.Logger) []Check {
	if len(cfg.OSDPBuses) == 0 {
		return nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	buses, err := cfg.OSDPBusPlan(doorIDs)
	if err != nil {
		return []Check{{Name: "OSDP readers", Detail: err.Error(), Fix: "correct the osdp: sections of the config"}}
	}
	var checks []Check
	var run []OSDPBus
	for _, b := range buses {
		bc, _ := cfg.Bus(b.Name)
		c := Check{Name: fmt.Sprintf("OSDP bus %s: %s at %d baud", b.Name, b.Port, b.Baud)}
		if b.Direction.Mode == osdp.DirectionPin {
			if !gpioAvailable() {
				c.Detail, c.Fix = "DE pin "+bc.DEPin+" not available", "no GPIO chip (see above)"
				checks = append(checks, c)
				continue
			}
			p := lookupPin(bc.DEPin)
			if p == nil {
				c.Detail, c.Fix = "DE pin "+bc.DEPin+" not found", "check the de_pin name"
				checks = append(checks, c)
				continue
			}
			b.Direction.Pin = p
		}
		port, err := osdp.OpenSerial(b.Port, b.Baud)
		if err != nil {
			c.Detail, c.Fix = err.Error(), serialFix(b.Port, err)
			checks = append(checks, c)
			continue
		}
		b.Opened = port
		c.OK, c.Detail = true, "the port opens"
		if ms, ok := usbLatencyTimer(sysClassTTY, b.Port); ok && ms > 1 {
			c.Warn = true
			c.Detail += fmt.Sprintf("; its USB adapter holds what it receives up to %d ms (latency timer), which delays every reply", ms)
			c.Fix = fmt.Sprintf("the package's udev rule sets 1 ms when an FTDI adapter is plugged in: replug it, or echo 1 | sudo tee /sys/class/tty/%s/device/latency_timer", ttyName(b.Port))
		}
		checks = append(checks, c)
		run = append(run, b)
	}
	if len(run) > 0 {
		rt := NewOSDPRuntime(run, OSDPOptions{Logger: log, OfflineAfter: osdpProbeOffline})
		checks = append(checks, ReaderChecks(rt.Probe(ctx, osdpProbeTime))...)
		_ = rt.Close()
	}
	return checks
}

// ReaderChecks turns OSDP readers' health into installer checks, each
// failure with the fix its signature points at: no bytes at all on the line
// (A/B swapped, no power, the wrong port), garbled bytes (the wrong baud
// rate), silence at one address while others answer (the wrong address),
// NAKs, MAC failures, a key the reader does not hold. A reader configured
// without Secure Channel passes (Config.OSDPWarnings warns about it).
func ReaderChecks(health []agent.ReaderHealth) []Check {
	var out []Check
	for _, h := range health {
		c := Check{Name: fmt.Sprintf("%s: reader at %s", h.Door, h.Connection)}
		what := "answers"
		if id := h.Identity(); id != "" {
			what = "answers: " + id
		}
		if h.Outputs > 0 {
			what += fmt.Sprintf(", %d outputs (test them with `portier reader output --door %s`)", h.Outputs, h.Door)
		}
		switch {
		case h.State == agent.ReaderOnline && h.Plaintext:
			// The configuration's warning says what that means, every time.
			c.OK, c.Detail = true, what+"; plaintext, as configured (secure_channel: off)"
		case h.State == agent.ReaderOnline && h.DefaultKey:
			c.OK, c.Warn = true, true
			c.Detail = what + "; secure channel under the published install key"
			c.Fix = fmt.Sprintf("run `portier reader install --door %s` to give it a key of its own", h.Door)
		case h.State == agent.ReaderOnline:
			c.OK, c.Detail = true, what+"; secure channel established (AES-128)"
		case h.Reason == osdp.ReasonNoKey.String():
			c.Detail = what + "; no key of its own yet"
			c.Fix = fmt.Sprintf("with portier running, run `portier reader install --door %s`: it moves the reader from its install key to a new one", h.Door)
		case h.Reason == osdp.ReasonWrongKey.String():
			c.Detail = what + "; it refuses our key (the secure channel handshake fails)"
			c.Fix = "the reader holds another key: reset it to factory settings (its vendor's tool or configuration card), then `portier reader install --door " + h.Door + "`; if this gateway installed it, restore its key file"
		case h.Reason == osdp.ReasonNoSecureChannel.String():
			c.Detail = what + "; it cannot do OSDP Secure Channel"
			c.Fix = "use a reader with Secure Channel; only if you accept plaintext on the cable, set secure_channel: off (check-config and doctor then warn every time)"
		case h.Reason == osdp.ReasonMAC.String():
			c.Detail = fmt.Sprintf("%s; its messages fail their MAC (%d garbled replies)", what, h.BadFrames)
			c.Fix = "noise or a second controller on the line: use twisted pair, terminate both ends with 120 Ω, share GND, and make sure no other controller polls this bus"
		case h.Reason == osdp.ReasonNAK.String():
			c.Detail = fmt.Sprintf("%s; it refuses our commands (%d NAKs): %s", what, h.NAKs, h.Detail)
			c.Fix = "check the reader is set to OSDP (not Wiegand) and its firmware; a sequence NAK after a power cut clears by itself"
		case h.Reason == osdp.ReasonProtocol.String():
			c.Detail = "answers out of protocol: " + h.Detail
			c.Fix = "check that the reader speaks OSDP v2 and that nothing else talks on the bus"
		case h.LineBytes == 0:
			c.Detail = "no bytes at all on the line"
			c.Fix = "check the RS-485 pair: swap A and B (vendors label them the other way round, or D+/D−), the reader's power, the GND wire to it, and that the port is the adapter's (ls -l /dev/serial/by-id)"
		case h.BadFrames > 0 && h.Polls == 0:
			c.Detail = fmt.Sprintf("only garbled replies (%d bad CRC or framing)", h.BadFrames)
			c.Fix = "the wrong baud rate: set baud to the reader's (many leave the factory at 9600); also check A/B and termination"
		default:
			c.Detail = "no answer at its address, though the line carries bytes"
			c.Fix = "the wrong address: check the reader's OSDP address (DIP switches, its configuration card or tool); every reader on a bus needs its own"
		}
		out = append(out, c)
	}
	return out
}
