package mqtt_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/cloud/mqtt/mqtttest"
)

// waitFor bounds every wait on a real event.
const waitFor = 60 * time.Second

// testBroker is a real broker on loopback that a test can stop and start
// again on the same address.
type testBroker interface {
	URL() string
	Stop(t testing.TB)
	Start(t testing.TB)
}

// mochiBroker is the embedded broker (mqtttest), restartable on the same
// address.
type mochiBroker struct {
	opts mqtttest.Options
	url  string
	b    *mqtttest.Broker
}

func startMochi(t testing.TB, tlsCfg *tls.Config) *mochiBroker {
	t.Helper()
	return startMochiAuth(t, tlsCfg, "", "")
}

// startMochiAuth starts the embedded broker accepting only user/password
// (when user is set).
func startMochiAuth(t testing.TB, tlsCfg *tls.Config, user, password string) *mochiBroker {
	t.Helper()
	b := &mochiBroker{opts: mqtttest.Options{TLS: tlsCfg, Username: user, Password: password}}
	b.Start(t)
	t.Cleanup(func() { b.Stop(t) })
	return b
}

func (b *mochiBroker) URL() string { return b.url }

func (b *mochiBroker) Start(t testing.TB) {
	t.Helper()
	br, err := mqtttest.Start(b.opts)
	require.NoError(t, err)
	b.opts.Addr, b.url, b.b = br.Addr(), br.URL(), br
}

func (b *mochiBroker) Stop(t testing.TB) {
	if b.b != nil {
		require.NoError(t, b.b.Close())
		b.b = nil
	}
}

// mosquittoBroker is Debian's mosquitto as a child process.
type mosquittoBroker struct {
	port   int
	dir    string
	extra  string
	scheme string
	cmd    *exec.Cmd
	done   chan struct{}
}

// needMosquitto finds the mosquitto binary. In CI (CI=true) a missing
// binary fails the test; elsewhere it skips.
func needMosquitto(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"mosquitto", "/usr/sbin/mosquitto"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("mosquitto is not installed; CI must install it (apt-get install mosquitto)")
	}
	t.Skip("mosquitto is not installed (apt-get install mosquitto); CI runs this test")
	return ""
}

func startMosquitto(t testing.TB, extra string) *mosquittoBroker {
	t.Helper()
	needMosquitto(t)
	b := &mosquittoBroker{dir: t.TempDir(), extra: extra, scheme: "tcp"}
	if strings.Contains(extra, "certfile") {
		b.scheme = "ssl"
	}
	b.Start(t)
	t.Cleanup(func() { b.Stop(t) })
	return b
}

func (b *mosquittoBroker) URL() string { return fmt.Sprintf("%s://127.0.0.1:%d", b.scheme, b.port) }

func (b *mosquittoBroker) Start(t testing.TB) {
	t.Helper()
	bin := needMosquitto(t)
	for attempt := 0; ; attempt++ {
		if b.port == 0 || attempt > 0 {
			b.port = freePort(t)
		}
		conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 100\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n%s\n", b.port, b.extra)
		if os.Geteuid() == 0 {
			conf += "user root\n"
		}
		path := filepath.Join(b.dir, "mosquitto.conf")
		require.NoError(t, os.WriteFile(path, []byte(conf), 0o600))
		cmd := exec.Command(bin, "-c", path)
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		ready := make(chan bool, 2)
		var logMu sync.Mutex
		var log strings.Builder
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				logMu.Lock()
				log.WriteString(sc.Text() + "\n")
				logMu.Unlock()
				if strings.Contains(sc.Text(), " running") {
					ready <- true
				}
			}
			ready <- false
		}()
		b.cmd, b.done = cmd, make(chan struct{})
		go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(cmd, b.done)
		select {
		case ok := <-ready:
			if ok {
				return
			}
		case <-time.After(waitFor):
		}
		b.Stop(t)
		if attempt >= 3 {
			logMu.Lock()
			defer logMu.Unlock()
			t.Fatalf("mosquitto did not start: %s", log.String())
		}
		// The free port was taken in between: try another.
	}
}

