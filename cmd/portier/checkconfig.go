package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
)

// packagedConfig is where the .deb installs the config and the unit reads it.
const packagedConfig = "/etc/portier/portier.yaml"

// placeholderLock is the lock id of the packaged template: it matches no
// Salto lock, so the door opens for nobody until it is replaced.
const placeholderLock = "00000000-0000-0000-0000-000000000000"

// cmdCheckConfig validates a config file without touching hardware. The
// systemd unit runs it as ExecStartPre, as the service user and inside the
// service's sandbox, so it also catches files that user cannot read and
// state directories it cannot write.
func cmdCheckConfig(_ context.Context, e *env, args []string) int {
	fs := newFlags(e, "check-config", "[--config FILE]")
	path := fs.String("config", packagedConfig, "config `file`")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	r := checkConfigFile(*path, e)
	for _, w := range r.warnings {
		fmt.Fprintf(e.stdout, "warning: %s\n", w)
	}
	if len(r.problems) > 0 {
		for _, p := range r.problems {
			fmt.Fprintln(e.stderr, p)
		}
		fmt.Fprintf(e.stderr, "portier check-config: %s: %d problem(s)\n", *path, len(r.problems))
		return exitUsage
	}
	fmt.Fprintf(e.stdout, "%s: OK (%s)\n", *path, r.summary)
	return exitOK
}

// configReport is what check-config found.
type configReport struct {
	problems []string // "file:line: message" or "file: message"
	warnings []string
	summary  string
}

// checkConfigFile runs every check that needs no hardware and reports all
// problems at once.
func checkConfigFile(path string, e *env) configReport {
	var r configReport
	raw, err := os.ReadFile(path)
	if err != nil {
		r.problems = append(r.problems, fmt.Sprintf("%s: %v", path, unwrapPath(err)))
		return r
	}
	loc := newLocator(path, raw)
	cfg, err := loadConfig(path, e)
	if err != nil {
		for _, m := range strings.Split(err.Error(), "\n") {
			r.problems = append(r.problems, loc.place(m))
		}
		// Keep going with what can be read, so the secret files and
		// directories are reported in the same run.
		if cfg = lenientConfig(raw, path, e); cfg == nil {
			return r
		}
	} else {
		ids := make([]string, len(cfg.Doors))
		for i, d := range cfg.Doors {
			ids[i] = d.ID
			for _, l := range d.SaltoLocks {
				if l == placeholderLock {
					r.warnings = append(r.warnings, loc.place(fmt.Sprintf("doors[%d].salto_locks: %s is the template's placeholder: nobody can open door %q until it names a real Salto KS lock", i, l, d.ID)))
				}
			}
		}
		if err := cfg.Hardware.Validate(ids); err != nil {
			for _, m := range strings.Split(err.Error(), "\n") {
				r.problems = append(r.problems, loc.place(m))
			}
		}
	}
	r.problems = append(r.problems, checkSalto(cfg, loc)...)
	// The link's own configuration step reads the password, command key and
	// TLS files with their mode checks, and touches no network.
	if cfg.MQTT.Enabled() {
		if _, err := cfg.MQTT.LinkConfig(cfg); err != nil {
			r.problems = append(r.problems, loc.place(err.Error()))
		}
	}
	r.problems = append(r.problems, checkPINKeyFile(cfg, loc)...)
	stateErr := checkWritableDir(cfg.StateDir)
	if stateErr != nil {
		r.problems = append(r.problems, loc.place("state_dir: "+stateErr.Error()))
	}
	// A database inside a broken state dir is the same problem, once.
	if stateErr == nil || filepath.Dir(cfg.Database) != cfg.StateDir {
		if err := checkDatabasePath(cfg.Database); err != nil {
			r.problems = append(r.problems, loc.place("database: "+err.Error()))
		}
	}
	salto := "no salto: section (offline: decides from the cache only)"
	if cfg.Salto != (SaltoConfig{}) {
		salto = "Salto KS site " + cfg.Salto.SiteID
	}
	mqttLink := "no MQTT broker"
	if cfg.MQTT.Enabled() {
		mqttLink = "MQTT " + strings.Join(cfg.MQTT.urls(), ", ")
	}
	r.summary = fmt.Sprintf("%d door(s), driver %s, state dir %s, %s, %s", len(cfg.Doors), cfg.Hardware.Driver, cfg.StateDir, salto, mqttLink)
	return r
}

