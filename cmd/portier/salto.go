package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/accesscode"
	"github.com/portier-io/portier/cloud/saltoks/sitesync"
	"github.com/portier-io/portier/sqlite"
)

// SaltoConfig is the salto: section: how to reach Salto KS and how often to
// sync. Secrets are never in this file, only paths to files only their owner
// can read. docs/saltoks.md describes every key.
type SaltoConfig struct {
	IdentityURL      string `yaml:"identity_url"` // e.g. https://identity.eu.my-clay.com
	APIURL           string `yaml:"api_url"`      // e.g. https://connect.my-clay.com
	SiteID           string `yaml:"site_id"`      // Salto site UUID
	ClientID         string `yaml:"client_id"`
	ClientSecretFile string `yaml:"client_secret_file"`
	Grant            string `yaml:"grant"` // password (default), refresh_token, client_credentials
	Username         string `yaml:"username"`
	PasswordFile     string `yaml:"password_file"`
	RefreshTokenFile string `yaml:"refresh_token_file"`
	Scope            string `yaml:"scope"` // default user_api.full_access

	SyncInterval   time.Duration `yaml:"sync_interval"`   // default 15m
	SyncJitter     time.Duration `yaml:"sync_jitter"`     // default sync_interval/10
	RequestTimeout time.Duration `yaml:"request_timeout"` // default 30s
	StaleAfter     time.Duration `yaml:"stale_after"`     // 0: keep deciding from an old cache
	PageSize       int           `yaml:"page_size"`       // default 500
	Concurrency    int           `yaml:"concurrency"`     // access groups read side by side, default 32
	// MaxRequestsInFlight bounds the requests to Salto KS open at once,
	// default 16 (docs/saltoks.md: Salto publishes no rate limit).
	MaxRequestsInFlight int `yaml:"max_requests_in_flight"`
}

// configured says what is missing for talking to Salto, or nil.
func (s SaltoConfig) configured() error {
	var missing []string
	for _, f := range []struct{ key, val string }{
		{"identity_url", s.IdentityURL}, {"api_url", s.APIURL}, {"site_id", s.SiteID}, {"client_id", s.ClientID},
	} {
		if f.val == "" {
			missing = append(missing, "salto."+f.key)
		}
	}
	switch saltoks.Grant(s.Grant) {
	case "", saltoks.GrantPassword:
		if s.Username == "" {
			missing = append(missing, "salto.username")
		}
		if s.PasswordFile == "" {
			missing = append(missing, "salto.password_file")
		}
	case saltoks.GrantRefreshToken:
		if s.RefreshTokenFile == "" {
			missing = append(missing, "salto.refresh_token_file")
		}
	case saltoks.GrantClientCredentials:
		if s.ClientSecretFile == "" {
			missing = append(missing, "salto.client_secret_file")
		}
	default:
		return fmt.Errorf("salto.grant %q is not password, refresh_token or client_credentials", s.Grant)
	}
	if s.SyncInterval < 0 || s.SyncJitter < 0 || s.RequestTimeout < 0 || s.StaleAfter < 0 || s.PageSize < 0 || s.Concurrency < 0 || s.MaxRequestsInFlight < 0 {
		return errors.New("salto: durations and sizes must not be negative")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the salto: section lacks %s (see docs/saltoks.md)", strings.Join(missing, ", "))
	}
	return nil
}

// resolve makes a path relative to the config file's directory.
func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.path), p)
}

// readSecret reads a secret file that only its owner may read.
func readSecret(path, what string) (string, error) {
	if err := checkSecretMode(path); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", what, path)
	}
	return s, nil
}

