// Package config is portier.yaml: every key, its defaults, parsing with
// file:line errors, validation, and the secret files the config points at.
// Check is the one validation `portier run` and `portier check-config` share.
//
// Nothing here reads the environment or flags: callers pass a getenv. (The
// unknown-key hint looks for the example config from the working directory.)
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cmd/portier/defaults"
	"github.com/portier-io/portier/hal"
)

// PackagedPath is where the .deb installs the config and the unit reads it.
const PackagedPath = "/etc/portier/portier.yaml"

// PlaceholderLock is the lock id of the packaged template: it matches no
// Salto lock, so the door opens for nobody until it is replaced.
const PlaceholderLock = "00000000-0000-0000-0000-000000000000"

// EmbeddedName names the embedded default config in messages.
const EmbeddedName = "embedded default config"

// InstalledExample is where the .deb installs the template as shipped
// (packaging/nfpm.yaml): the example an installer on a gateway can read.
const InstalledExample = "/usr/share/doc/portier/portier.yaml.example"

// CheckID checks a gateway, door or MQTT site id: each is an MQTT topic
// level and part of Home Assistant object ids.
func CheckID(s string) error {
	if s == "" {
		return fmt.Errorf("required: %s (ids name MQTT topics)", mqtt.IDRule)
	}
	if !mqtt.ValidID(s) {
		return fmt.Errorf("%q is not an id: %s (ids name MQTT topics)", s, mqtt.IDRule)
	}
	return nil
}

// Config is portier.yaml. Unknown keys are errors, so a typo never silently
// turns into a default.
type Config struct {
	GatewayID  string `yaml:"gateway_id"`
	StateDir   string `yaml:"state_dir"`
	Database   string `yaml:"database"`
	PINKeyFile string `yaml:"pin_key_file"`
	// LogLevel is debug, info (default), warn or error.
	LogLevel string `yaml:"log_level"`
	// ClockPolicy is what decisions do while the clock is untrusted: trust
	// (default: decide by the system clock and report it) or deny_scheduled.
	ClockPolicy string `yaml:"clock_policy"`
	// ClockSyncCheck is kernel (default: ask the kernel whether NTP has
	// synchronised the clock) or off (a VM or container whose host keeps
	// time; the clock is then untrusted only when it goes backwards).
	ClockSyncCheck string `yaml:"clock_sync_check"`
	// ControlSocket is the local control socket; default <state_dir>/portier.sock.
	ControlSocket string       `yaml:"control_socket"`
	Doors         []DoorConfig `yaml:"doors"`
	Salto         SaltoConfig  `yaml:"salto"`
	Hardware      hal.Config   `yaml:"hardware"`
	MQTT          MQTTConfig   `yaml:"mqtt"`
	Cards         CardsConfig  `yaml:"cards"`

	path string // file the config came from, "" for the embedded default
	raw  []byte // its text, for messages that quote a line
}

// SaltoConfig (the salto: section) is in salto.go, MQTTConfig (mqtt:) in
// mqtt.go, CardsConfig (cards:) in cards.go.

// DoorConfig is one door of the config.
type DoorConfig struct {
	ID          string   `yaml:"id"`
	Name        string   `yaml:"name"`
	Mode        string   `yaml:"mode"`
	SaltoLocks  []string `yaml:"salto_locks"`
	SaltoGroups []string `yaml:"salto_access_groups"`
	// Credential is what a card must prove here: uid (default: its UID,
	// and the fingerprint recorded at enrolment must match) or desfire
	// (only a DESFire card proving the site's key).
	Credential string `yaml:"credential"`

	// Door runtime timings; zero means the default (docs/door-runtime.md).
	AccessTime      time.Duration `yaml:"access_time"`       // relay pulse for a grant, default 5s
	HeldOpenTime    time.Duration `yaml:"held_open_time"`    // before held_open, default 30s
	PINTimeout      time.Duration `yaml:"pin_timeout"`       // between keys, default 10s
	TwoFactorWindow time.Duration `yaml:"two_factor_window"` // card then PIN, default 15s
	EasyOfficeMode  bool          `yaml:"easy_office_mode"`  // office mode starts at the first grant
	Lockout         LockoutConfig `yaml:"lockout"`

	line, column int
	// decodeErr holds what the door's strict decoding refused (unknown
	// keys, wrong types), reported by validate: returned from UnmarshalYAML
	// it would make the YAML decoder drop the door, and every check of it
	// with it.
	decodeErr error
	idLines   map[string][]int // line of each salto_locks / salto_access_groups entry
}

