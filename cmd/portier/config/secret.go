package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/portier-io/portier/agent"
)

// Secrets (the Salto password, client secret and refresh token, the MQTT
// password and command key, TLS keys, the PIN key) live in files of their
// own that only their owner may read (mode 0600), never in the config.

// CheckSecretMode refuses a secret file that group or others can read.
func CheckSecretMode(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is readable by other users (mode %04o): run `chmod 600 %s`", path, st.Mode().Perm(), path)
	}
	return nil
}

// CheckSecretFile wants a non-empty regular file that this user can read and
// nobody else can.
func CheckSecretFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if err := CheckSecretMode(path); err != nil {
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

// ReadSecret reads a secret file that only its owner may read; what is the
// config key in messages.
func ReadSecret(path, what string) (string, error) {
	// The same checks, in the same words, as check-config's.
	if err := CheckSecretFile(path); err != nil {
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

// WriteSecret replaces a secret file atomically, mode 0600.
func WriteSecret(path, value string) error {
	return WriteFile(path, []byte(value+"\n"), 0o600, nil)
}

// WriteFile replaces path atomically: a temporary file in the same directory
// gets its final mode, and whatever prepare does to it (e.g. give it to the
// service user), before it has any content; it is synced, renamed into
// place, and the directory synced. A crash leaves the old file or the new
// one, never a secret readable by the wrong user; once WriteFile returns, a
// power cut cannot bring the old one back (a reader's new key must not be
// lost after the reader took it).
func WriteFile(path string, data []byte, mode os.FileMode, prepare func(tmp string) error) error {
	tmp, err := StageFile(path, data, mode, prepare)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir makes the names in dir durable: a rename, link or removal there
// survives a power cut only once its directory is synced.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return d.Close()
}

// StageFile is WriteFile up to the rename: it returns the synced temporary
// file beside path, for a caller that puts several files in place together
// (and removes the temporary file when it does not).
func StageFile(path string, data []byte, mode os.FileMode, prepare func(tmp string) error) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".portier-*")
	if err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	if err := tmp.Chmod(mode); err != nil {
		return fail(err)
	}
	if prepare != nil {
		if err := prepare(tmp.Name()); err != nil {
			return fail(err)
		}
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// pinKeyPath is the PIN key file, and whether it is the default one in the
// state dir.
func (c *Config) pinKeyPath() (string, bool) {
	if c.PINKeyFile == "" {
		return filepath.Join(c.StateDir, "pin.key"), true
	}
	return c.PINKeyFile, false
}

// PINKey reads the PIN hashing key: 64+ hex digits in a file only its owner
// can read. Only the default key file (in the state dir) is created when
// missing; a configured one must exist, because a fresh key would turn every
// stored PIN into an unknown one.
func (c *Config) PINKey() (agent.PINKey, error) {
	path, isDefault := c.pinKeyPath()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && isDefault {
		return createPINKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("pin key: %w", err)
	}
	if err := CheckSecretMode(path); err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) < agent.MinPINKeyLength {
		return nil, fmt.Errorf("pin key %s: want at least %d bytes written as hex (e.g. `head -c 32 /dev/urandom | xxd -p -c 64`)", path, agent.MinPINKeyLength)
	}
	return key, nil
}

// createPINKey creates the default key file whole or not at all: the key is
// staged and synced beside it, then linked into place (link, unlike rename,
// never replaces a key another process created meanwhile) and the directory
// synced. A file created in place could survive a power cut empty, and the
// agent would then refuse to start.
func createPINKey(path string) (agent.PINKey, error) {
	key := make([]byte, agent.MinPINKeyLength)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("pin key: %w", err)
	}
	tmp, err := StageFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600, nil)
	if err != nil {
		return nil, fmt.Errorf("pin key: %w", err)
	}
	err = os.Link(tmp, path)
	os.Remove(tmp)
	if errors.Is(err, fs.ErrExist) {
		// Another portier process created it first: use that one.
		return (&Config{PINKeyFile: path}).PINKey()
	}
	if err != nil {
		return nil, fmt.Errorf("pin key: %w", err)
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("pin key: %w", err)
	}
	return key, nil
}

// unwrapPath drops os.PathError's copy of the path (messages name it already).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
