package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/sqlite"
)

// openCache opens the configured cache and the PIN key, and checks the key is
// the one the cache was built with.
func openCache(ctx context.Context, e *env, cfg *Config) (*sqlite.DB, agent.PINKey, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("state dir: %w", err)
	}
	key, err := loadPINKey(cfg)
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

// loadPINKey reads the PIN hashing key: 64+ hex digits in a file only its
// owner can read. Only the default key file (in the state dir) is created when
// missing; a configured one must exist, because a fresh key would turn every
// stored PIN into an unknown one.
func loadPINKey(cfg *Config) (agent.PINKey, error) {
	path, isDefault := cfg.PINKeyFile, false
	if path == "" {
		path, isDefault = filepath.Join(cfg.StateDir, "pin.key"), true
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && isDefault {
		return createPINKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("pin key: %w", err)
	}
	if err := checkSecretMode(path); err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) < agent.MinPINKeyLength {
		return nil, fmt.Errorf("pin key %s: want at least %d bytes written as hex (e.g. `head -c 32 /dev/urandom | xxd -p -c 64`)", path, agent.MinPINKeyLength)
	}
	return key, nil
}

func createPINKey(path string) (agent.PINKey, error) {
	key := make([]byte, agent.MinPINKeyLength)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("pin key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pin key: %w", err)
	}
	if _, err := fmt.Fprintln(f, hex.EncodeToString(key)); err != nil {
		f.Close()
		return nil, fmt.Errorf("pin key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("pin key: %w", err)
	}
	return key, f.Close()
}

// checkSecretMode refuses a secret file that group or others can read.
func checkSecretMode(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is readable by other users (mode %04o): run `chmod 600 %s`", path, st.Mode().Perm(), path)
	}
	return nil
}
