package main_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The dependency rule of DESIGN.md, checked on what `go list` reports:
//
//   - agent imports only the standard library (its fakes, agent/agenttest,
//     may add the test libraries);
//   - device packages in hal (every package under hal/ but hal itself, which
//     calls periph's host registries, and hal/sim, the simulated board)
//     import only periph.io/x/conn, the standard library, each other (e.g.
//     hal/wallclock) and go.bug.st/serial (OSDP on RS-485);
//   - sqlite, cloud/mqtt, cloud/saltoks and hal meet only in agent: none
//     imports another;
//   - nothing outside cmd imports cmd;
//   - no production package imports a test fake, and the portier binary
//     links none (hal/sim is no fake: `driver: sim` runs on it, and on the
//     chip and card models and the simulated radio time it is built on).

const module = "github.com/portier-io/portier"

// goPackage is what the rule needs of `go list -json`. Each package's own
// imports are checked (the module's packages are all listed), so what a
// permitted library needs in turn (go.bug.st/serial needs x/sys) is its
// business.
type goPackage struct {
	ImportPath string
	Imports    []string
}

// isStd reports whether path is in the standard library (its first element
// has no dot; "C" is cgo's).
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

// runtimeSims are the simulated board and the models it runs on at run time
// (`driver: sim`, `make demo`): the MFRC522 chip, DESFire cards, OSDP
// readers on their RS-485 line and the simulated time. The portier binary
// links them through hal/sim.
var runtimeSims = []string{module + "/hal/sim", module + "/hal/mfrc522/mfrc522sim", module + "/hal/desfire/desfiresim", module + "/hal/osdp/osdpsim", module + "/hal/simtime"}

// isFake reports whether path is made for tests only: a package named
// …test (agenttest, mqtttest, periph's gpiotest, net/http/httptest, …) or
// inside one (sqlitetest/powerfs), a hardware simulator other than the
// runtime ones (runtimeSims), testing itself, testify, or the embedded test
// broker.
func isFake(path string) bool {
	last := path[strings.LastIndex(path, "/")+1:]
	if under(path, module) {
		for _, elem := range strings.Split(strings.TrimPrefix(path, module+"/"), "/") {
			if strings.HasSuffix(elem, "test") {
				return true
			}
		}
	}
	switch {
	case path == "testing" || under(path, "testing") || under(path, "github.com/stretchr/testify") || under(path, "github.com/mochi-mqtt"):
		return true
	case slices.Contains(runtimeSims, path):
		return false
	case isStd(path) && (under(path, "internal") || strings.Contains(path, "/internal/")):
		return false // the runtime's own (internal/synctest, internal/testlog)
	case strings.HasSuffix(last, "test") || strings.HasSuffix(last, "sim"):
		return true
	}
	return false
}

// family is the adapter family of a module package ("" outside them).
func family(path string) string {
	for _, f := range []string{"sqlite", "cloud/mqtt", "cloud/saltoks", "hal"} {
		if under(path, module+"/"+f) {
			return f
		}
	}
	return ""
}

// isDevice reports whether path is a device package of hal.
func isDevice(path string) bool {
	return under(path, module+"/hal") && path != module+"/hal" && !under(path, module+"/hal/sim")
}

// ruleViolations checks the imports of the module's packages (non-test
// code) and the packages the portier binary links.
func ruleViolations(pkgs []goPackage, binary []string) []string {
	var out []string
	bad := func(p, dep, rule string) { out = append(out, fmt.Sprintf("%s → %s: %s", p, dep, rule)) }
	for _, p := range pkgs {
		path := p.ImportPath
		fake := isFake(path)
		if under(path, module+"/agent") && !fake {
			for _, d := range p.Imports {
				if !isStd(d) && !under(d, module+"/agent") {
					bad(path, d, "agent imports only the standard library")
				}
			}
		}
		// A test-only package (hal/osdp/osdptest) may use test libraries: the binary never links one (below).
		if isDevice(path) && !fake {
			for _, d := range p.Imports {
				ok := isStd(d) || under(d, "periph.io/x/conn/v3") || under(d, "go.bug.st/serial") || isDevice(d)
				if !ok {
					bad(path, d, "a hal device package imports only periph.io/x/conn and the standard library")
				}
			}
		}
		for _, d := range p.Imports {
			if f, g := family(path), family(d); f != "" && g != "" && f != g {
				bad(path, d, "sqlite, cloud/* and hal meet only in agent")
			}
			if under(d, module+"/cmd") && !under(path, module+"/cmd") {
				bad(path, d, "nothing outside cmd imports cmd")
			}
			// cmd/portier-demo and cmd/saltoks-fake are harnesses built on fakes.
			production := !fake && (!under(path, module+"/cmd") || under(path, module+"/cmd/portier"))
			if production && isFake(d) {
				bad(path, d, "production code imports no test fake")
			}
		}
	}
	for _, d := range binary {
		if isFake(d) {
			bad(module+"/cmd/portier (the binary)", d, "the portier binary links no test fake")
		}
	}
	return out
}

