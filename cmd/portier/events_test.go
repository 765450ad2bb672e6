package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/sqlite"
)

func TestEvents(t *testing.T) {
	state := t.TempDir()
	env := []string{"STATE_DIRECTORY=" + state}
	_, errOut, code := runPortier(t, env, "events")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "nothing has been recorded")

	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(state, "portier.db"), sqlite.Options{})
	require.NoError(t, err)
	defer db.Close()
	_, errOut, code = runPortier(t, env, "events")
	assert.Equal(t, 0, code)
	assert.Contains(t, errOut, "no events recorded yet")

	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	for _, e := range []agent.Event{
		{Time: at, Type: agent.EventAccessGranted, Door: "front", Reason: agent.ReasonGranted, User: &agent.UserRef{ID: "u1", Name: "Ada Lovelace"}, Credential: "tag:…234"},
		{Time: at.Add(time.Minute), Type: agent.EventAccessDenied, Door: "front", Reason: agent.ReasonUserBlocked, Credential: "pin:******", Detail: "the user is blocked in Salto KS"},
		{Time: at.Add(2 * time.Minute), Type: agent.EventCommandFailed, Door: "front", Reason: "action_failed", Detail: "unlock: the relay did not switch", CommandID: "c-1", Actor: "dashboard:alice"},
	} {
		_, err := db.Append(ctx, e)
		require.NoError(t, err)
	}
	out, _, code := runPortier(t, append(env, "TZ=UTC"), "events")
	require.Equal(t, 0, code)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3)
	assert.Equal(t, "2026-11-24 09:00:00 UTC  #1  front  access_granted  Ada Lovelace  tag:…234", lines[0])
	assert.Equal(t, "2026-11-24 09:01:00 UTC  #2  front  access_denied  user_blocked  pin:******  (the user is blocked in Salto KS)", lines[1])
	assert.Equal(t, "2026-11-24 09:02:00 UTC  #3  front  command_failed  action_failed  by dashboard:alice  (unlock: the relay did not switch)", lines[2], "who sent the command")

	out, _, code = runPortier(t, env, "events", "--json", "--limit", "1")
	require.Equal(t, 0, code)
	var e agent.Event
	require.NoError(t, json.Unmarshal([]byte(out), &e))
	assert.EqualValues(t, 3, e.Seq)
	assert.Equal(t, "dashboard:alice", e.Actor)

	_, errOut, code = runPortier(t, env, "events", "--follow")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "portier is not running", "--follow needs the running agent")
}

// TestEventsFollow follows a running agent over its control socket: the
// latest event first, then new ones as they happen, until --count, or until
// the agent stops.
func TestEventsFollow(t *testing.T) {
	g := newGateway(t, "300ms")
	g.start()
	g.follow()
	g.waitEvent(agent.EventControllerStarted)

	follower := func(extra ...string) (*exec.Cmd, *bufio.Scanner, *strings.Builder) {
		// A bound on a broken follower: the test fails instead of hanging.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t.Cleanup(cancel)
		cmd := exec.CommandContext(ctx, portierBin, append([]string{"events", "--config", g.cfg, "--follow", "--json", "--limit", "1", "--poll", "10ms"}, extra...)...)
		cmd.Env = g.env
		errOut := &strings.Builder{}
		cmd.Stderr = errOut
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		return cmd, bufio.NewScanner(stdout), errOut
	}
	next := func(sc *bufio.Scanner) agent.Event {
		t.Helper()
		require.True(t, sc.Scan(), "the follower printed an event")
		var e agent.Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		return e
	}

	counted, csc, _ := follower("--count", "2")
	forever, fsc, ferr := follower()
	latest := next(csc)
	assert.Equal(t, latest, next(fsc), "both start from the latest recorded event")

	g.sim("keys front 482915#") // a PIN: a card's first tap would also record card_learned
	for _, sc := range []*bufio.Scanner{csc, fsc} {
		e := next(sc)
		assert.Equal(t, agent.EventAccessGranted, e.Type)
		assert.Equal(t, latest.Seq+1, e.Seq, "nothing skipped")
		assert.Equal(t, agent.EventRelayOn, next(sc).Type)
	}
	require.NoError(t, counted.Wait(), "--count 2 ends the follower")

	// The agent stops: the follower ends too, saying why, instead of
	// watching a database nobody writes any more.
	assert.Equal(t, 0, g.signal(syscall.SIGTERM))
	for fsc.Scan() { // the events of the shutdown itself
	}
	err := forever.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 3, ee.ExitCode())
	assert.Contains(t, ferr.String(), "portier stopped")
}