// idLine is the line of entry j of the door's list key (the door's line when
// unknown).
func (d DoorConfig) idLine(key string, j int) int {
	if l := d.idLines[key]; j < len(l) {
		return l[j]
	}
	return d.line
}

// LockoutConfig is a door's wrong-PIN lockout; zero values are defaults.
type LockoutConfig struct {
	MaxFailures int           `yaml:"max_failures"` // default 5
	Window      time.Duration `yaml:"window"`       // default 60s
	Duration    time.Duration `yaml:"duration"`     // default 60s, doubling on repeats
	MaxDuration time.Duration `yaml:"max_duration"` // default 15m
}

// UnmarshalYAML records where the door is, so validation errors can point at
// it, and what of it could not be decoded.
func (d *DoorConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain DoorConfig
	var p plain
	err := decodeStrict(n, &p)
	var te *yaml.TypeError
	if err != nil && !errors.As(err, &te) {
		return err
	}
	*d = DoorConfig(p)
	d.line, d.column, d.decodeErr = n.Line, n.Column, err
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k == "salto_locks" || k == "salto_access_groups" {
			if d.idLines == nil {
				d.idLines = map[string][]int{}
			}
			for _, item := range n.Content[i+1].Content {
				d.idLines[k] = append(d.idLines[k], item.Line)
			}
		}
	}
	return nil
}

// decodeStrict decodes a node rejecting unknown keys (Node.Decode does not
// honour the decoder's KnownFields, so re-encode through a strict decoder).
func decodeStrict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return shiftLines(err, n.Line-1)
	}
	return nil
}

// shiftLines rewrites "line N" in a yaml error made from a re-encoded node so
// it points into the original file.
func shiftLines(err error, offset int) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	out := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		var line int
		var rest string
		if _, e := fmt.Sscanf(m, "line %d:", &line); e == nil {
			rest = m[strings.Index(m, ":")+1:]
			m = fmt.Sprintf("line %d:%s", line+offset, rest)
		}
		out[i] = m
	}
	return &yaml.TypeError{Errors: out}
}

// Load reads the config at path, or the embedded default when path is "",
// and checks what every subcommand relies on: the keys, the doors, and the
// hardware section when there is one. getenv supplies the state directory's
// defaults (STATE_DIRECTORY, XDG_STATE_HOME, HOME). Check does more.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, name := defaults.Config, EmbeddedName
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("config %w", readError(path, err))
		}
		name = path
	}
	cfg, err := Parse(data, name)
	if err != nil {
		return nil, err
	}
	cfg.path = path
	if err := cfg.resolvePaths(getenv); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return cfg, nil
}

// readError says why the config file at path cannot be read, and what to
// do about it.
func readError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist) && path == PackagedPath:
		return fmt.Errorf("%s: no such file: write it with `sudo portier init`, or name another config with --config FILE", path)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: no such file (check the path; the installed service's config is %s)", path, PackagedPath)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: permission denied: this user may not read it; run this as root or as the service user (sudo -u portier portier …)", path)
	case errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("%s is a directory: --config names the config file, e.g. %s", path, filepath.Join(path, "portier.yaml"))
	}
	return fmt.Errorf("%s: %w", path, unwrapPath(err))
}