func (b *mosquittoBroker) Stop(testing.TB) {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	<-b.done
	b.cmd = nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// brokers runs f against the embedded broker and against mosquitto.
func brokers(t *testing.T, f func(t *testing.T, newBroker func(t *testing.T) testBroker)) {
	t.Run("mochi", func(t *testing.T) { f(t, func(t *testing.T) testBroker { return startMochi(t, nil) }) })
	t.Run("mosquitto", func(t *testing.T) { f(t, func(t *testing.T) testBroker { return startMosquitto(t, "") }) })
}

// message is one message a dashboard received.
type message struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// dashboard is a test client subscribed to some topics.
type dashboard struct {
	client paho.Client
	mu     sync.Mutex
	msgs   []message
	notify chan struct{}
}

func newDashboard(t testing.TB, url string, tlsCfg *tls.Config, filters ...string) *dashboard {
	t.Helper()
	return newDashboardAuth(t, url, tlsCfg, "", "", filters...)
}

func newDashboardAuth(t testing.TB, url string, tlsCfg *tls.Config, user, password string, filters ...string) *dashboard {
	t.Helper()
	d := &dashboard{notify: make(chan struct{}, 1)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("dash-%d", time.Now().UnixNano())).
		SetAutoReconnect(false).SetOrderMatters(true).SetTLSConfig(tlsCfg).SetUsername(user).SetPassword(password)
	d.client = paho.NewClient(o)
	tok := d.client.Connect()
	require.True(t, tok.WaitTimeout(waitFor), "dashboard connect timed out")
	require.NoError(t, tok.Error())
	for _, f := range filters {
		tok := d.client.Subscribe(f, 1, func(_ paho.Client, m paho.Message) {
			d.mu.Lock()
			d.msgs = append(d.msgs, message{m.Topic(), append([]byte(nil), m.Payload()...), m.Retained()})
			d.mu.Unlock()
			select {
			case d.notify <- struct{}{}:
			default:
			}
		})
		require.True(t, tok.WaitTimeout(waitFor), "subscribe timed out")
		require.NoError(t, tok.Error())
	}
	t.Cleanup(func() { d.client.Disconnect(0) })
	return d
}

// publish sends a message from the dashboard and waits for its PUBACK.
func (d *dashboard) publish(t testing.TB, topic string, payload []byte, retained bool) {
	t.Helper()
	tok := d.client.Publish(topic, 1, retained, payload)
	require.True(t, tok.WaitTimeout(waitFor))
	require.NoError(t, tok.Error())
}

// settle returns once the broker has finished with everything this
// dashboard published before: brokers handle one client's packets in order,
// and mochi acknowledges a publish before it delivers it to subscribers, so
// the PUBACK of a later publish is the barrier. Without it a link that
// subscribes right after a retained publish can get that message live.
func (d *dashboard) settle(t testing.TB) {
	t.Helper()
	d.publish(t, "portier-test/settle", []byte("."), false)
}

func (d *dashboard) all() []message {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]message(nil), d.msgs...)
}

// waitUntil waits until cond holds for the messages received so far; kick,
// when set, runs before each wait (e.g. to advance a fake clock). It fails
// only when no message arrived for waitFor, however long the whole wait.
func (d *dashboard) waitUntil(t testing.TB, what string, cond func([]message) bool, kick func()) []message {
	t.Helper()
	moved, seen := time.Now(), -1
	for {
		m := d.all()
		if cond(m) {
			return m
		}
		if len(m) != seen {
			moved, seen = time.Now(), len(m)
		}
		if time.Since(moved) > waitFor {
			t.Fatalf("waiting for %s: no message for %s; got %d messages: %s", what, waitFor, len(m), topicCounts(m))
		}
		if kick != nil {
			kick()
		}
		step := time.NewTimer(50 * time.Millisecond)
		select {
		case <-d.notify:
		case <-step.C: // kick runs again, and the quiet time is checked
		}
		step.Stop()
	}
}