// writeSecret replaces a secret file atomically, mode 0600.
func writeSecret(path, value string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".portier-secret-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(value + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// newSaltoClient builds the Salto KS client from the config and its secret files.
func newSaltoClient(cfg *Config, log *slog.Logger) (*saltoks.Client, error) {
	s := cfg.Salto
	if err := s.configured(); err != nil {
		return nil, err
	}
	cc := saltoks.Config{IdentityURL: s.IdentityURL, APIURL: s.APIURL, ClientID: s.ClientID, Grant: saltoks.Grant(s.Grant),
		Username: s.Username, Scope: s.Scope, RequestTimeout: s.RequestTimeout, PageSize: s.PageSize, MaxInFlight: s.MaxRequestsInFlight, Logger: log}
	var err error
	if s.ClientSecretFile != "" {
		if cc.ClientSecret, err = readSecret(cfg.resolve(s.ClientSecretFile), "salto.client_secret_file"); err != nil {
			return nil, err
		}
	}
	if s.PasswordFile != "" && (s.Grant == "" || s.Grant == string(saltoks.GrantPassword)) {
		if cc.Password, err = readSecret(cfg.resolve(s.PasswordFile), "salto.password_file"); err != nil {
			return nil, err
		}
	}
	if s.Grant == string(saltoks.GrantRefreshToken) {
		path := cfg.resolve(s.RefreshTokenFile)
		if cc.RefreshToken, err = readSecret(path, "salto.refresh_token_file"); err != nil {
			return nil, err
		}
		// The identity server may rotate refresh tokens: keep the new one, or
		// the next start could not log in.
		cc.OnRefreshToken = func(tok string) {
			if err := writeSecret(path, tok); err != nil {
				log.Error("cannot store the rotated Salto refresh token", "file", path, "err", err)
			}
		}
	}
	return saltoks.New(cc)
}

// saltoDoors is the configured doors as the domain sees them.
func saltoDoors(cfg *Config) []agent.Door {
	out := make([]agent.Door, len(cfg.Doors))
	for i, d := range cfg.Doors {
		out[i] = d.Door()
	}
	return out
}

// applyTo adapts the cache's ApplySnapshot to the sync engine. Local
// credentials (PINs, access codes) survive: a Salto sync knows no PINs.
func applyTo(db *sqlite.DB) sitesync.ApplyFunc {
	return func(ctx context.Context, s *agent.Snapshot) (sitesync.Applied, error) {
		st, err := db.ApplySnapshot(ctx, s, sqlite.ApplyOptions{})
		return sitesync.Applied{Inserted: st.Inserted, Updated: st.Updated, Deleted: st.Deleted, Generation: st.Generation}, err
	}
}

// newSyncEngine builds the sync engine for the configured site and doors;
// events (nil outside the daemon) receives its config-mismatch alarms.
func newSyncEngine(ctx context.Context, cfg *Config, db *sqlite.DB, client *saltoks.Client, log *slog.Logger, progress func(sitesync.Progress), afterSync func(), events agent.EventSink) (*sitesync.Engine, error) {
	return sitesync.New(ctx, sitesync.Config{Source: client, SiteID: cfg.Salto.SiteID, Doors: saltoDoors(cfg), Meta: db, Apply: applyTo(db),
		Interval: cfg.Salto.SyncInterval, Jitter: cfg.Salto.SyncJitter, Concurrency: cfg.Salto.Concurrency, Progress: progress, AfterSync: afterSync,
		Events: events, Logger: log})
}

// newAccessCodes builds the access code service; changed runs after a code
// was set or removed, progress (optional) hears every wait for Salto KS to
// see a new guest.
func newAccessCodes(cfg *Config, db *sqlite.DB, key agent.PINKey, client *saltoks.Client, log *slog.Logger, changed func(context.Context) error, progress func(accesscode.Progress)) (*accesscode.Service, error) {
	return accesscode.New(accesscode.Config{Salto: client, Store: db, SiteID: cfg.Salto.SiteID, Doors: saltoDoors(cfg), PINKey: key, Changed: changed,
		Progress: progress, Logger: log})
}

// saltoLogger logs warnings and errors to stderr (the CLI's own output is
// stdout); --verbose adds the per-request debug lines (never secrets).
func saltoLogger(e *env, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
}

// syncMemoryLimit is the soft heap limit of the commands that sync. A full
// sync of a 100,000-user site keeps about 90 MB live; without a limit the Go
// collector lets the heap grow to twice that before collecting, which a
// Pi-class gateway cannot spare.
const syncMemoryLimit = 100 << 20

// limitMemory applies syncMemoryLimit unless the operator set GOMEMLIMIT.
func limitMemory(e *env) {
	if e.getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(syncMemoryLimit)
	}
}

// isTerminal reports whether w is a terminal (progress is drawn only there).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
