package main_test

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
)

// initSetup is a gateway directory for init: config and secrets in etc/,
// state in state/.
type initSetup struct {
	dir, config, state, password, secret string
}

func newInitSetup(t *testing.T) initSetup {
	dir := t.TempDir()
	return initSetup{dir: dir, config: filepath.Join(dir, "etc", "portier.yaml"), state: filepath.Join(dir, "state"),
		password: filepath.Join(dir, "etc", "salto-password"), secret: filepath.Join(dir, "etc", "salto-client-secret")}
}

// saltoArgs are init's flags for the fake's site, door front on lock 0.
func (s initSetup) saltoArgs(fake *saltokstest.Fake, extra ...string) []string {
	o := fake.Options()
	args := []string{"init", "--config", s.config, "--state-dir", s.state, "--owner=", "--gateway-id", "gw-1",
		"--salto-locks", saltokstest.LockID(0), "--salto-identity-url", fake.URL(), "--salto-api-url", fake.URL(),
		"--salto-site-id", saltokstest.GeneratedSiteID, "--salto-client-id", o.ClientID, "--salto-username", o.Username}
	return append(args, extra...)
}

func saltoEnv(fake *saltokstest.Fake) []string {
	o := fake.Options()
	return []string{"PORTIER_SALTO_PASSWORD=" + o.Password, "PORTIER_SALTO_CLIENT_SECRET=" + o.ClientSecret}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Mode().Perm()
}

func TestInitWritesAWorkingConfigAndSecrets(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 3, Groups: 2, Locks: 2}, saltokstest.Options{})
	s := newInitSetup(t)
	env := append(saltoEnv(fake), "PORTIER_MQTT_PASSWORD=mqtt-secret")
	out, errOut, code := runPortier(t, env, s.saltoArgs(fake, "--check", "--driver", "sim",
		"--mqtt-broker", "tcp://127.0.0.1:1883", "--mqtt-username", "gw-1")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Salto KS: signed in as "+fake.Options().Username+"; site "+saltokstest.GeneratedSiteID)
	assert.Contains(t, out, "Salto KS: the door's locks and access groups exist")
	assert.Contains(t, out, s.config+": OK (1 door(s), driver sim, state dir "+s.state+", Salto KS site "+saltokstest.GeneratedSiteID+", MQTT tcp://127.0.0.1:1883)")
	for _, secret := range []string{fake.Options().Password, fake.Options().ClientSecret, "mqtt-secret"} {
		assert.NotContains(t, out+errOut, secret, "a secret was printed")
	}

	assert.Equal(t, os.FileMode(0o640), mode(t, s.config))
	assert.Equal(t, os.FileMode(0o600), mode(t, s.password))
	assert.Equal(t, os.FileMode(0o600), mode(t, s.secret))
	assert.Equal(t, os.FileMode(0o600), mode(t, filepath.Join(s.dir, "etc", "mqtt-password")))
	assert.Equal(t, os.FileMode(0o600), mode(t, filepath.Join(s.state, "pin.key")))
	assert.Equal(t, os.FileMode(0o750), mode(t, s.state))
	pw, err := os.ReadFile(s.password)
	require.NoError(t, err)
	assert.Equal(t, fake.Options().Password+"\n", string(pw))
	cfg, err := os.ReadFile(s.config)
	require.NoError(t, err)
	assert.NotContains(t, string(cfg), fake.Options().Password)
	assert.Contains(t, string(cfg), "/usr/share/doc/portier/portier.yaml.example", "the header names the example a gateway has")
	assert.Contains(t, string(cfg), "password_file: \""+s.password+"\"")
	assert.Contains(t, string(cfg), "mqtt:\n  broker: \"tcp://127.0.0.1:1883\"\n  username: \"gw-1\"\n  password_file: \""+filepath.Join(s.dir, "etc", "mqtt-password")+"\"")
	assert.NotContains(t, string(cfg), "mqtt-secret")

	// The written config works: check-config passes and a sync with it
	// reaches the fake.
	_, errOut, code = runPortier(t, nil, "check-config", "--config", s.config)
	assert.Equal(t, 0, code, errOut)
	out, errOut, code = runPortier(t, nil, "sync", "--config", s.config)
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "users")
}

