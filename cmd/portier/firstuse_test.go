package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
)

// internalText is what an operator must never read: Go's and the HTTP
// library's words for what went wrong inside.
var internalText = []string{"goroutine ", "panic:", "context deadline exceeded", "context canceled", `Post "http://portier`, `Get "http://portier`,
	"parse error", "flag provided but not defined", "time: invalid duration"}

// TestFirstUseMistakes runs the mistakes a new user makes at the command
// line: each says what is wrong and what to do, exits non-zero, and shows
// no internal error text. Asked-for help goes to standard output.
func TestFirstUseMistakes(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // in standard output
		wantErr  string // in standard error
	}{
		{name: "help for a command", args: []string{"help", "run"}, wantCode: 0, wantOut: "Usage: portier run"},
		{name: "help for an operation", args: []string{"help", "card", "issue"}, wantCode: 0, wantOut: "Usage: portier card issue"},
		{name: "-h is on standard output", args: []string{"check", "-h"}, wantCode: 0, wantOut: "Usage: portier check"},
		{name: "--help of a control command", args: []string{"unlock", "--help"}, wantCode: 0, wantOut: "Usage: portier unlock"},
		{name: "card -h", args: []string{"card", "-h"}, wantCode: 0, wantOut: "Usage: portier card issue|inspect|rekey"},
		{name: "access-code --help", args: []string{"access-code", "--help"}, wantCode: 0, wantOut: "Usage: portier access-code"},
		{name: "flags in help as the usage line writes them", args: []string{"unlock", "-h"}, wantCode: 0,
			wantOut: "Usage: portier unlock DOOR [--duration D] [--override]\n\nFlags:\n  --config file\n"},
		{name: "office mode's help names --until", args: []string{"help", "office-mode"}, wantCode: 0,
			wantOut: "Usage: portier office-mode DOOR on|off [--until TIME]\n"},
		{name: "a command without flags", args: []string{"version", "-h"}, wantCode: 0, wantOut: "Usage: portier version\n"},
		{name: "help for an unknown command", args: []string{"help", "bogus"}, wantCode: 2, wantErr: `unknown command "bogus"`},
		{name: "no command", args: nil, wantCode: 2, wantErr: "Usage: portier <command>"},
		{name: "config file without --config", args: []string{"check-config", "/etc/portier/portier.yml"}, wantCode: 2,
			wantErr: `unexpected argument "/etc/portier/portier.yml": give a config file with --config /etc/portier/portier.yml`},
		{name: "lockdown neither on nor off", args: []string{"lockdown", "front", "maybe"}, wantCode: 2, wantErr: `portier lockdown: "maybe": want on or off`},
		{name: "unlock without a door", args: []string{"unlock"}, wantCode: 2, wantErr: "portier unlock: missing argument"},
		{name: "stray argument", args: []string{"run", "now"}, wantCode: 2, wantErr: `portier run: unexpected argument "now"`},
		{name: "enroll without a tag number", args: []string{"enroll", "front"}, wantCode: 2, wantErr: "--tag-number is required"},
		{name: "check without a door", args: []string{"check", "--tag", "1"}, wantCode: 2, wantErr: "--door is required"},
		{name: "unknown card operation", args: []string{"card", "isue", "lab"}, wantCode: 2, wantErr: `portier card: unknown operation "isue"`},
		{name: "reader -h", args: []string{"reader", "-h"}, wantCode: 0, wantOut: "portier reader install --door DOOR"},
		{name: "unknown reader operation", args: []string{"reader", "instal"}, wantCode: 2, wantErr: `portier reader: unknown operation "instal"`},
		{name: "reader install without a door", args: []string{"reader", "install"}, wantCode: 2, wantErr: "portier reader install: --door is required"},
		{name: "unknown access-code operation", args: []string{"access-code", "show"}, wantCode: 2, wantErr: `portier access-code: unknown operation "show"`},
		{name: "status without --config names the service's config", args: []string{"status"}, wantCode: 3,
			wantErr: "for the installed service add --config /etc/portier/portier.yaml"},
		{name: "events without --config names the service's config", args: []string{"events"}, wantCode: 2,
			wantErr: "nothing has been recorded; without --config this is the embedded demo config's: for the installed service add --config /etc/portier/portier.yaml"},
		{name: "a duration that is not one", args: []string{"unlock", "front", "--duration", "banana"}, wantCode: 2,
			wantErr: "portier unlock: --duration: \"banana\" is not a duration; e.g. 30s, 5m, 1h30m\n\nUsage: portier unlock"},
		{name: "a wait that is not a duration", args: []string{"enroll", "front", "--tag-number", "1", "--timeout", "soon"}, wantCode: 2,
			wantErr: `portier enroll: --timeout: "soon" is not a duration; e.g. 30s, 5m, 1h30m`},
		{name: "a number that is not one", args: []string{"reader", "set-address", "--door", "studio", "--address", "two"}, wantCode: 2,
			wantErr: `portier reader set-address: --address: "two" is not a whole number`},
		{name: "a flag value for a switch", args: []string{"status", "--json=yes"}, wantCode: 2,
			wantErr: `portier status: --json: "yes" is not true or false (--json alone is true)`},
		{name: "an unknown flag", args: []string{"check-config", "--json"}, wantCode: 2,
			wantErr: "portier check-config: unknown flag --json (the flags are below)\n\nUsage: portier check-config"},
		{name: "a flag without its value", args: []string{"unlock", "front", "--duration"}, wantCode: 2,
			wantErr: "portier unlock: --duration needs a value"},
		{name: "import a file that is not there", args: []string{"import", "site.json"}, wantCode: 2,
			wantErr: "portier: site.json: no such file: give the path of a site snapshot file (docs/snapshot-format.md)"},
		{name: "office mode until a word", args: []string{"office-mode", "front", "on", "--until", "tomorrow"}, wantCode: 2,
			wantErr: `--until "tomorrow": want an RFC 3339 time with its zone, e.g. 20`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runPortier(t, nil, tt.args...)
			assert.Equal(t, tt.wantCode, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			assert.Contains(t, out, tt.wantOut)
			assert.Contains(t, errOut, tt.wantErr)
			for _, bad := range internalText {
				assert.NotContains(t, out+errOut, bad)
			}
		})
	}
}

