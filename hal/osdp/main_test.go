package osdp_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/osdp/osdpsim"
	"github.com/portier-io/portier/hal/wallclock"
)

// simReadersEnv makes the test binary a reader simulator instead: it
// serves that many secure readers (addresses 1…n, key1) on the pseudo-
// terminal master passed as file descriptor 3, until the line closes.
// BenchmarkIdleCPU uses it so that the process it measures holds only the
// Control Panel.
const simReadersEnv = "OSDPSIM_SERVE_READERS"

func TestMain(m *testing.M) {
	if v := os.Getenv(simReadersEnv); v != "" {
		os.Exit(serveReaders(v))
	}
	os.Exit(m.Run())
}

func serveReaders(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > osdp.MaxAddr {
		fmt.Fprintln(os.Stderr, "bad", simReadersEnv, v)
		return 2
	}
	var pds []*osdpsim.PD
	for i := range n {
		pds = append(pds, osdpsim.NewPD(osdpsim.Config{Addr: byte(i + 1), Key: key1, Identity: hid}))
	}
	master := os.NewFile(3, "pty-master")
	// Serve ends with EIO once every slave descriptor is closed: the
	// benchmark is over, which is not a failure.
	_ = osdpsim.Serve(context.Background(), master, 115200, wallclock.Clock{}, pds...)
	return 0
}