func TestInitRefusesToOverwrite(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 1, Groups: 1, Locks: 1}, saltokstest.Options{})
	s := newInitSetup(t)
	_, errOut, code := runPortier(t, saltoEnv(fake), s.saltoArgs(fake)...)
	require.Equal(t, 0, code, errOut)
	key, err := os.ReadFile(filepath.Join(s.state, "pin.key"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(s.config, []byte("# edited by the installer\n"), 0o640))

	_, errOut, code = runPortier(t, saltoEnv(fake), s.saltoArgs(fake)...)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, s.config+", "+s.password+", "+s.secret+" already exist: not overwritten (use --force")
	cfg, err := os.ReadFile(s.config)
	require.NoError(t, err)
	assert.Equal(t, "# edited by the installer\n", string(cfg))

	_, errOut, code = runPortier(t, saltoEnv(fake), s.saltoArgs(fake, "--force", "--gateway-id", "gw-2")...)
	require.Equal(t, 0, code, errOut)
	cfg, err = os.ReadFile(s.config)
	require.NoError(t, err)
	assert.Contains(t, string(cfg), `gateway_id: "gw-2"`)
	again, err := os.ReadFile(filepath.Join(s.state, "pin.key"))
	require.NoError(t, err)
	assert.Equal(t, string(key), string(again), "--force replaced the PIN key")
}

func TestInitPointsAtThePackagedTemplate(t *testing.T) {
	s := newInitSetup(t)
	require.NoError(t, os.MkdirAll(filepath.Dir(s.config), 0o755))
	b, err := os.ReadFile(filepath.Join("..", "..", "packaging", "portier.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(s.config, b, 0o640))
	args := []string{"init", "--config", s.config, "--state-dir", s.state, "--owner=", "--gateway-id", "g", "--salto-locks", "0b5e0000-0000-4000-8000-000000000001"}
	_, errOut, code := runPortier(t, nil, args...)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "still maps the template's placeholder lock: it looks like the package's template, which --force replaces")
	_, errOut, code = runPortier(t, nil, append(args, "--force")...)
	require.Equal(t, 0, code, errOut)
	cfg, err := os.ReadFile(s.config)
	require.NoError(t, err)
	assert.Contains(t, string(cfg), `salto_locks: ["0b5e0000-0000-4000-8000-000000000001"]`)
}

func TestInitCheckRefusesBadCredentialsAndUnknownLocks(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 1, Groups: 1, Locks: 1}, saltokstest.Options{})
	s := newInitSetup(t)
	env := []string{"PORTIER_SALTO_PASSWORD=wrong-password", "PORTIER_SALTO_CLIENT_SECRET=" + fake.Options().ClientSecret}
	_, errOut, code := runPortier(t, env, s.saltoArgs(fake, "--check")...)
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "invalid_grant")
	assert.Contains(t, errOut, "check the Salto username and password")
	assert.NotContains(t, errOut, "wrong-password")
	assert.NoFileExists(t, s.config)
	assert.NoFileExists(t, s.password)

	args := s.saltoArgs(fake, "--check", "--salto-locks", saltokstest.LockID(7), "--salto-groups", "a9000000-0000-4000-8000-000000000099")
	_, errOut, code = runPortier(t, saltoEnv(fake), args...)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "site "+saltokstest.GeneratedSiteID+" has no lock "+saltokstest.LockID(7)+", no access group a9000000-0000-4000-8000-000000000099")
	assert.NoFileExists(t, s.config)
}