// lenientConfig decodes a config that failed validation, ignoring unknown
// keys, so the file checks can still run; nil when even that fails.
func lenientConfig(raw []byte, path string, e *env) *Config {
	var cfg Config
	if yaml.Unmarshal(raw, &cfg) != nil {
		return nil
	}
	cfg.path = path
	if cfg.resolvePaths(e) != nil {
		return nil
	}
	return &cfg
}

// checkSalto checks a salto: section that is present: every key talking to
// Salto needs, and its secret files.
func checkSalto(cfg *Config, loc *locator) []string {
	s := cfg.Salto
	if s == (SaltoConfig{}) {
		return nil
	}
	var out []string
	if err := s.configured(); err != nil {
		out = append(out, loc.place("salto: "+err.Error()))
	}
	files := []struct{ key, path string }{{"salto.client_secret_file", s.ClientSecretFile}}
	switch saltoks.Grant(s.Grant) {
	case "", saltoks.GrantPassword:
		files = append(files, struct{ key, path string }{"salto.password_file", s.PasswordFile})
	case saltoks.GrantRefreshToken:
		files = append(files, struct{ key, path string }{"salto.refresh_token_file", s.RefreshTokenFile})
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if err := checkSecretFile(cfg.resolve(f.path)); err != nil {
			out = append(out, loc.place(f.key+": "+err.Error()))
		}
	}
	return out
}

// checkPINKeyFile checks the PIN key the way run will load it, without
// creating the default one (run does that at first start).
func checkPINKeyFile(cfg *Config, loc *locator) []string {
	path, key := cfg.PINKeyFile, "pin_key_file"
	if path == "" {
		path, key = filepath.Join(cfg.StateDir, "pin.key"), "state_dir"
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	if err := checkSecretFile(path); err != nil {
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

// checkSecretFile wants a non-empty regular file that this user can read and
// nobody else can.
func checkSecretFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if err := checkSecretMode(path); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w (the service runs as user portier: sudo chown portier: %s)", path, unwrapPath(err), path)
	}
	defer f.Close()
	if st.Size() == 0 {
		return fmt.Errorf("%s is empty", path)
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

// unwrapPath drops os.PathError's copy of the path (messages name it already).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// locator turns config messages into "file:line: message" by finding the
// key a message names in the YAML node tree.
type locator struct {
	name string
	root *yaml.Node // nil when the file is not valid YAML
}

func newLocator(name string, raw []byte) *locator {
	l := &locator{name: name}
	var doc yaml.Node
	if yaml.Unmarshal(raw, &doc) == nil && len(doc.Content) == 1 {
		l.root = doc.Content[0]
	}
	return l
}

var (
	// "line 12: …" as config.go and the YAML library write it.
	lineMsg = regexp.MustCompile(`^line (\d+): (.*)$`)
	// A config key path at the start of a message, e.g. hardware.doors.front.relay.pin.
	keyMsg = regexp.MustCompile(`^((?:hardware|salto|mqtt|doors\[\d+\])(?:\.[a-z0-9_-]+|\[\d+\])*|[a-z_]+):`)
)

// place formats one message. Messages may carry the file name and a
// "hardware: " prefix from config.go; both are normalised.
func (l *locator) place(msg string) string {
	msg = strings.TrimPrefix(msg, l.name+": ")
	msg = strings.TrimPrefix(msg, "hardware: ")
	if m := lineMsg.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s:%s: %s", l.name, m[1], m[2])
	}
	if m := keyMsg.FindStringSubmatch(msg); m != nil {
		if line := l.line(m[1]); line > 0 {
			return fmt.Sprintf("%s:%d: %s", l.name, line, msg)
		}
	}
	return l.name + ": " + msg
}

var keyPart = regexp.MustCompile(`[^.\[\]]+|\[\d+\]`)

// line finds the line of a key path such as doors[0].salto_locks or
// hardware.doors.front.relay.pin: the deepest part that exists.
func (l *locator) line(key string) int {
	n, line := l.root, 0
	for _, part := range keyPart.FindAllString(key, -1) {
		if n == nil {
			break
		}
		var next *yaml.Node
		switch {
		case strings.HasPrefix(part, "["):
			var i int
			if _, err := fmt.Sscanf(part, "[%d]", &i); err == nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		case n.Kind == yaml.MappingNode:
			for j := 0; j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == part {
					next, line = n.Content[j+1], n.Content[j].Line
				}
			}
		}
		n = next
	}
	return line
}
