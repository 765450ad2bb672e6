package config

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cmd/portier/defaults"
)

// Report is what Check found.
type Report struct {
	// Config is the config when it loads (Load would return it), nil when
	// it does not; Problems then say why.
	Config *Config
	// Problems are "file:line: message" (or "file: message" where no line
	// applies); each one is a reason for portier run not to start.
	Problems []string
	// Warnings are worth fixing but do not stop portier run.
	Warnings []string

	cfg *Config // what could be read, also when Config is nil
}

// Commands that read a config and what each needs of it beyond the doors,
// for Lacks and FitFor.
func uses() []struct {
	cmd             string
	hardware, salto bool
} {
	return []struct {
		cmd             string
		hardware, salto bool
	}{{"run", true, false}, {"doctor", true, false}, {"pinout", true, false},
		{"sync", false, true}, {"access-code", false, true}, {"check", false, false}, {"import", false, false}}
}

// Commands lists the commands Lacks knows.
func Commands() []string {
	var out []string
	for _, u := range uses() {
		out = append(out, u.cmd)
	}
	return out
}

// Lacks says what the config lacks for command cmd (one of Commands) beyond
// its Problems, each a problem as Problems has them; nil when nothing. run,
// doctor and pinout need a hardware: section; sync and access-code a salto:
// section.
func (r Report) Lacks(cmd string) []string {
	c := r.cfg
	if c == nil {
		return nil
	}
	loc := newLocator(c.Name(), nil)
	for _, u := range uses() {
		switch {
		case u.cmd != cmd:
		case u.hardware && !c.hasHardware():
			return []string{loc.place("hardware.driver is not set: add a hardware: section with driver sim (a simulated board) or periph (GPIO and SPI) and a relay per door: portier " + cmd + " needs it (portier init writes one)")}
		case u.salto && !c.Salto.Present():
			return []string{loc.place("there is no salto: section: portier " + cmd + " talks to Salto KS with it (docs/saltoks.md)")}
		}
	}
	return nil
}

// FitFor lists the commands the config serves and, for the others, what it
// lacks (e.g. "no hardware: section"); both empty when the config does not
// load.
func (r Report) FitFor() (fit []string, unfit map[string]string) {
	if r.Config == nil {
		return nil, nil
	}
	unfit = map[string]string{}
	for _, u := range uses() {
		switch {
		case u.hardware && !r.Config.hasHardware():
			unfit[u.cmd] = "no hardware: section"
		case u.salto && !r.Config.Salto.Present():
			unfit[u.cmd] = "no salto: section"
		default:
			fit = append(fit, u.cmd)
		}
	}
	return fit, unfit
}

// Check runs every check portier run makes on its config before it touches
// hardware: the keys and the doors, the hardware section (when there is one:
// Lacks says which commands need it; with the OSDP readers' key files, read
// into the config), the salto: and mqtt: sections with
// their secret files (present, mode 0600, readable, not empty), the PIN key,
// the state directory and the database. It reports every problem it finds,
// each with the file and line it comes from, going on after a problem
// whenever what follows can still be checked. It creates and changes
// nothing, and talks to no server. path "" checks the embedded default
// config; getenv is as for Load. Problems and warnings come in the file's
// line order, those without a line last.
func Check(path string, getenv func(string) string) Report {
	r := check(path, getenv)
	name := EmbeddedName
	if path != "" {
		name = path
	}
	byLine(name, r.Problems)
	byLine(name, r.Warnings)
	return r
}

// byLine sorts msgs, each "name:line: …" or "name: …", by line, those
// without one last, keeping the order of equals.
func byLine(name string, msgs []string) {
	line := func(m string) int {
		rest, ok := strings.CutPrefix(m, name+":")
		if !ok {
			return math.MaxInt
		}
		digits, _, ok := strings.Cut(rest, ":")
		n, err := strconv.Atoi(digits)
		if !ok || err != nil {
			return math.MaxInt
		}
		return n
	}
	slices.SortStableFunc(msgs, func(a, b string) int { return cmp.Compare(line(a), line(b)) })
}

