package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cmd/portier/defaults"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/desfire"
)

// CardsConfig is the cards: section: what doors require of cards beyond
// their doors[].credential mode, and where the site's DESFire keys are.
type CardsConfig struct {
	// Unfingerprinted is what a uid door does with a known card whose
	// fingerprint was never recorded (enrolled before fingerprints
	// existed, or imported as a bare UID): learn (default: its next tap
	// records it, event card_learned) or require (refused with
	// card_unverified until it is enrolled again).
	Unfingerprinted string `yaml:"unfingerprinted"`
	// DESFireKeyFile is the site's DESFire key file (mode 0600), which
	// desfire doors and `portier card` need. A door gateway's file holds
	// only the read masters; an issuing station's holds all three.
	DESFireKeyFile string `yaml:"desfire_key_file"`
}

// desfireKeyFile is the key file's format (YAML, mode 0600):
//
//	system_id: "Hive Coworking Berlin"   # AN10922 system identifier, 1–21 bytes
//	aid: 504F52                          # the card application, default 504F52
//	keys:                                # one set per key version; two while rotating
//	  - version: 1
//	    read: 32 hex digits              # every gateway
//	    picc: 32 hex digits              # issuing station only
//	    app: 32 hex digits               # issuing station only
type desfireKeyFile struct {
	SystemID string          `yaml:"system_id"`
	AID      string          `yaml:"aid"`
	Keys     []desfireKeySet `yaml:"keys"`
}

// desfireKeySet is one key version of a key file.
type desfireKeySet struct {
	Version *int   `yaml:"version"`
	PICC    string `yaml:"picc"`
	App     string `yaml:"app"`
	Read    string `yaml:"read"`
}

// ParseDESFireKeys decodes a DESFire key file into the site's key sets,
// newest version first. name is the file in messages; no message ever
// holds a key.
func ParseDESFireKeys(data []byte, name string) ([]desfire.SiteKeys, error) {
	var f desfireKeyFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: not a DESFire key file (see docs/install.md): %s", name, redactYAML(err))
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, name+": "+fmt.Sprintf(format, args...)) }
	sys := []byte(f.SystemID)
	if len(sys) == 0 || len(sys) > 21 {
		bad("system_id must have 1–21 bytes (e.g. the site's name), it has %d", len(sys))
	}
	aid := desfire.DefaultAID
	if f.AID != "" {
		v, err := strconv.ParseUint(f.AID, 16, 24)
		if err != nil || len(f.AID) != 6 || v == 0 {
			bad("aid must be 6 hex digits, not 000000 (default 504F52)")
		}
		aid = desfire.AID(v)
	}
	if len(f.Keys) == 0 {
		bad("keys: no key set (each has a version and at least its read key)")
	}
	var out []desfire.SiteKeys
	seen := map[int]bool{}
	for i, k := range f.Keys {
		where := fmt.Sprintf("keys[%d]", i)
		if k.Version == nil || *k.Version < 0 || *k.Version > 255 {
			bad("%s.version must be 0–255", where)
			continue
		}
		if seen[*k.Version] {
			bad("%s.version %d appears twice", where, *k.Version)
		}
		seen[*k.Version] = true
		s := desfire.SiteKeys{AID: aid, SystemID: sys, Version: byte(*k.Version)}
		for _, field := range []struct {
			key string
			hex string
			dst *[]byte
		}{{"read", k.Read, &s.Read}, {"picc", k.PICC, &s.PICC}, {"app", k.App, &s.App}} {
			if field.hex == "" {
				continue
			}
			b, err := hex.DecodeString(strings.ReplaceAll(field.hex, " ", ""))
			if err != nil || len(b) != 16 {
				bad("%s.%s must be an AES-128 key: 32 hex digits", where, field.key)
				continue
			}
			*field.dst = b
		}
		switch {
		case k.Read == "":
			bad("%s.read is missing: every gateway needs the read key", where)
		case (k.PICC == "") != (k.App == ""):
			bad("%s: picc and app go together (an issuing station has both, a door neither)", where)
		}
		out = append(out, s)
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	slices.SortFunc(out, func(a, b desfire.SiteKeys) int { return int(b.Version) - int(a.Version) })
	return out, nil
}

// quotedValue is how the YAML library quotes what it could not decode.
var quotedValue = regexp.MustCompile("`[^`]*`")

// redactYAML words a decoding error of a key file without the values the
// YAML library quotes: one of them could be a key.
func redactYAML(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return strings.TrimPrefix(err.Error(), "yaml: ")
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = quotedValue.ReplaceAllString(m, "(a value)")
	}
	return strings.Join(msgs, "; ")
}

// DemoDESFireKeys are Portier's public demo keys (defaults.DemoDESFireKeys).
func DemoDESFireKeys() []desfire.SiteKeys {
	keys, err := ParseDESFireKeys(defaults.DemoDESFireKeys, "demo key file")
	if err != nil {
		panic(err) // embedded: TestDemoKeys guards it
	}
	return keys
}