func TestInitValidatesFlags(t *testing.T) {
	s := newInitSetup(t)
	base := []string{"init", "--config", s.config, "--state-dir", s.state, "--owner="}
	const l1 = "0b5e0000-0000-4000-8000-000000000001"
	cases := []struct {
		args []string
		env  []string
		want string
	}{
		// Issue 15: every answer is checked with the config's own code.
		{[]string{"--salto-locks", l1, "--gateway-id", "a/b"}, nil, `--gateway-id: "a/b" is not an id: 1–64 letters, digits, '_' or '-'`},
		{[]string{"--salto-locks", l1, "--gateway-id", "hall.1"}, nil, `--gateway-id: "hall.1" is not an id: 1–64 letters, digits, '_' or '-'`},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--door", "front.1"}, nil, `--door: "front.1" is not an id`},
		{[]string{"--salto-locks", "not-a-uuid", "--gateway-id", "g"}, nil, `--salto-locks: "not-a-uuid" is not a Salto KS id (a GUID such as`},
		{[]string{"--salto-groups", "l1", "--gateway-id", "g"}, nil, `--salto-groups: "l1" is not a Salto KS id`},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--mode", "face"}, nil, `--mode: "face" is not card, pin, card_or_pin or card_and_pin`},
		{[]string{"--gateway-id", "g"}, nil, "--salto-groups: the door needs at least one Salto KS lock or access group id (the Salto KS portal shows them), or nobody could open it: give --salto-locks or --salto-groups"},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--wiring", "bluetooth"}, nil, `--wiring: "bluetooth" is not one of mfrc522, wiegand`},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--salto-identity-url", "ftp://x"}, nil, `--salto-identity-url: "ftp://x" is not an http(s) URL`},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--salto-identity-url", "https://id.example/connect/token"}, nil,
			`--salto-identity-url: "https://id.example/connect/token" ends in /connect/token, which the client adds itself`},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--salto-identity-url", "https://id.example"}, nil, "--salto-api-url: required"},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--salto-identity-url", "https://id.example", "--salto-api-url", "https://api.example/v1.2"}, nil,
			`--salto-api-url: "https://api.example/v1.2" ends in the API version /v1.2, which the client adds`},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--salto-identity-url", "https://id.example", "--salto-api-url", "https://api.example",
			"--salto-site-id", "ES0000012345"}, nil, `--salto-site-id: "ES0000012345" is the site's uid, not its id`},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--salto-identity-url", "https://id.example", "--salto-api-url", "https://api.example",
			"--salto-site-id", "s1"}, nil, `--salto-site-id: "s1" is not a Salto KS id`},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--salto-identity-url", "https://id.example", "--salto-api-url", "https://api.example",
			"--salto-site-id", saltokstest.GeneratedSiteID, "--salto-client-id", "c", "--salto-username", "u"}, nil,
			"PORTIER_SALTO_PASSWORD: set it in the environment (not on the command line"},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--state-dir", "relative"}, nil, `--state-dir: "relative" is not an absolute path`},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--mqtt-broker", "broker.example"}, nil, `--mqtt-broker: mqtt: broker "broker.example": want scheme://host:port`},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--mqtt-username", "u"}, nil, "--mqtt-broker: required with --mqtt-username"},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--mqtt-broker", "tcp://b:1883"}, nil, "--mqtt-site-id: required: 1–64 letters"},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--mqtt-broker", "tcp://b:1883", "--mqtt-site-id", "site.1"}, nil, `--mqtt-site-id: "site.1" is not an id`},
		{[]string{"--salto-locks", l1, "--gateway-id", "g", "--mqtt-broker", "tcp://b:1883", "--mqtt-site-id", "s", "--mqtt-username", "u"}, nil,
			"PORTIER_MQTT_PASSWORD: set it in the environment"},
	}
	for _, c := range cases {
		_, errOut, code := runPortier(t, c.env, append(base, c.args...)...)
		assert.Equal(t, 2, code, "%v", c.args)
		assert.Contains(t, errOut, c.want, "%v", c.args)
	}
	assert.NoFileExists(t, s.config)
	assert.NoDirExists(t, s.state, "nothing is created before every answer is valid")
}