// goList runs go list in the module root and decodes its JSON stream.
func goList(t *testing.T, args ...string) []goPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-tags", "sqlite_omit_load_extension", "-json"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("go list: %v\n%s", err, ee.Stderr)
	}
	require.NoError(t, err)
	var pkgs []goPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestDependencyRule(t *testing.T) {
	pkgs := goList(t, "./...")
	require.NotEmpty(t, pkgs)
	var binary []string
	for _, p := range goList(t, "-deps", "./cmd/portier") {
		binary = append(binary, p.ImportPath)
	}
	require.Contains(t, binary, module+"/agent", "go list -deps lists what the binary links")
	assert.Contains(t, binary, module+"/hal/sim", "the binary runs `driver: sim` on hal/sim")
	for _, v := range ruleViolations(pkgs, binary) {
		t.Error(v)
	}
}

// TestDependencyRuleCatches: each rule fails on the import it forbids.
func TestDependencyRuleCatches(t *testing.T) {
	m := func(p string) string { return module + "/" + p }
	tests := []struct {
		name   string
		pkg    goPackage
		binary []string
		want   string
	}{
		{"agent on a library", goPackage{ImportPath: m("agent"), Imports: []string{"context", "golang.org/x/sync/errgroup"}},
			nil, "agent imports only the standard library"},
		{"agent on an adapter", goPackage{ImportPath: m("agent"), Imports: []string{m("sqlite")}},
			nil, "agent imports only the standard library"},
		{"a device on periph host", goPackage{ImportPath: m("hal/wiegand"), Imports: []string{"periph.io/x/conn/v3/gpio", "periph.io/x/host/v3"}},
			nil, "a hal device package imports only periph.io/x/conn"},
		{"a device on agent", goPackage{ImportPath: m("hal/osdp"), Imports: []string{"go.bug.st/serial", m("agent")}},
			nil, "a hal device package imports only periph.io/x/conn"},
		{"a device on the board", goPackage{ImportPath: m("hal/keypad"), Imports: []string{m("hal")}},
			nil, "a hal device package imports only periph.io/x/conn"},
		{"cloud on sqlite", goPackage{ImportPath: m("cloud/mqtt"), Imports: []string{m("sqlite")}},
			nil, "sqlite, cloud/* and hal meet only in agent"},
		{"a library on cmd", goPackage{ImportPath: m("cloud/saltoks"), Imports: []string{m("cmd/portier/config")}},
			nil, "nothing outside cmd imports cmd"},
		{"production code on a fake", goPackage{ImportPath: m("sqlite"), Imports: []string{m("agent/agenttest")}},
			nil, "production code imports no test fake"},
		{"the binary's config on testify", goPackage{ImportPath: m("cmd/portier/config"), Imports: []string{"github.com/stretchr/testify/require"}},
			nil, "production code imports no test fake"},
		{"the binary linking a simulator", goPackage{ImportPath: m("cmd/portier")},
			[]string{m("hal/sim"), m("hal/wiegand/wiegandsim")}, "the portier binary links no test fake"},
		{"the binary linking httptest", goPackage{ImportPath: m("cmd/portier")},
			[]string{"net/http/httptest"}, "the portier binary links no test fake"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ruleViolations([]goPackage{tt.pkg}, tt.binary)
			require.Len(t, got, 1, "%q", got)
			assert.Contains(t, got[0], tt.want)
		})
	}
	// What the rule allows.
	ok := []goPackage{
		{ImportPath: m("agent/agenttest"), Imports: []string{m("agent"), "testing", "github.com/stretchr/testify/require"}},
		{ImportPath: m("agent/sitefile"), Imports: []string{m("agent"), "encoding/json"}},
		{ImportPath: m("hal/osdp"), Imports: []string{"go.bug.st/serial", "periph.io/x/conn/v3/gpio", m("hal/wallclock"), "time"}},
		{ImportPath: m("hal/sim"), Imports: []string{m("hal"), m("agent")}},
		{ImportPath: m("cloud/saltoks/sitesync"), Imports: []string{m("cloud/saltoks"), m("agent")}},
		{ImportPath: m("cmd/portier-demo"), Imports: []string{m("cloud/saltoks/saltokstest"), m("cloud/mqtt/mqtttest")}},
	}
	assert.Empty(t, ruleViolations(ok, []string{m("hal/sim"), m("agent"), "net/http"}))
	for _, p := range []string{"periph.io/x/conn/v3/gpio/gpiotest", "testing/fstest", m("hal/keypad/keypadsim"), m("sqlite/sqlitetest")} {
		assert.True(t, isFake(p), p)
	}
	for _, p := range []string{"internal/synctest", "internal/testlog", "net/http", m("hal/sim"), m("hal/mfrc522/mfrc522sim"), m("hal/simtime"), m("agent")} {
		assert.False(t, isFake(p), p)
	}
}