// topicCounts summarises messages as "topic×n" for failure messages.
func topicCounts(msgs []message) string {
	n := map[string]int{}
	var order []string
	for _, m := range msgs {
		if n[m.Topic] == 0 {
			order = append(order, m.Topic)
		}
		n[m.Topic]++
	}
	parts := make([]string, len(order))
	for i, t := range order {
		parts[i] = fmt.Sprintf("%s×%d", t, n[t])
	}
	return strings.Join(parts, ", ")
}

// on filters messages by topic.
func on(msgs []message, topic string) []message {
	var out []message
	for _, m := range msgs {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// memOutbox is an in-memory outbox and event sink.
type memOutbox struct {
	mu       sync.Mutex
	seq      int64
	pending  []agent.Event
	recorded []agent.Event
	appended chan struct{}
}

func newMemOutbox() *memOutbox { return &memOutbox{appended: make(chan struct{}, 1)} }

func (o *memOutbox) Record(_ context.Context, e agent.Event) error {
	o.mu.Lock()
	o.seq++
	e.Seq = o.seq
	if e.ID == "" {
		e.ID = fmt.Sprintf("ev-%d", e.Seq)
	}
	if e.Time.IsZero() {
		e.Time = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	}
	o.pending = append(o.pending, e)
	o.recorded = append(o.recorded, e)
	o.mu.Unlock()
	select {
	case o.appended <- struct{}{}:
	default:
	}
	return nil
}

func (o *memOutbox) Pending(_ context.Context, after int64, limit int) ([]agent.Event, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := sort.Search(len(o.pending), func(i int) bool { return o.pending[i].Seq > after })
	j := min(len(o.pending), i+limit)
	return append([]agent.Event(nil), o.pending[i:j]...), nil
}

func (o *memOutbox) AckThrough(_ context.Context, through int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := sort.Search(len(o.pending), func(i int) bool { return o.pending[i].Seq > through })
	o.pending = o.pending[i:]
	return nil
}

func (o *memOutbox) Appended() <-chan struct{} { return o.appended }

func (o *memOutbox) OutboxDepth(context.Context) (int, time.Time, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.pending) == 0 {
		return 0, time.Time{}, nil
	}
	return len(o.pending), o.pending[0].Time, nil
}

func (o *memOutbox) depth() int {
	n, _, _ := o.OutboxDepth(context.Background())
	return n
}

func (o *memOutbox) events() []agent.Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]agent.Event(nil), o.recorded...)
}

// memCommands is an in-memory command log.
type memCommands struct {
	mu     sync.Mutex
	ids    map[string]string
	prunes []time.Time
}

func (c *memCommands) ClaimCommand(_ context.Context, id, _ string, _ time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil {
		c.ids = map[string]string{}
	}
	if _, ok := c.ids[id]; ok {
		return false, nil
	}
	c.ids[id] = "received"
	return true, nil
}

func (c *memCommands) FinishCommand(_ context.Context, id, status, _ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids[id] = status
	return nil
}

func (c *memCommands) PruneCommands(_ context.Context, before time.Time) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prunes = append(c.prunes, before)
	return 0, nil
}

func (c *memCommands) pruned() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.prunes...)
}

// fakeDoors answers door commands like a controller would.
type fakeDoors struct {
	mu       sync.Mutex
	ids      []string
	lockdown map[string]bool
	unlocked map[string]bool
	calls    []string
	enrol    chan agent.EnrolResult
	readers  map[string][]agent.ReaderStatus
}

func newFakeDoors(ids ...string) *fakeDoors {
	return &fakeDoors{ids: ids, lockdown: map[string]bool{}, unlocked: map[string]bool{}}
}

func (d *fakeDoors) DoorIDs() []string { return d.ids }

func (d *fakeDoors) DoorStatus(door string) (agent.DoorStatus, bool) {
	d.mu.Lock()
	readers := slices.Clone(d.readers[door])
	d.mu.Unlock()
	st, ok := d.doorStatus(door)
	st.Readers = readers
	return st, ok
}