func TestInitAsksWhatFlagsDoNotSay(t *testing.T) {
	s := newInitSetup(t)
	// Answers in prompt order: gateway id (invalid first), door id, door
	// name, wiring, mode (default), locks, groups, Salto identity URL
	// (none), MQTT broker, MQTT site id (no Salto site), MQTT user (none).
	answers := strings.Join([]string{"bad id", "gw-7", "side", "Side door", "wiegand", "", "0b5e0000-0000-4000-8000-00000000000a, 0b5e0000-0000-4000-8000-00000000000b", "", "", "tcp://broker:1883", "site-7", ""}, "\n") + "\n"
	out, errOut, code := runPortierIn(t, nil, answers, "init", "--interactive", "--config", s.config, "--state-dir", s.state, "--owner=", "--driver", "sim")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Gateway id, unique per site (1–64 letters, digits, '_' or '-')")
	assert.Contains(t, out, `"bad id" is not an id: 1–64 letters, digits, '_' or '-'`)
	// Issue 15: the refused answer is not offered as the default.
	assert.NotContains(t, out, "[bad id]")
	assert.Contains(t, out, "Door mode (card, pin, card_or_pin, card_and_pin) [card_or_pin]: ")
	cfg, err := os.ReadFile(s.config)
	require.NoError(t, err)
	for _, want := range []string{`gateway_id: "gw-7"`, `- id: "side"`, `name: "Side door"`, "mode: card_or_pin",
		`salto_locks: ["0b5e0000-0000-4000-8000-00000000000a", "0b5e0000-0000-4000-8000-00000000000b"]`, "wiegand: {d0: GPIO20, d1: GPIO21}", "No salto: section",
		"mqtt:\n  broker: \"tcp://broker:1883\"\n  site_id: \"site-7\"\n"} {
		assert.Contains(t, string(cfg), want)
	}
	assert.NoFileExists(t, s.password)

	// The Wiegand setup draws (its picture is in docs/install.md).
	out, errOut, code = runPortier(t, nil, "pinout", "--config", s.config)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "side Wiegand D0")

	// Input that ends early is an error, not a half-written config.
	other := newInitSetup(t)
	_, errOut, code = runPortierIn(t, nil, "gw-8\n", "init", "--interactive", "--config", other.config, "--state-dir", other.state, "--owner=")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "standard input ended before every question was answered")
	assert.NoFileExists(t, other.config)
}

func TestInitHandsSecretsToTheOwner(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 1, Groups: 1, Locks: 1}, saltokstest.Options{})
	me, err := user.Current()
	require.NoError(t, err)
	s := newInitSetup(t)
	args := s.saltoArgs(fake, "--owner", me.Username)
	_, errOut, code := runPortier(t, saltoEnv(fake), args...)
	require.Equal(t, 0, code, errOut)
	for _, p := range []string{s.password, s.secret, filepath.Join(s.state, "pin.key")} {
		assert.Equal(t, os.FileMode(0o600), mode(t, p))
	}

	_, errOut, code = runPortier(t, saltoEnv(fake), s.saltoArgs(fake, "--force", "--owner", "no-such-user-portier-test")...)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--owner: user: unknown user no-such-user-portier-test")
}

// /dev/null as standard input (systemd, cron, CI) is a character device but
// nobody to ask: init must not prompt there.
func TestInitDoesNotPromptOnDevNull(t *testing.T) {
	null, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer null.Close()
	s := newInitSetup(t)
	cmd := exec.Command(portierBin, "init", "--config", s.config, "--state-dir", s.state, "--owner=", "--gateway-id", "g")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	cmd.Stdin = null
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "%s", out)
	assert.Equal(t, 2, ee.ExitCode())
	assert.Contains(t, string(out), "the door needs at least one Salto KS lock or access group id")
	assert.NotContains(t, string(out), "Door id")
}