// IsDemo reports whether keys are Portier's public demo keys.
func IsDemo(keys []desfire.SiteKeys) bool {
	for _, k := range keys {
		for _, d := range DemoDESFireKeys() {
			if bytes.Equal(k.Read, d.Read) || (k.PICC != nil && bytes.Equal(k.PICC, d.PICC)) {
				return true
			}
		}
	}
	return false
}

// DESFireKeys reads the site's DESFire key sets, newest first: the key
// file's, the public demo keys for the embedded default config, none when
// no key file is configured.
func (c *Config) DESFireKeys() ([]desfire.SiteKeys, error) {
	path := c.Cards.DESFireKeyFile
	if path == "" {
		if c.path == "" {
			return DemoDESFireKeys(), nil
		}
		return nil, nil
	}
	path = c.Resolve(path)
	if err := CheckSecretMode(path); err != nil {
		return nil, fmt.Errorf("cards.desfire_key_file: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cards.desfire_key_file: %w", err)
	}
	return ParseDESFireKeys(data, path)
}

// CardMode is the door's card mode (uid when unset).
func (d DoorConfig) CardMode() agent.CardMode {
	if d.Credential == "" {
		return agent.CardModeUID
	}
	return agent.CardMode(d.Credential)
}

// DESFireDoors lists the doors that require DESFire cards.
func (c *Config) DESFireDoors() []string {
	var out []string
	for _, d := range c.Doors {
		if d.CardMode() == agent.CardModeDESFire {
			out = append(out, d.ID)
		}
	}
	return out
}

// HardwareConfig is the hardware: section with what the readers need to
// know about cards: each door's card mode and the site's DESFire keys.
func (c *Config) HardwareConfig() (hal.Config, error) {
	hw := c.Hardware
	modes := map[string]agent.CardMode{}
	for _, d := range c.Doors {
		modes[d.ID] = d.CardMode()
	}
	keys, err := c.DESFireKeys()
	if err != nil {
		return hw, err
	}
	hw.Cards = hal.CardsConfig{Modes: modes, Sites: keys}
	return hw, nil
}

// validateCards checks the cards: section and the doors' credential keys
// (the key file is Check's business: Load reads no secret).
func (c *Config) validateCards(name string) []string {
	var errs []string
	switch agent.FingerprintPolicy(c.Cards.Unfingerprinted) {
	case "", agent.FingerprintLearn, agent.FingerprintRequire:
	default:
		errs = append(errs, fmt.Sprintf("%s: cards.unfingerprinted %q: want learn or require", name, c.Cards.Unfingerprinted))
	}
	for i, d := range c.Doors {
		switch d.CardMode() {
		case agent.CardModeUID:
		case agent.CardModeDESFire:
			if agent.DoorMode(d.Mode) == agent.ModePIN {
				errs = append(errs, fmt.Sprintf("%s: line %d: doors[%d].credential: desfire at a pin door, which reads no card", name, d.line, i))
			}
		default:
			errs = append(errs, fmt.Sprintf("%s: line %d: doors[%d].credential %q: want uid (the default) or desfire", name, d.line, i, d.Credential))
		}
	}
	return errs
}

// validateCardReaders checks every desfire door has a reader that can ask
// a card to prove a key (an MFRC522).
func (c *Config) validateCardReaders(name string) []string {
	var errs []string
	for i, d := range c.Doors {
		if d.CardMode() != agent.CardModeDESFire {
			continue
		}
		if c.Hardware.Doors[d.ID].MFRC522 == nil {
			errs = append(errs, fmt.Sprintf("%s: line %d: doors[%d].credential: desfire needs an MFRC522 reader at door %q (hardware.doors.%s.mfrc522): no other reader can ask a card for the site's key", name, d.line, i, d.ID, d.ID))
		}
	}
	return errs
}

// checkCards checks the DESFire key file as run will read it: needed by a
// desfire door, a secret file, well formed, with the masters the sim cards
// need. Warnings: the public demo keys outside the embedded config.
func (c *Config) checkCards(loc *locator) (problems, warnings []string) {
	desDoors := c.DESFireDoors()
	if c.Cards.DESFireKeyFile == "" {
		if len(desDoors) > 0 && c.path != "" {
			problems = append(problems, loc.place(fmt.Sprintf("cards.desfire_key_file: not set, but door(s) %s require DESFire cards: point it at the site's key file (docs/install.md, \"Protected cards\")", strings.Join(desDoors, ", "))))
		}
		return problems, warnings
	}
	if err := CheckSecretFile(c.Resolve(c.Cards.DESFireKeyFile)); err != nil {
		return append(problems, loc.place("cards.desfire_key_file: "+err.Error())), warnings
	}
	keys, err := c.DESFireKeys()
	if err != nil {
		for _, m := range strings.Split(err.Error(), "\n") {
			problems = append(problems, loc.place("cards.desfire_key_file: "+m))
		}
		return problems, warnings
	}
	if IsDemo(keys) {
		warnings = append(warnings, loc.place("cards.desfire_key_file: holds Portier's public demo keys: anyone who read Portier's source can forge cards issued with them; generate the site's own (docs/install.md)"))
	}
	return problems, warnings
}