// setReaders gives a door supervised readers.
func (d *fakeDoors) setReaders(door string, rs ...agent.ReaderStatus) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.readers == nil {
		d.readers = map[string][]agent.ReaderStatus{}
	}
	d.readers[door] = rs
}

func (d *fakeDoors) doorStatus(door string) (agent.DoorStatus, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range d.ids {
		if id == door {
			ov := agent.OverrideNone
			if d.lockdown[door] {
				ov = agent.OverrideLockdown
			}
			return agent.DoorStatus{Door: door, Running: true, Locked: !d.unlocked[door], Override: ov, OfficeMode: agent.OfficeOff}, true
		}
	}
	return agent.DoorStatus{}, false
}

func (d *fakeDoors) call(s string) {
	d.mu.Lock()
	d.calls = append(d.calls, s)
	d.mu.Unlock()
}

func (d *fakeDoors) Calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

func (d *fakeDoors) Unlock(_ context.Context, door string, cmd agent.RemoteUnlock) (agent.CommandResult, error) {
	d.call("unlock " + door + " " + cmd.ID)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lockdown[door] && !cmd.Override {
		return agent.CommandResult{Reason: agent.CommandLockdown, Detail: "lockdown"}, nil
	}
	d.unlocked[door] = true
	return agent.CommandResult{Accepted: true, Reason: agent.CommandAccepted, Detail: "unlocked"}, nil
}

func (d *fakeDoors) Lockdown(_ context.Context, door string, cmd agent.LockdownCommand) (agent.CommandResult, error) {
	d.call(fmt.Sprintf("lockdown %s %v %s", door, cmd.On, cmd.ID))
	d.mu.Lock()
	d.lockdown[door] = cmd.On
	d.mu.Unlock()
	return agent.CommandResult{Accepted: true, Reason: agent.CommandAccepted}, nil
}

func (d *fakeDoors) OfficeMode(_ context.Context, door string, cmd agent.OfficeModeCommand) (agent.CommandResult, error) {
	d.call(fmt.Sprintf("office_mode %s %v %s", door, cmd.On, cmd.ID))
	return agent.CommandResult{Accepted: true, Reason: agent.CommandAccepted}, nil
}

func (d *fakeDoors) ArmEnrolment(_ context.Context, door string, cmd agent.EnrolCommand) (agent.CommandResult, <-chan agent.EnrolResult, error) {
	d.call("enroll " + door + " " + cmd.TagNumber)
	ch := make(chan agent.EnrolResult, 1)
	ch <- agent.EnrolResult{Outcome: agent.EnrolEnrolled, TagNumber: cmd.TagNumber, Kind: agent.CredentialKind("uid"), Credential: "uid:…a1b2"}
	return agent.CommandResult{Accepted: true, Reason: agent.CommandAccepted}, ch, nil
}

// rig is a link with in-memory dependencies.
type rig struct {
	cfg    mqtt.Config
	outbox *memOutbox
	cmds   *memCommands
	doors  *fakeDoors
	link   *mqtt.Link
	cancel context.CancelFunc
	done   chan error
}

func newRig(t testing.TB, url string, edit func(*mqtt.Config)) *rig {
	t.Helper()
	r := &rig{outbox: newMemOutbox(), cmds: &memCommands{}, doors: newFakeDoors("front", "back")}
	r.cfg = mqtt.Config{
		Brokers: []string{url},
		Topics:  mqtt.Topics{Site: "site1", Gateway: "gw1"},
		Outbox:  r.outbox, Meter: r.outbox, Events: r.outbox, CommandLog: r.cmds, Doors: r.doors,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if edit != nil {
		edit(&r.cfg)
	}
	link, err := mqtt.New(r.cfg)
	require.NoError(t, err)
	r.link = link
	return r
}

func (r *rig) start(t testing.TB) *rig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.link.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
}
