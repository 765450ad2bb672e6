package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cmd/portier/config"
	"github.com/portier-io/portier/cmd/portier/control"
	"github.com/portier-io/portier/sqlite"
)

// needs is what a subcommand declares it needs besides its own flags; a
// session provides it, so the flags → config → cache → Salto prelude is
// written once.
type needs uint8

const (
	needConfig   needs = 1 << iota // the config (--config, default: the embedded demo config)
	needHardware                   // a valid hardware: section (implies needConfig)
	needCache                      // the cache and the PIN key (implies needConfig)
	needSalto                      // a Salto KS client, --verbose (implies needConfig)
	needControl                    // the running daemon's control socket, --json (implies needConfig)
)

// session is one run of a subcommand: its flags, and what it declared it
// needs, opened after the flags are parsed and closed by close.
type session struct {
	e       *env
	fs      *flag.FlagSet
	need    needs
	cfgPath *string
	verbose *bool // needSalto
	asJSON  *bool // needControl

	cfg   *config.Config
	db    *sqlite.DB      // needCache
	key   agent.PINKey    // needCache
	log   *slog.Logger    // needSalto: warnings and errors, every request with --verbose
	salto *saltoks.Client // needSalto
}

// newSession declares a subcommand: its name and synopsis (for -h) and what
// it needs. The command adds its own flags to s.fs, then calls parse and
// open.
func newSession(e *env, name, synopsis string, need needs) *session {
	s := &session{e: e, fs: newFlags(e, name, synopsis), need: need}
	help := "config `file` (default: the embedded demo config)"
	if need&needSalto != 0 {
		help = "config `file` with a salto: section"
	}
	s.cfgPath = s.fs.String("config", "", help)
	if need&needSalto != 0 {
		s.verbose = s.fs.Bool("verbose", false, "log every Salto request (never secrets)")
	}
	if need&needControl != 0 {
		s.asJSON = s.fs.Bool("json", false, "print the answer as JSON")
	}
	return s
}

// parse parses args, wanting nargs positional arguments (-1: any number).
// false means: return code.
func (s *session) parse(args []string, nargs int) (int, bool) {
	if code, ok := parseFlags(s.e, s.fs, args); !ok {
		return code, false
	}
	if nargs >= 0 && s.fs.NArg() != nargs {
		return wrongArgs(s.e, s.fs, nargs), false
	}
	return 0, true
}

// open provides what the command needs, in order: the config, its hardware
// section, the cache, the Salto KS client. Every failure is the operator's
// to fix (exit 2). false means: return code; close releases what was opened
// either way.
func (s *session) open(ctx context.Context) (int, bool) {
	var err error
	if s.cfg, err = config.Load(*s.cfgPath, s.e.getenv); err != nil {
		return fail(s.e, exitUsage, "%v", err), false
	}
	if s.need&needHardware != 0 {
		if err := s.cfg.Hardware.Validate(s.cfg.DoorIDs()); err != nil {
			return fail(s.e, exitUsage, "%s:\n%v", configName(*s.cfgPath), err), false
		}
	}
	if s.need&needCache != 0 {
		if s.db, s.key, err = openCache(ctx, s.e, s.cfg); err != nil {
			return fail(s.e, exitUsage, "%v", err), false
		}
	}
	if s.need&needSalto != 0 {
		limitMemory(s.e)
		s.log = saltoLogger(s.e, *s.verbose)
		if s.salto, err = newSaltoClient(s.cfg, s.log); err != nil {
			return fail(s.e, exitUsage, "%v", err), false
		}
	}
	return 0, true
}

// close releases what open opened.
func (s *session) close() {
	if s.db != nil {
		s.db.Close()
	}
}

// control is a client of the running daemon (needControl). Without
// --config it is the demo config's socket, which an installer on a gateway
// rarely means: the hint names the installed service's config.
func (s *session) control() *control.Client {
	c := control.NewClient(s.cfg.ControlSocket)
	if *s.cfgPath == "" {
		c.Hint = "without --config this is the embedded demo config's socket: for the installed service add --config " + config.PackagedPath
	}
	return c
}

// openCache opens the configured cache and the PIN key, and checks the key is
// the one the cache was built with.
func openCache(ctx context.Context, e *env, cfg *config.Config) (*sqlite.DB, agent.PINKey, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("state dir: %w", err)
	}
	key, err := cfg.PINKey()
	if err != nil {
		return nil, nil, err
	}
	db, err := sqlite.Open(ctx, cfg.Database, sqlite.Options{Logger: slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), Now: e.now})
	if err != nil {
		return nil, nil, err
	}
	if err := db.BindPINKey(ctx, key.Fingerprint()); err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, key, nil
}

// configName names the config for people.
func configName(path string) string {
	if path == "" {
		return config.EmbeddedName
	}
	return "config " + path
}
