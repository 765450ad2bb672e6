package main_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

// Issue 15: `portier run --sim-input -` takes the demo's commands, status
// and quit included, and the end of typed input (Ctrl-D) stops the agent
// cleanly; a --sim-input FILE script that ends leaves it running.

func TestRunSimInputTyped(t *testing.T) {
	t.Run("status and quit", func(t *testing.T) {
		g := newGateway(t, "10m")
		g.start()
		g.sim("tap front 04:A1:B2:C3:D4:E5:F6") // Ada: the relay opens for 10m
		g.sim("help")
		g.sim("status")
		g.sim("quit")
		assert.Equal(t, 0, g.exit(), g.stderr.String())
		out := g.stdout.String()
		assert.NotContains(t, out, "unknown command")
		assert.Contains(t, out, "quit                           stop the agent")
		assert.Contains(t, out, "on e2e, up since")
		assert.Contains(t, out, "door front")
		assert.Contains(t, g.stderr.String(), "stopping: quit in the sim input")
		assert.Contains(t, g.stderr.String(), "every output is in its safe state")
		assert.False(t, g.latch()["front"]["relay"], "quit put the relay in its safe state")
	})
	t.Run("end of input", func(t *testing.T) {
		g := newGateway(t, "10m")
		g.start()
		g.sim("tap front 04:A1:B2:C3:D4:E5:F6")
		require.NoError(t, g.stdin.Close()) // Ctrl-D
		assert.Equal(t, 0, g.exit(), g.stderr.String())
		assert.Contains(t, g.stderr.String(), "stopping: the sim input ended")
		assert.False(t, g.latch()["front"]["relay"])
		// What was typed before the end was decided and recorded.
		out, errOut, code := runPortier(t, g.env, "events", "--config", g.cfg, "--json", "--limit", "1000")
		require.Equal(t, 0, code, errOut)
		assert.Contains(t, out, `"type":"`+string(agent.EventAccessGranted)+`"`)
	})
	t.Run("a wrong command is reported and typing goes on", func(t *testing.T) {
		g := newGateway(t, "300ms")
		g.start()
		g.sim("status now")
		g.sim("dance front")
		g.sim("quit")
		assert.Equal(t, 0, g.exit(), g.stderr.String())
		assert.Contains(t, g.stdout.String(), "error: sim: bad command: usage: status")
		assert.Contains(t, g.stdout.String(), `unknown command "dance"`)
	})
}

func TestRunSimInputScript(t *testing.T) {
	t.Run("the agent keeps running after the script", func(t *testing.T) {
		g := newGateway(t, "300ms")
		g.simInput = filepath.Join(g.dir, "scene.txt")
		require.NoError(t, os.WriteFile(g.simInput, []byte("tap front 04:A1:B2:C3:D4:E5:F6\n"), 0o600))
		g.start()
		g.follow()
		g.waitEvent(agent.EventAccessGranted)
		g.waitEvent(agent.EventRelayOff)
		out, errOut, code := runPortier(t, g.env, "status", "--config", g.cfg)
		require.Equal(t, 0, code, "the agent stopped at the script's end: %s", errOut)
		assert.Contains(t, out, "door front")
		assert.Equal(t, 0, g.signal(syscall.SIGTERM))
	})
	t.Run("quit in a script stops the agent", func(t *testing.T) {
		g := newGateway(t, "300ms")
		g.simInput = filepath.Join(g.dir, "scene.txt")
		require.NoError(t, os.WriteFile(g.simInput, []byte("tap front 04:A1:B2:C3:D4:E5:F6\nstatus\nquit\n"), 0o600))
		g.start()
		assert.Equal(t, 0, g.exit(), g.stderr.String())
		assert.Contains(t, g.stdout.String(), "door front")
		assert.Contains(t, g.stderr.String(), "stopping: quit in the sim input")
	})
}