// Issue 15: an invalid flag value is said why and asked again, and is not
// offered as the default.
func TestInitAsksAgainWithoutTheRefusedValue(t *testing.T) {
	s := newInitSetup(t)
	answers := strings.Join([]string{"", "hall-1", "", "", "", "", "0b5e0000-0000-4000-8000-00000000000a", "", "", ""}, "\n") + "\n"
	out, errOut, code := runPortierIn(t, nil, answers, "init", "--interactive", "--config", s.config, "--state-dir", s.state, "--owner=", "--driver", "sim",
		"--gateway-id", "hall.1")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	assert.Contains(t, out, `  --gateway-id: "hall.1" is not an id: 1–64 letters, digits, '_' or '-' (ids name MQTT topics)`)
	assert.Contains(t, out, "Gateway id, unique per site (1–64 letters, digits, '_' or '-'): ", "no default offered")
	assert.NotContains(t, out, "[hall.1]")
	assert.Contains(t, out, "  required: 1–64 letters", "an empty answer without a default is refused")
	cfg, err := os.ReadFile(s.config)
	require.NoError(t, err)
	assert.Contains(t, string(cfg), `gateway_id: "hall-1"`)
}

// A door needs a lock or a group: with no lock answered, an empty answer
// for the groups is asked again, not the end of init and every answer.
func TestInitAsksForAGroupWithoutALock(t *testing.T) {
	s := newInitSetup(t)
	const group = "0b5e0000-0000-4000-8000-00000000000b"
	answers := strings.Join([]string{"gw", "", "", "", "", "", "", group, "", ""}, "\n") + "\n"
	out, errOut, code := runPortierIn(t, nil, answers, "init", "--interactive", "--config", s.config, "--state-dir", s.state, "--owner=", "--driver", "sim")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	assert.Contains(t, out, "access group ids whose members open the door (comma-separated; at least one, as no lock was given): ")
	assert.Contains(t, out, "portier run --config "+s.config+" (the service reads /etc/portier/portier.yaml, not this file)",
		"the next step for a config the service does not read")
	assert.NotContains(t, out, "systemctl enable")
	assert.Contains(t, out, "  the door needs at least one Salto KS lock or access group id")
	cfg, err := os.ReadFile(s.config)
	require.NoError(t, err)
	assert.Contains(t, string(cfg), group)
}

// Issue 15: on an existing config init refuses before the first question.
func TestInitRefusesBeforeAsking(t *testing.T) {
	s := newInitSetup(t)
	require.NoError(t, os.MkdirAll(filepath.Dir(s.config), 0o755))
	b, err := os.ReadFile(filepath.Join("..", "..", "packaging", "portier.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(s.config, b, 0o640))
	out, errOut, code := runPortierIn(t, nil, "", "init", "--interactive", "--config", s.config, "--state-dir", s.state, "--owner=")
	assert.Equal(t, 2, code)
	assert.Empty(t, out, "no question was asked")
	assert.Contains(t, errOut, s.config+" already exists: not overwritten (use --force")
	assert.Contains(t, errOut, "it looks like the package's template, which --force replaces")
}

// Issue 15: a relative --config writes secret paths the config resolves.
func TestInitRelativeConfigPath(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 2, Groups: 1, Locks: 1}, saltokstest.Options{})
	work := t.TempDir()
	s := newInitSetup(t)
	o := fake.Options()
	cmd := exec.Command(portierBin, "init", "--config", "ux/init/portier.yaml", "--state-dir", s.state, "--owner=", "--gateway-id", "gw-1", "--driver", "sim",
		"--salto-locks", saltokstest.LockID(0), "--salto-identity-url", fake.URL(), "--salto-api-url", fake.URL(),
		"--salto-site-id", saltokstest.GeneratedSiteID, "--salto-client-id", o.ClientID, "--salto-username", o.Username)
	cmd.Dir = work
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, saltoEnv(fake)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	cfgPath := filepath.Join(work, "ux", "init", "portier.yaml")
	cfg, err := os.ReadFile(cfgPath)
	require.NoError(t, err)
	assert.Contains(t, string(cfg), `password_file: "`+filepath.Join(work, "ux", "init", "salto-password")+`"`)

	// From anywhere else, the config finds its secrets.
	_, errOut, code := runPortier(t, nil, "check-config", "--for", "sync", "--config", cfgPath)
	require.Equal(t, 0, code, errOut)
	syncOut, errOut, code := runPortier(t, nil, "sync", "--config", cfgPath)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, syncOut, "users")
}

