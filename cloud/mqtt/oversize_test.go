package mqtt_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
)

// oversizeBytes is the payload of the hostile command: what made a gateway
// grow by hundreds of MB before the link refused packets early.
const oversizeBytes = 100 << 20

// TestOversizedPacketIsRefusedUnread: a 100 MB PUBLISH on a command topic
// (no signing key needed to send one) is refused from its header: the
// gateway process's peak memory grows by at most 10 MB, the connection is
// dropped with an alarm, the link connects again and answers commands.
func TestOversizedPacketIsRefusedUnread(t *testing.T) {
	r := oversize(t)
	t.Logf("peak RSS grew by %.1f MB; alarm: %s", r.growthMB, r.alarm)
	assert.LessOrEqual(t, r.growthMB, 10.0, "the packet was not held in memory")
	// 100 MiB and the topic; no packet id: commands are subscribed at QoS 0.
	assert.Contains(t, r.alarm, "of 104857630 bytes", "100 MiB and the topic")
	assert.Contains(t, r.alarm, "portier/site1/gw1/cmd/unlock")
}

// BenchmarkOversizedPacket reports the gateway's peak memory growth from a
// 100 MB command.
//
//	oversize_rss_growth_mb   VmHWM after recovery minus VmHWM before the packet
func BenchmarkOversizedPacket(b *testing.B) {
	for range b.N {
		b.ReportMetric(oversize(b).growthMB, "oversize_rss_growth_mb")
	}
}

type oversizeResult struct {
	growthMB float64
	alarm    string
}

// oversize runs a link in a gateway process of its own (this test binary
// in helper mode) against the embedded broker, sends it a 100 MB command
// and then a normal one, and returns the growth of the process's peak RSS.
func oversize(t testing.TB) oversizeResult {
	broker := startMochi(t, nil)
	tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1"}
	d := newDashboard(t, broker.URL(), nil, tp.Response())
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=oversize", "PORTIER_BROKER="+broker.URL())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		for sc := bufio.NewScanner(stdout); sc.Scan(); {
			lines <- sc.Text()
		}
	}()
	report := func(want string) map[string]string {
		var text string
		select {
		case l, ok := <-lines:
			require.True(t, ok, "the gateway process ended before %q", want)
			text = l
		case <-time.After(waitFor):
			t.Fatalf("the gateway process did not report %q within %s", want, waitFor)
		}
		line, alarm, _ := strings.Cut(text, " alarm=") // the last field, quoted
		f := strings.Fields(line)
		require.Equal(t, want, f[0], text)
		kv := map[string]string{}
		for _, p := range f[1:] {
			k, v, _ := strings.Cut(p, "=")
			kv[k] = v
		}
		kv["alarm"] = alarm
		return kv
	}
	before := report("connected")

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).SetClientID("hostile").SetAutoReconnect(false))
	tok := pub.Connect()
	require.True(t, tok.WaitTimeout(waitFor))
	require.NoError(t, tok.Error())
	defer pub.Disconnect(0)
	huge := make([]byte, oversizeBytes)
	tok = pub.Publish(tp.Command(mqtt.CmdUnlock), 1, false, huge)
	require.True(t, tok.WaitTimeout(waitFor), "the broker took the 100 MB command")
	require.NoError(t, tok.Error())
	huge = nil

	after := report("recovered")
	// The link works again: a command gets its answer.
	d.publish(t, tp.Command(mqtt.CmdSync), []byte(`{"id":"after-1"`), false)
	d.waitUntil(t, "the answer after the reconnect", func(m []message) bool { return len(m) > 0 }, nil)

	hwm0, err := strconv.ParseFloat(before["hwm_kb"], 64)
	require.NoError(t, err)
	hwm1, err := strconv.ParseFloat(after["hwm_kb"], 64)
	require.NoError(t, err)
	alarm, err := strconv.Unquote(after["alarm"])
	require.NoError(t, err)
	return oversizeResult{growthMB: (hwm1 - hwm0) / 1024, alarm: alarm}
}

// oversizeHelper is the gateway process of oversize: a link over in-memory
// stores. It reports its peak RSS once connected, and again once it has
// refused a packet and connected again; it ends when its input does.
func oversizeHelper(_, url string) error {
	out := newMemOutbox()
	link, err := mqtt.New(mqtt.Config{
		Brokers: []string{url},
		Topics:  mqtt.Topics{Site: "site1", Gateway: "gw1"},
		Outbox:  out, Meter: out, Events: out, CommandLog: &memCommands{}, Doors: newFakeDoors("front"),
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- link.Run(ctx) }()
	defer func() { cancel(); <-done }()
	tick := time.NewTicker(5 * time.Millisecond) // the link works on the network: polled
	defer tick.Stop()
	until := func(cond func() bool) {
		for !cond() {
			<-tick.C
		}
	}
	until(func() bool { return link.Status().Connected })
	st, err := procStatusKB()
	if err != nil {
		return err
	}
	fmt.Printf("connected hwm_kb=%d rss_kb=%d\n", st["VmHWM"], st["VmRSS"])
	var alarm string
	until(func() bool {
		for _, e := range out.events() {
			if e.Type == agent.EventPacketRefused {
				alarm = e.Detail
			}
		}
		return alarm != "" && link.Reconnects() >= 1 && link.Status().Connected
	})
	if st, err = procStatusKB(); err != nil {
		return err
	}
	fmt.Printf("recovered hwm_kb=%d rss_kb=%d alarm=%q\n", st["VmHWM"], st["VmRSS"], alarm)
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

// procStatusKB reads the kB figures of /proc/self/status.
func procStatusKB() (map[string]int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			out[k], _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	return out, nil
}