// Parse decodes and validates a config; name is the file in messages. Paths
// stay unresolved (Load resolves them).
func Parse(data []byte, name string) (*Config, error) {
	cfg, err := decode(data, name, true)
	if err != nil {
		return nil, err
	}
	errs := cfg.validate(name)
	// The hardware section matters to run and doctor only; import, check and
	// sync work from a config without one.
	if len(errs) == 0 && cfg.hasHardware() {
		errs = cfg.validateHardware(name)
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	return cfg, nil
}

func configError(name string, raw []byte, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = name + ": " + typeHint(hint(m), raw)
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	return fmt.Errorf("%s: %s", name, syntaxMessage(raw, err))
}

// hint adds advice to the YAML library's messages an installer will meet most.
func hint(msg string) string {
	if strings.Contains(msg, "not found in type") {
		f := msg[strings.Index(msg, "field ")+6:]
		f = f[:strings.Index(f, " ")]
		return strings.Replace(msg, msg[strings.Index(msg, "field "):], "unknown key \""+f+"\" (check its spelling and indentation; "+exampleConfig()+" has every key)", 1)
	}
	return msg
}

// exampleConfig names the commented example config where the user is: the
// installed one on a gateway, the repository's template in a checkout.
func exampleConfig() string {
	wd, _ := os.Getwd()
	return findExample(InstalledExample, wd)
}

// findExample is exampleConfig with the installed path and the working
// directory given: a checkout is found by walking up from wd.
func findExample(installed, wd string) string {
	if st, err := os.Stat(installed); err == nil && st.Mode().IsRegular() {
		return installed
	}
	for dir := wd; dir != ""; {
		p := filepath.Join(dir, "packaging", "portier.yaml")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			if rel, err := filepath.Rel(wd, p); err == nil {
				return rel
			}
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "the example config (" + installed + " from the package, packaging/portier.yaml in the source)"
}

// validate checks the keys outside the hardware section; each message starts
// with name.
func (c *Config) validate(name string) []string {
	var errs []string
	for _, d := range c.Doors {
		var te *yaml.TypeError
		if errors.As(d.decodeErr, &te) {
			for _, m := range te.Errors {
				errs = append(errs, name+": "+typeHint(hint(m), c.raw))
			}
		}
	}
	if c.GatewayID != "" {
		if err := CheckID(c.GatewayID); err != nil {
			errs = append(errs, name+": gateway_id: "+err.Error())
		}
	}
	errs = append(errs, c.validateCards(name)...)
	seen := map[string]bool{}
	for i, d := range c.Doors {
		where := fmt.Sprintf("%s: line %d: doors[%d]", name, d.line, i)
		door := d.Door()
		door.CardMode = "" // validateCards reports a bad credential key
		if err := door.Validate(); err != nil {
			msg := err.Error()
			if !slices.Contains(agent.DoorModes, door.Mode) && door.ID != "" {
				msg = fmt.Sprintf("door %q: mode %q is not card, pin, card_or_pin or card_and_pin", door.ID, door.Mode)
			}
			errs = append(errs, where+": "+msg)
			continue
		}
		if err := CheckID(d.ID); err != nil {
			errs = append(errs, where+": door id "+err.Error())
			continue
		}
		if seen[d.ID] {
			errs = append(errs, fmt.Sprintf("%s: door id %q is used twice", where, d.ID))
		}
		seen[d.ID] = true
	}
	// Salto ids are GUIDs: written once in canonical form here, so the sync,
	// the lookups and init --check compare them as Salto does (any case).
	for i := range c.Doors {
		d := &c.Doors[i]
		for _, ids := range []struct {
			key  string
			list []string
		}{{"salto_locks", d.SaltoLocks}, {"salto_access_groups", d.SaltoGroups}} {
			for j, id := range ids.list {
				g, err := saltoks.ParseGUID(id)
				if err != nil {
					errs = append(errs, fmt.Sprintf("%s: line %d: doors[%d].%s: %v", name, d.idLine(ids.key, j), i, ids.key, err))
					continue
				}
				ids.list[j] = g.String()
			}
		}
	}
	errs = append(errs, c.Salto.validate(name)...)
	if len(c.Doors) == 0 {
		errs = append(errs, name+": no doors: add at least one under doors:")
	}
	for i, d := range c.Doors {
		for _, v := range []struct {
			key string
			d   time.Duration
		}{{"access_time", d.AccessTime}, {"held_open_time", d.HeldOpenTime}, {"pin_timeout", d.PINTimeout}, {"two_factor_window", d.TwoFactorWindow},
			{"lockout.window", d.Lockout.Window}, {"lockout.duration", d.Lockout.Duration}, {"lockout.max_duration", d.Lockout.MaxDuration}} {
			if v.d < 0 {
				errs = append(errs, fmt.Sprintf("%s: line %d: doors[%d].%s must not be negative", name, d.line, i, v.key))
			}
		}
		if d.AccessTime > 10*time.Minute {
			errs = append(errs, fmt.Sprintf("%s: line %d: doors[%d].access_time %s is longer than 10m: use office mode to hold a door open", name, d.line, i, d.AccessTime))
		}
		if d.Lockout.MaxFailures < 0 {
			errs = append(errs, fmt.Sprintf("%s: line %d: doors[%d].lockout.max_failures must not be negative", name, d.line, i))
		}
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Sprintf("%s: log_level: %q is not debug, info, warn or error", name, c.LogLevel))
	}
	switch c.ClockSyncCheck {
	case "", "kernel", "off":
	default:
		errs = append(errs, fmt.Sprintf("%s: clock_sync_check %q: want kernel or off", name, c.ClockSyncCheck))
	}
	switch agent.ClockPolicy(c.ClockPolicy) {
	case "", agent.ClockTrust, agent.ClockDenyScheduled:
	default:
		errs = append(errs, fmt.Sprintf("%s: clock_policy %q: want trust or deny_scheduled", name, c.ClockPolicy))
	}
	return errs
}

// validateHardware checks the hardware section against the doors: its own
// rules, and a relay for every door (run drives nothing else to unlock it).
func (c *Config) validateHardware(name string) []string {
	var errs []string
	if err := c.Hardware.Validate(c.DoorIDs()); err != nil {
		errs = append(errs, name+": hardware: "+err.Error())
	}
	for _, id := range c.DoorIDs() {
		if CheckID(id) == nil && c.Hardware.Doors[id].Relay == nil { // a bad id is reported on its own
			errs = append(errs, fmt.Sprintf("%s: hardware.doors.%s: door %q has no relay: a door the gateway cannot unlock cannot be run (add relay: {pin: GPIO17} or the pin the relay board is on)", name, id, id))
		}
	}
	return append(errs, c.validateCardReaders(name)...)
}

// hasHardware reports whether the config has a hardware: section.
func (c *Config) hasHardware() bool { return c.Hardware.Driver != "" || len(c.Hardware.Doors) > 0 }

// Path is the file the config came from, "" for the embedded default.
func (c *Config) Path() string { return c.path }

// Name is the config in messages: its path, or "embedded default config".
func (c *Config) Name() string {
	if c.path == "" {
		return EmbeddedName
	}
	return c.path
}

// Resolve makes a path in the config relative to the config file's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.path), p)
}

