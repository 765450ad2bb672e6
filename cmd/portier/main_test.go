package main_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// portierBin is the real portier binary, built once for the end-to-end tests.
var portierBin string

// raceDaemonEnv, when set, builds the portier binary the end-to-end tests
// run with the race detector (about three times slower).
const raceDaemonEnv = "PORTIER_E2E_RACE"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portier-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	portierBin = filepath.Join(dir, "portier")
	args := []string{"build", "-o", portierBin}
	if os.Getenv(raceDaemonEnv) != "" {
		// The tests' own -race does not reach the daemon they start, where
		// the concurrency is (make test-daemon-race).
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build portier:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runPortier runs the binary with a clean environment (HOME in a temp dir
// unless env sets it) plus env, and returns its output and exit status.
func runPortier(t testing.TB, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runPortierIn(t, env, "", args...)
}

// runPortierIn is runPortier with standard input.
func runPortierIn(t testing.TB, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(portierBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run portier: %v", err)
	}
	return out.String(), errb.String(), code
}