func check(path string, getenv func(string) string) Report {
	var r Report
	raw, name := defaults.Config, EmbeddedName
	if path != "" {
		var err error
		if raw, err = os.ReadFile(path); err != nil {
			r.Problems = append(r.Problems, readError(path, err).Error())
			return r
		}
		name = path
	}
	loc := newLocator(name, raw)
	cfg, decodeErr := decode(raw, name, true)
	if decodeErr != nil {
		r.Problems = append(r.Problems, loc.placeAll(decodeErr)...)
		// Keep going with what can be read, so the rest of the file, the
		// secret files and directories are reported in the same run.
		if cfg, _ = decode(raw, name, false); cfg == nil {
			return r
		}
	}
	cfg.path = path
	r.cfg = cfg
	loaded := decodeErr == nil
	for _, m := range cfg.validate(name) {
		r.Problems, loaded = append(r.Problems, loc.place(m)), false
	}
	// No hardware section is no problem in itself (import, check and sync
	// need none): Lacks says which commands need one.
	if cfg.hasHardware() {
		for _, m := range cfg.validateHardware(name) {
			r.Problems, loaded = append(r.Problems, loc.placeAll(errors.New(m))...), false
		}
	}
	for i, d := range cfg.Doors {
		for _, l := range d.SaltoLocks {
			if l == PlaceholderLock {
				r.Warnings = append(r.Warnings, loc.place(fmt.Sprintf("doors[%d].salto_locks: %s is the template's placeholder: nobody can open door %q until it names a real Salto KS lock", i, l, d.ID)))
			}
		}
	}
	if err := cfg.resolvePaths(getenv); err != nil {
		r.Problems = append(r.Problems, loc.place(err.Error()))
		return r
	}
	if loaded {
		r.Config = cfg
	}
	keyProblems, keyWarnings := cfg.LoadOSDPKeys()
	for _, m := range keyProblems {
		r.Problems = append(r.Problems, loc.place(m))
	}
	for _, m := range keyWarnings {
		r.Warnings = append(r.Warnings, loc.place(m))
	}
	r.Problems = append(r.Problems, cfg.checkSalto(loc)...)
	// The link's own configuration step reads the password, command key and
	// TLS files with their mode checks, and touches no network. A section
	// that is invalid in itself was reported with the decoding.
	if cfg.MQTT.Enabled() && cfg.MQTT.Validate() == nil {
		lcfg := cfg
		if CheckID(cfg.GatewayID) != nil {
			// Reported at gateway_id already; the link's other checks
			// still run, without saying it again under mqtt.
			c := *cfg
			c.GatewayID = "gateway"
			lcfg = &c
		}
		if _, err := cfg.MQTT.LinkConfig(lcfg); err != nil {
			r.Problems = append(r.Problems, loc.place(err.Error()))
		}
	}
	r.Problems = append(r.Problems, cfg.checkPINKeyFile(loc)...)
	cardProblems, cardWarnings := cfg.checkCards(loc)
	r.Problems, r.Warnings = append(r.Problems, cardProblems...), append(r.Warnings, cardWarnings...)
	stateErr := checkWritableDir(cfg.StateDir)
	if stateErr != nil {
		r.Problems = append(r.Problems, loc.place("state_dir: "+stateErr.Error()))
	}
	// A database inside a broken state dir is the same problem, once.
	if stateErr == nil || filepath.Dir(cfg.Database) != cfg.StateDir {
		if err := checkDatabasePath(cfg.Database); err != nil {
			r.Problems = append(r.Problems, loc.place("database: "+err.Error()))
		}
	}
	return r
}