// Door converts the door config to the domain door (the config-wide card
// policy comes with Config.AgentDoor).
func (d DoorConfig) Door() agent.Door {
	return agent.Door{ID: d.ID, Name: d.Name, Mode: agent.DoorMode(d.Mode), LockIDs: d.SaltoLocks, GroupIDs: d.SaltoGroups, CardMode: d.CardMode()}
}

// AgentDoor is the door as the domain decides at it: the door's own keys
// and the cards: section's policy.
func (c *Config) AgentDoor(d DoorConfig) agent.Door {
	door := d.Door()
	door.Unfingerprinted = agent.FingerprintPolicy(c.Cards.Unfingerprinted)
	return door
}

// DoorIDs lists the door ids in config order.
func (c *Config) DoorIDs() []string {
	ids := make([]string, len(c.Doors))
	for i, d := range c.Doors {
		ids[i] = d.ID
	}
	return ids
}

// AgentDoors is the configured doors as the domain sees them.
func (c *Config) AgentDoors() []agent.Door {
	out := make([]agent.Door, len(c.Doors))
	for i, d := range c.Doors {
		out[i] = c.AgentDoor(d)
	}
	return out
}

// Door finds a configured door by id.
func (c *Config) Door(id string) (agent.Door, error) {
	for _, d := range c.Doors {
		if d.ID == id {
			return c.AgentDoor(d), nil
		}
	}
	return agent.Door{}, fmt.Errorf("%w in the config", &agent.UnknownDoorError{Door: id, Doors: c.DoorIDs()})
}

// ClockPolicyName is the clock policy in force (trust when unset).
func (c *Config) ClockPolicyName() string {
	if c.ClockPolicy == "" {
		return string(agent.ClockTrust)
	}
	return c.ClockPolicy
}

// resolvePaths fills defaults: the state dir from systemd's STATE_DIRECTORY or
// the XDG state home; the database and the control socket inside it.
func (c *Config) resolvePaths(getenv func(string) string) error {
	if c.StateDir == "" {
		switch {
		case getenv("STATE_DIRECTORY") != "":
			c.StateDir = strings.Split(getenv("STATE_DIRECTORY"), ":")[0]
		case getenv("XDG_STATE_HOME") != "":
			c.StateDir = filepath.Join(getenv("XDG_STATE_HOME"), "portier")
		case getenv("HOME") != "":
			c.StateDir = filepath.Join(getenv("HOME"), ".local", "state", "portier")
		default:
			return errors.New("state_dir is not set and neither STATE_DIRECTORY, XDG_STATE_HOME nor HOME is")
		}
	}
	if c.Database == "" {
		c.Database = filepath.Join(c.StateDir, "portier.db")
	}
	if c.ControlSocket == "" {
		c.ControlSocket = filepath.Join(c.StateDir, "portier.sock")
	}
	c.resolveOSDPKeyFiles()
	return nil
}