// Issue 15: init leaves nothing behind when it fails, and puts back what
// --force was replacing.
func TestInitLeavesNothingOnFailure(t *testing.T) {
	t.Run("the written config fails its check", func(t *testing.T) {
		s := newInitSetup(t)
		// A PIN key others can read: init keeps an existing key, and the
		// check refuses it.
		require.NoError(t, os.MkdirAll(s.state, 0o750))
		key := filepath.Join(s.state, "pin.key")
		require.NoError(t, os.WriteFile(key, []byte(strings.Repeat("ab", 32)+"\n"), 0o644))
		args := []string{"init", "--config", s.config, "--state-dir", s.state, "--owner=", "--gateway-id", "g", "--salto-locks", "0b5e0000-0000-4000-8000-000000000001"}
		_, errOut, code := runPortier(t, nil, args...)
		assert.Equal(t, 2, code)
		assert.Contains(t, errOut, "pin key "+key+" is readable by other users")
		assert.Contains(t, errOut, "nothing was kept")
		assert.NoFileExists(t, s.config)
		assert.NoDirExists(t, filepath.Dir(s.config), "the config's folder init made is gone too")
		assert.FileExists(t, key, "the existing key is kept")

		// With --force, the config that was there comes back.
		require.NoError(t, os.MkdirAll(filepath.Dir(s.config), 0o755))
		require.NoError(t, os.WriteFile(s.config, []byte("# the installer's config\n"), 0o640))
		_, errOut, code = runPortier(t, nil, append(args, "--force")...)
		assert.Equal(t, 2, code, errOut)
		b, err := os.ReadFile(s.config)
		require.NoError(t, err)
		assert.Equal(t, "# the installer's config\n", string(b))
		entries, err := os.ReadDir(filepath.Dir(s.config))
		require.NoError(t, err)
		assert.Len(t, entries, 1, "no staged or backup file is left: %v", entries)
	})
	t.Run("a folder cannot be made", func(t *testing.T) {
		fake := startFake(t, saltokstest.SiteShape{Users: 1, Groups: 1, Locks: 1}, saltokstest.Options{})
		s := newInitSetup(t)
		file := filepath.Join(s.dir, "a-file")
		require.NoError(t, os.WriteFile(file, nil, 0o600))
		_, errOut, code := runPortier(t, saltoEnv(fake), s.saltoArgs(fake, "--secrets-dir", filepath.Join(file, "secrets"))...)
		assert.Equal(t, 3, code)
		assert.Contains(t, errOut, "nothing was kept")
		assert.NoDirExists(t, s.state, "the state dir init made is removed")
		assert.NoFileExists(t, s.config)
	})
}

// Issue 15: init --check looks a site uid up; without --check the uid is
// refused with where to find the id.
func TestInitCheckResolvesASiteUID(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 1, Groups: 1, Locks: 1}, saltokstest.Options{})
	s := newInitSetup(t)
	out, errOut, code := runPortier(t, saltoEnv(fake), s.saltoArgs(fake, "--check", "--salto-site-id", "de0000000001")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Salto KS: site uid DE0000000001 is site id "+saltokstest.GeneratedSiteID)
	cfg, err := os.ReadFile(s.config)
	require.NoError(t, err)
	assert.Contains(t, string(cfg), `site_id: "`+saltokstest.GeneratedSiteID+`"`)

	other := newInitSetup(t)
	_, errOut, code = runPortier(t, saltoEnv(fake), other.saltoArgs(fake, "--check", "--salto-site-id", "ES0000000009")...)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "ES0000000009 is no site uid of "+fake.Options().Username+"'s sites (DE0000000001 ")
	assert.Contains(t, errOut, "site id "+saltokstest.GeneratedSiteID)
	assert.NoFileExists(t, other.config)
}