// TestEnrollGivenUpIsCanceled: an operator who stops waiting for the tap
// (--timeout, Ctrl-C) must not leave the door armed, or the next card
// tapped there becomes that tag number behind their back.
func TestEnrollGivenUpIsCanceled(t *testing.T) {
	g := newGateway(t, "2s")
	g.start()
	g.follow()
	_, errOut, code := runPortier(t, g.env, "enroll", "front", "--config", g.cfg, "--tag-number", "02301299", "--timeout", "2s")
	assert.Equal(t, 3, code, errOut)
	assert.Contains(t, errOut, "no card was tapped at door front within 2s: the enrolment is canceled, nothing was stored")
	for _, bad := range internalText {
		assert.NotContains(t, errOut, bad)
	}
	e := g.waitEvent(agent.EventEnrolmentExpired)
	assert.Contains(t, e.Detail, "canceled before a card was tapped")
}

// TestSyncSaysWhatCheckConfigSays: a missing or too open secret file stops
// `portier sync` with check-config's words (and its fix), not Go's "stat …".
func TestSyncSaysWhatCheckConfigSays(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 1, Groups: 1, Locks: 1}, saltokstest.Options{})
	tests := []struct {
		name  string
		spoil func(s saltoSetup)
		want  string
	}{
		{"missing password file", func(s saltoSetup) { require.NoError(t, os.Remove(filepath.Join(s.dir, "salto.password"))) },
			"salto.password_file: %s/salto.password: no such file or directory"},
		{"password readable by others", func(s saltoSetup) { require.NoError(t, os.Chmod(filepath.Join(s.dir, "salto.password"), 0o644)) },
			"salto.password_file: %[1]s/salto.password is readable by other users (mode 0644): run `chmod 600 %[1]s/salto.password`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := writeSaltoConfig(t, fake, 0o600, []string{saltokstest.LockID(0)}, "")
			tt.spoil(s)
			want := fmt.Sprintf(tt.want, s.dir)
			_, checkErr, code := runPortier(t, nil, "check-config", "--config", s.config)
			require.Equal(t, 2, code)
			assert.Contains(t, checkErr, want)
			_, errOut, code := runPortier(t, nil, "sync", "--config", s.config)
			assert.Equal(t, 2, code)
			assert.Contains(t, errOut, want)
			assert.NotContains(t, errOut, "stat ")
		})
	}
}