// decode decodes a config. Strict, unknown keys and every decoding error are
// reported; lenient, it returns what could be read despite them (nil when
// the file is not YAML at all), for Check to go on with.
func decode(raw []byte, name string, strict bool) (*Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(strict)
	err := dec.Decode(&cfg)
	var te *yaml.TypeError
	switch {
	case err == nil:
		cfg.raw = raw
		return &cfg, nil
	case strict:
		return nil, configError(name, raw, err)
	case errors.As(err, &te):
		cfg.raw = raw
		return &cfg, nil
	}
	return nil, err
}

// Summary describes the config in one line, for check-config and init.
func (c *Config) Summary() string {
	salto := "no salto: section (offline: decides from the cache only)"
	if c.Salto.Present() {
		salto = "Salto KS site " + c.Salto.SiteID
	}
	mqttLink := "no MQTT broker"
	if c.MQTT.Enabled() {
		mqttLink = "MQTT " + strings.Join(c.MQTT.URLs(), ", ")
	}
	hw := "no hardware: section"
	if c.hasHardware() {
		hw = "driver " + c.Hardware.Driver
	}
	return fmt.Sprintf("%d door(s), %s, state dir %s, %s, %s", len(c.Doors), hw, c.StateDir, salto, mqttLink)
}

// checkSalto checks a salto: section that is present: every key talking to
// Salto needs, and its secret files.
func (c *Config) checkSalto(loc *locator) []string {
	s := c.Salto
	if !s.Present() {
		return nil
	}
	var out []string
	if err := s.Configured(); err != nil {
		out = append(out, loc.place("salto: "+err.Error()))
	}
	for _, f := range s.secretFiles() {
		if f.path == "" {
			continue
		}
		if err := CheckSecretFile(c.Resolve(f.path)); err != nil {
			out = append(out, loc.place(f.key+": "+err.Error()))
		}
	}
	return out
}

// checkPINKeyFile checks the PIN key the way run will load it, without
// creating the default one (run does that at first start).
func (c *Config) checkPINKeyFile(loc *locator) []string {
	path, isDefault := c.pinKeyPath()
	key := "pin_key_file"
	if isDefault {
		key = "state_dir"
		// Not there yet (run creates it), or the state dir is not a
		// directory (reported on its own).
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
	}
	if err := CheckSecretFile(path); err != nil {
		return []string{loc.place(key + ": pin key " + err.Error())}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return []string{loc.place(fmt.Sprintf("%s: pin key %s: %v", key, path, unwrapPath(err)))}
	}
	if b, err := hex.DecodeString(strings.TrimSpace(string(data))); err != nil || len(b) < agent.MinPINKeyLength {
		return []string{loc.place(fmt.Sprintf("%s: pin key %s: want at least %d bytes written as hex (64 hex digits)", key, path, agent.MinPINKeyLength))}
	}
	return nil
}

// checkWritableDir wants dir to be a directory this user can create files
// in, or, when it does not exist yet, to be creatable.
func checkWritableDir(dir string) error {
	p := dir
	for {
		st, err := os.Stat(p)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s is not a directory", p)
			}
			if err := syscall.Access(p, 0o2|0o1); err != nil { // W_OK|X_OK
				if p == dir {
					return fmt.Errorf("%s is not writable by this user (%w)", dir, err)
				}
				return fmt.Errorf("%s does not exist and %s is not writable by this user to create it (%w)", dir, p, err)
			}
			return nil
		}
		// ENOTDIR: a file where a parent directory should be, reported
		// when the walk reaches it.
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("%s: %w", p, unwrapPath(err))
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("%s: no existing parent directory", dir)
		}
		p = parent
	}
}

// checkDatabasePath wants an existing database to be a writable file, and
// its directory writable (SQLite creates its -wal and -shm files there).
func checkDatabasePath(path string) error {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("%s: %w", path, unwrapPath(err))
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	default:
		if err := syscall.Access(path, 0o2|0o4); err != nil { // W_OK|R_OK
			return fmt.Errorf("%s is not readable and writable by this user (%w)", path, err)
		}
	}
	return checkWritableDir(filepath.Dir(path))
}
