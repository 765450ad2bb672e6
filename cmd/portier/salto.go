package main

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/accesscode"
	"github.com/portier-io/portier/cloud/saltoks/sitesync"
	"github.com/portier-io/portier/cmd/portier/config"
	"github.com/portier-io/portier/sqlite"
)

// newSaltoClient builds the Salto KS client from the config and its secret files.
func newSaltoClient(cfg *config.Config, log *slog.Logger) (*saltoks.Client, error) {
	s := cfg.Salto
	if err := s.Configured(); err != nil {
		return nil, err
	}
	cc := saltoks.Config{IdentityURL: s.IdentityURL, APIURL: s.APIURL, ClientID: s.ClientID, Grant: saltoks.Grant(s.Grant),
		Username: s.Username, Scope: s.Scope, RequestTimeout: s.RequestTimeout, PageSize: s.PageSize, MaxInFlight: s.MaxRequestsInFlight, Logger: log}
	var err error
	if s.ClientSecretFile != "" {
		if cc.ClientSecret, err = config.ReadSecret(cfg.Resolve(s.ClientSecretFile), "salto.client_secret_file"); err != nil {
			return nil, err
		}
	}
	if s.PasswordFile != "" && (s.Grant == "" || s.Grant == string(saltoks.GrantPassword)) {
		if cc.Password, err = config.ReadSecret(cfg.Resolve(s.PasswordFile), "salto.password_file"); err != nil {
			return nil, err
		}
	}
	if s.Grant == string(saltoks.GrantRefreshToken) {
		path := cfg.Resolve(s.RefreshTokenFile)
		if cc.RefreshToken, err = config.ReadSecret(path, "salto.refresh_token_file"); err != nil {
			return nil, err
		}
		// The identity server may rotate refresh tokens: keep the new one, or
		// the next start could not log in.
		cc.OnRefreshToken = func(tok string) {
			if err := config.WriteSecret(path, tok); err != nil {
				log.Error("cannot store the rotated Salto refresh token", "file", path, "err", err)
			}
		}
	}
	return saltoks.New(cc)
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
func newSyncEngine(ctx context.Context, cfg *config.Config, db *sqlite.DB, client *saltoks.Client, log *slog.Logger, progress func(sitesync.Progress), afterSync func(), events agent.EventSink) (*sitesync.Engine, error) {
	return sitesync.New(ctx, sitesync.Config{Source: client, SiteID: cfg.Salto.SiteID, Doors: cfg.AgentDoors(), Meta: db, Apply: applyTo(db),
		Interval: cfg.Salto.SyncInterval, Jitter: cfg.Salto.SyncJitter, Concurrency: cfg.Salto.Concurrency, Progress: progress, AfterSync: afterSync,
		Events: events, Logger: log})
}

// newAccessCodes builds the access code service; changed runs after a code
// was set or removed, progress (optional) hears every wait for Salto KS to
// see a new guest.
func newAccessCodes(cfg *config.Config, db *sqlite.DB, key agent.PINKey, client *saltoks.Client, log *slog.Logger, changed func(context.Context) error, progress func(accesscode.Progress)) (*accesscode.Service, error) {
	return accesscode.New(accesscode.Config{Salto: client, Store: db, SiteID: cfg.Salto.SiteID, Doors: cfg.AgentDoors(), PINKey: key, Changed: changed,
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