// TestSimInputPointsAtTheCardCommand: make demo's issue and inspect typed at
// `portier run --sim-input -` say which command to run instead (the README
// sends newcomers from one to the other).
func TestSimInputPointsAtTheCardCommand(t *testing.T) {
	out, errOut, code := runPortierIn(t, nil, "issue lab 02301234\ninspect lab\nquit\n", "run", "--sim-input", "-")
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "issue is an operator's command here: run `portier card issue lab --tag-number 02301234` in a second terminal, then present the card (card lab blank)")
	assert.Contains(t, out, "run `portier card inspect lab` in a second terminal")
}

// TestRunningAgentAnswers runs the operator commands against a running
// agent: a door it does not have is the operator's mistake (exit 2) for
// every command, as for the offline check; status --json shows no id or
// seq it does not know; check --at says which times it takes.
func TestRunningAgentAnswers(t *testing.T) {
	g := newGateway(t, "2s")
	g.start()
	t.Run("unknown door", func(t *testing.T) {
		for _, args := range [][]string{
			{"unlock", "nosuch"},
			{"lockdown", "nosuch", "on"},
			{"office-mode", "nosuch", "on"},
			{"enroll", "nosuch", "--tag-number", "02301299", "--timeout", "5s"},
			{"card", "inspect", "nosuch"},
			{"check", "--door", "nosuch", "--tag", "02301234"},
		} {
			_, errOut, code := runPortier(t, g.env, append(args, "--config", g.cfg)...)
			assert.Equal(t, 2, code, "%v: %s", args, errOut)
			assert.Contains(t, errOut, `no door "nosuch" (doors: front)`, args)
		}
	})
	t.Run("check at a word", func(t *testing.T) {
		_, errOut, code := runPortier(t, g.env, "check", "--config", g.cfg, "--door", "front", "--tag", "02301234", "--at", "tomorrow")
		assert.Equal(t, 2, code, errOut)
		assert.Contains(t, errOut, `portier: --at: "tomorrow" is not a time: want RFC 3339 (2026-11-23T10:00:00+01:00), or 2026-11-23T10:00 or 2026-11-23 in the site's time zone`)
	})
	t.Run("status --json", func(t *testing.T) {
		out, errOut, code := runPortier(t, g.env, "status", "--json", "--config", g.cfg)
		require.Equal(t, 0, code, errOut)
		var st struct {
			Doors []struct {
				LastEvent map[string]any `json:"last_event"`
			} `json:"doors"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &st))
		require.Len(t, st.Doors, 1)
		last := st.Doors[0].LastEvent
		require.NotNil(t, last, out)
		assert.NotEmpty(t, last["type"])
		assert.NotContains(t, last, "id", "the outbox assigns the id; the door does not know it")
		assert.NotContains(t, last, "seq")
	})
}

// TestSyncUnreachable: a Salto KS address nothing answers at says what to
// check, and a first sync that fails does not claim a previous snapshot.
func TestSyncUnreachable(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 1, Groups: 1, Locks: 1}, saltokstest.Options{})
	s := writeSaltoConfig(t, fake, 0o600, []string{saltokstest.LockID(0)}, "")
	fake.Close()
	_, errOut, code := runPortier(t, nil, "sync", "--config", s.config)
	assert.Equal(t, 3, code, errOut)
	assert.Contains(t, errOut, "nothing accepts connections at "+strings.TrimPrefix(fake.URL(), "http://")+": check the host and port in salto.identity_url")
	assert.Contains(t, errOut, "the cache holds no site yet: doors deny every credential until a sync succeeds")
	assert.NotContains(t, errOut, "previous snapshot")
}
