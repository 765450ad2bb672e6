package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cmd/portier/config"
	"github.com/portier-io/portier/sqlite"
)

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
