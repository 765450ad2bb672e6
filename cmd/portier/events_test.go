package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	} {
		_, err := db.Append(ctx, e)
		require.NoError(t, err)
	}
	out, _, code := runPortier(t, append(env, "TZ=UTC"), "events")
	require.Equal(t, 0, code)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	assert.Equal(t, "2026-11-24 09:00:00 UTC  #1  front  access_granted  Ada Lovelace  tag:…234", lines[0])
	assert.Equal(t, "2026-11-24 09:01:00 UTC  #2  front  access_denied  user_blocked  pin:******  (the user is blocked in Salto KS)", lines[1])

	out, _, code = runPortier(t, env, "events", "--json", "--limit", "1")
	require.Equal(t, 0, code)
	var e agent.Event
	require.NoError(t, json.Unmarshal([]byte(out), &e))
	assert.EqualValues(t, 2, e.Seq)

	t.Run("follow", func(t *testing.T) {
		// A bound on a broken follower: the test fails instead of hanging.
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, portierBin, "events", "--follow", "--json", "--limit", "1", "--count", "2", "--poll", "10ms")
		cmd.Stderr = os.Stderr
		cmd.Env = append(env, "HOME="+t.TempDir())
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		// The follower first prints the latest event (--limit 1); once it has,
		// it is watching, so what is appended next must show up.
		sc := bufio.NewScanner(stdout)
		require.True(t, sc.Scan())
		var last agent.Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &last))
		require.EqualValues(t, 2, last.Seq)
		for i := range 2 {
			_, err := db.Append(ctx, agent.Event{Type: agent.EventAccessGranted, Door: "studio"})
			require.NoError(t, err)
			require.True(t, sc.Scan(), "follower printed event %d", i)
			var got agent.Event
			require.NoError(t, json.Unmarshal(sc.Bytes(), &got))
			assert.EqualValues(t, 3+i, got.Seq)
			assert.Equal(t, "studio", got.Door)
		}
		require.NoError(t, cmd.Wait(), "--count 2 ends the follower")
	})
}
