//go:build fleet

package fleet_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// cluster is the RabbitMQ cluster cluster.sh runs on loopback.
type cluster struct {
	dir   string
	base  int
	urls  []string // MQTT, one per node
	owned bool     // started here (FLEET_CLUSTER unset), so stopped here
}

// needRabbitMQ finds RabbitMQ. In CI (CI set) a missing RabbitMQ fails the
// test; elsewhere it skips with the command that installs it.
func needRabbitMQ(t testing.TB) {
	t.Helper()
	sbin := os.Getenv("RABBITMQ_SBIN")
	if sbin == "" {
		sbin = "/usr/lib/rabbitmq/bin"
	}
	if _, err := os.Stat(filepath.Join(sbin, "rabbitmq-server")); err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("RabbitMQ is not installed; CI must install it (apt-get install rabbitmq-server)")
	}
	t.Skip("RabbitMQ is not installed (apt-get install rabbitmq-server); `make fleet` installs it")
}

// shared is the package's one cluster: the tests share it (a cluster takes
// a minute to form) and TestMain stops it.
var shared struct {
	once sync.Once
	c    *cluster
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if c := shared.c; c != nil && c.owned {
		if _, err := c.script("down"); err != nil {
			fmt.Fprintln(os.Stderr, "fleet: cluster.sh down:", err)
		}
		if code == 0 {
			os.RemoveAll(c.dir)
		} else {
			fmt.Fprintln(os.Stderr, "fleet: RabbitMQ data and logs kept in", c.dir)
		}
	}
	os.Exit(code)
}

// startCluster returns the package's cluster, started on first use, or
// the one FLEET_CLUSTER names (a directory where `cluster.sh up` ran), which
// is then left running.
func startCluster(t testing.TB) *cluster {
	t.Helper()
	needRabbitMQ(t)
	shared.once.Do(func() { shared.c, shared.err = newCluster() })
	require.NoError(t, shared.err)
	return shared.c
}

func newCluster() (*cluster, error) {
	c := &cluster{base: 27400}
	if v := os.Getenv("FLEET_PORT_BASE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("FLEET_PORT_BASE: %w", err)
		}
		c.base = n
	}
	verb := "urls"
	switch {
	case os.Getenv("FLEET_CLUSTER") != "": // a running cluster: use it, leave it
		c.dir = os.Getenv("FLEET_CLUSTER")
	case os.Getenv("FLEET_CLUSTER_DIR") != "": // fleet.sh's directory: fleet.sh stops it
		c.dir, verb = os.Getenv("FLEET_CLUSTER_DIR"), "up"
	default:
		dir, err := os.MkdirTemp("", "portier-fleet-")
		if err != nil {
			return nil, err
		}
		c.dir, c.owned, verb = dir, true, "up"
	}
	out, err := c.script(verb)
	if err != nil {
		return c, err
	}
	c.urls = strings.Fields(out)
	if len(c.urls) != 3 {
		return c, fmt.Errorf("cluster.sh %s: want 3 nodes, got %q", verb, out)
	}
	return c, nil
}

// script runs cluster.sh with args.
func (c *cluster) script(args ...string) (string, error) {
	cmd := exec.Command("./cluster.sh", append([]string{args[0], c.dir}, args[1:]...)...)
	cmd.Env = append(os.Environ(), "FLEET_PORT_BASE="+strconv.Itoa(c.base))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("cluster.sh %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// run runs cluster.sh with args and returns its standard output.
func (c *cluster) run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.script(args...)
	require.NoError(t, err)
	return out
}

func nodeArgs(cmd string, nodes []int) []string {
	args := []string{cmd}
	for _, n := range nodes {
		args = append(args, strconv.Itoa(n))
	}
	return args
}

// kill SIGKILLs nodes (1-based).
func (c *cluster) kill(t testing.TB, nodes ...int) { t.Helper(); c.run(t, nodeArgs("kill", nodes)...) }

// start starts nodes and returns once they serve.
func (c *cluster) start(t testing.TB, nodes ...int) {
	t.Helper()
	c.run(t, nodeArgs("start", nodes)...)
}

// ctl runs rabbitmqctl against node n.
func (c *cluster) ctl(t testing.TB, n int, args ...string) string {
	t.Helper()
	return c.run(t, append([]string{"ctl", strconv.Itoa(n)}, args...)...)
}

// node is the 1-based node number of an MQTT URL, 0 if none.
func (c *cluster) node(url string) int {
	for i, u := range c.urls {
		if u == url {
			return i + 1
		}
	}
	return 0
}

// amqpURL is node n's AMQP 0-9-1 URL.
func (c *cluster) amqpURL(n int) string {
	return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", c.base+10*n)
}

// The per-gateway permissions of docs/fleet.md (user = gateway id): queues
// only the MQTT plugin's own for the user's client id pattern, topics only
// under the gateway's subtree ({username} is expanded by RabbitMQ; MQTT's
// '/' is '.' in amq.topic's routing keys).
const (
	rabbitConfigure  = `^mqtt-subscription-portier-[^.]+qos[01]$`
	rabbitWrite      = `^(amq\.topic|mqtt-subscription-portier-[^.]+qos[01])$`
	rabbitRead       = `^(amq\.topic|mqtt-subscription-portier-[^.]+qos[01])$`
	rabbitTopicWrite = `^(portier\.[^.]+\.{username}\.[^#*]+|homeassistant\.[^.]+\.{username}\.[^.]+\.config)$`
	rabbitTopicRead  = `^(portier\.[^.]+\.{username}\.(cmd\.[^.]+|ha\.[^.]+\.lock\.set)|homeassistant\.status)$`
)
