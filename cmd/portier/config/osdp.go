package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/portier-io/portier/hal"
)

// An OSDP reader's Secure Channel key (its SCBK) lives in a secret file of
// its own, like every secret: 32 hex digits, mode 0600. `portier reader
// install` generates it and writes it there before the reader is told; until
// then the file does not exist and the reader is refused.

// osdpKeyFileDefault is where a door's reader key goes when key_file is not
// set: the state directory, which the service may write.
func (c *Config) osdpKeyFileDefault(door string) string {
	return filepath.Join(c.StateDir, "osdp", door+".key")
}

// resolveOSDPKeyFiles fills each secure OSDP reader's key_file: the default
// in the state directory, or the configured one relative to the config.
func (c *Config) resolveOSDPKeyFiles() {
	for id, w := range c.Hardware.Doors {
		o := w.OSDP
		switch {
		case o == nil || o.Plaintext():
		case o.KeyFile == "":
			o.KeyFile = c.osdpKeyFileDefault(id)
		default:
			o.KeyFile = c.Resolve(o.KeyFile)
		}
	}
}

// OSDPReader returns door's OSDP reader config, or an error naming the doors
// that have one.
func (c *Config) OSDPReader(door string) (*hal.OSDPReaderConfig, error) {
	if w, ok := c.Hardware.Doors[door]; ok && w.OSDP != nil {
		return w.OSDP, nil
	}
	var with []string
	for _, id := range c.DoorIDs() {
		if w, ok := c.Hardware.Doors[id]; ok && w.OSDP != nil {
			with = append(with, id)
		}
	}
	if _, err := c.Door(door); err != nil {
		return nil, err
	}
	if len(with) == 0 {
		return nil, fmt.Errorf("door %s has no OSDP reader (no door has one: add an osdp: reader under hardware.doors.%s)", door, door)
	}
	return nil, fmt.Errorf("door %s has no OSDP reader (doors with one: %s)", door, strings.Join(with, ", "))
}

// ParseOSDPKey reads a key file's content: 32 hex digits, not all zero.
func ParseOSDPKey(s string) ([16]byte, error) {
	var k [16]byte
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != len(k) {
		return k, errors.New("want 32 hex digits (a 16-byte AES key, as `portier reader install` writes it)")
	}
	copy(k[:], b)
	if k == ([16]byte{}) {
		return k, errors.New("an all-zero key is no key")
	}
	return k, nil
}

// FormatOSDPKey is a key file's content.
func FormatOSDPKey(k [16]byte) string { return strings.ToUpper(hex.EncodeToString(k[:])) }

// LoadOSDPKeys reads each secure OSDP reader's key file into the hardware
// config. A file that does not exist yet is a warning (the reader waits for
// `portier reader install`); one that exists must hold to the secret-file
// rules (a regular file only its owner can read, not empty) and hold a key:
// else it is a problem. It also returns the warning for every reader
// configured without Secure Channel, every time.
func (c *Config) LoadOSDPKeys() (problems, warnings []string) {
	for _, id := range c.DoorIDs() {
		w, ok := c.Hardware.Doors[id]
		if !ok || w.OSDP == nil || w.OSDP.Plaintext() {
			continue
		}
		o := w.OSDP
		key := "hardware.doors." + id + ".osdp.key_file"
		if _, err := os.Lstat(o.KeyFile); errors.Is(err, fs.ErrNotExist) {
			warnings = append(warnings, fmt.Sprintf("%s: %s does not exist yet: the reader at door %s is refused until `portier reader install --door %s` (with portier running) gives it a key of its own", key, o.KeyFile, id, id))
			continue
		}
		if err := CheckSecretFile(o.KeyFile); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", key, err))
			continue
		}
		s, err := ReadSecret(o.KeyFile, key)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if o.Key, err = ParseOSDPKey(s); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s: %v", key, o.KeyFile, err))
		}
	}
	return problems, append(warnings, c.Hardware.OSDPWarnings(c.DoorIDs())...)
}
