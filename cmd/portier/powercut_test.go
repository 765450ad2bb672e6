package main_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/cloud/mqtt/mqtttest"
	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
	"github.com/portier-io/portier/sqlite"
	"github.com/portier-io/portier/sqlite/sqlitetest"
	"github.com/portier-io/portier/sqlite/sqlitetest/powerfs"
)

// powerCutsShort is how many times TestPowerCut cuts the power in `make
// test`; PORTIER_POWERCUT_CUTS sets another number (`make powercut`).
const powerCutsShort = 12

// TestPowerCut runs the real `portier run` on storage that loses whatever
// was not fsynced when the power goes (powerfs, with a card's fsync delay),
// while doors are used, syncs land, commands arrive and the outbox drains to
// a broker, and cuts the power again and again at chosen points: during a
// schema migration, in a grant (relay on), during a sync, during a WAL
// checkpoint, while a backlog drains, anywhere. After every cut:
//
//   - the database opens and passes PRAGMA integrity_check;
//   - the cache holds one whole snapshot of the site, the old or a newer one;
//   - every event reported recorded (`portier events --follow`'s stream) or
//     received by the broker is still there, once, with its seq; no seq is
//     ever given to two events;
//   - the agent starts again, and the relay that was on is off before it
//     says it is ready.
//
// It logs power_cut_points and power_cut_lost; BenchmarkPowerCut reports
// them for `make bench`.
func TestPowerCut(t *testing.T) {
	cuts := powerCutsShort
	if v := os.Getenv("PORTIER_POWERCUT_CUTS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "PORTIER_POWERCUT_CUTS")
		cuts = n
	}
	r := runPowerCuts(t, cuts)
	t.Logf("power_cut_points=%d power_cut_lost=%d; %s", r.points, r.lost, r.summary())
	require.Zero(t, r.lost)
}

// BenchmarkPowerCut cuts the power 60 times (see TestPowerCut).
//
//	power_cut_points   cuts survived and checked
//	power_cut_lost     reported events missing after a cut (must be 0)
func BenchmarkPowerCut(b *testing.B) {
	for range b.N {
		r := runPowerCuts(b, 60)
		b.ReportMetric(float64(r.points), "power_cut_points")
		b.ReportMetric(float64(r.lost), "power_cut_lost")
		logVerbose(b, "%s", r.summary())
	}
}

// powerCutResult counts what the run did.
type powerCutResult struct {
	points int            // cuts made, each checked
	lost   int            // reported events missing after a cut
	kinds  map[string]int // cuts by where they were aimed (and hit)
	events int            // distinct events reported over the run
	checks int            // reported events checked after cuts, summed over the cuts
}

func (r powerCutResult) summary() string {
	var parts []string
	for k, n := range r.kinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(parts)
	return fmt.Sprintf("cuts by kind: %s; %d events reported, %d presence checks", strings.Join(parts, " "), r.events, r.checks)
}

// powerRig is one gateway on powerfs with its world around it.
type powerRig struct {
	t      testing.TB
	fs     *powerfs.FS
	dir    string // on ordinary disk: config, secrets, sockets, the relay latch
	cfg    string
	sock   string
	fake   *saltokstest.Fake
	broker *mqtttest.Broker
	addr   string // the broker's address, kept across restarts
	rng    *mrand.Rand

	// The site: every version the fake served, its snapshot's hash, and the
	// versions the cache may hold now (the last one verified and later).
	refCfg   string
	refDB    string
	version  int
	hashes   map[int]string
	possible []int
	schema   int // the schema version this build writes

	mu        sync.Mutex
	bySeq     map[int64]string // every event reported recorded or received by the broker: seq → id
	byID      map[string]int64
	sources   map[string]string // id → who reported it first
	conflicts []string
	received  int // events the broker delivered (with repeats)
	followed  int // events the event stream showed (with repeats)

	proc     *exec.Cmd
	exited   chan struct{}
	stdin    io.WriteCloser
	stderr   *syncBuffer
	notify   *net.UnixConn
	stopLoad context.CancelFunc
	loadDone chan struct{}
	stopFoll context.CancelFunc
	follDone chan struct{}

	res powerCutResult
}

func runPowerCuts(t testing.TB, cuts int) powerCutResult {
	r := newPowerRig(t)
	r.prepareOldSchema(3000, 1000)
	r.migrationCuts(cuts)
	kinds := []func(){r.cutInAGrant, r.cutInASync, r.cutWhileDraining, r.cutInACheckpoint, r.cutAnywhere}
	for i := 0; r.res.points < cuts; i++ {
		kinds[i%len(kinds)]()
	}
	r.stop()
	r.mu.Lock()
	r.res.events = len(r.byID)
	for _, c := range r.conflicts {
		t.Errorf("seq reused: %s", c)
	}
	r.mu.Unlock()
	return r.res
}

func newPowerRig(t testing.TB) *powerRig {
	fake, err := saltokstest.New(saltokstest.Generate(saltokstest.SiteShape{Users: 1500, Groups: 4, Locks: 2, BlockedEvery: 9}), saltokstest.Options{})
	require.NoError(t, err)
	fake.Start()
	t.Cleanup(fake.Close)
	r := &powerRig{
		t: t, fake: fake, dir: t.TempDir(), rng: mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 11)),
		version: 1, hashes: map[int]string{}, possible: []int{0, 1}, schema: sqlite.SchemaVersion(),
		bySeq: map[int64]string{}, byID: map[string]int64{}, sources: map[string]string{},
		res: powerCutResult{kinds: map[string]int{}},
	}
	// An SD card's flush takes milliseconds: it widens every window a cut
	// can fall into, and makes events come in batches.
	r.fs = powerfs.New(t, powerfs.Options{PowerCut: true, FsyncDelay: 2 * time.Millisecond})
	r.sock = filepath.Join(r.dir, "portier.sock")
	r.startBroker()

	o := fake.Options()
	for name, secret := range map[string]string{"client.secret": o.ClientSecret, "salto.password": o.Password} {
		require.NoError(t, os.WriteFile(filepath.Join(r.dir, name), []byte(secret+"\n"), 0o600))
	}
	// The PIN key, the same for the gateway and the reference cache.
	key := make([]byte, agent.MinPINKeyLength)
	_, err = rand.Read(key)
	require.NoError(t, err)
	keyHex := []byte(hex.EncodeToString(key) + "\n")
	refState := filepath.Join(r.dir, "ref")
	require.NoError(t, os.MkdirAll(refState, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(refState, "pin.key"), keyHex, 0o600))
	writeDurable(t, filepath.Join(r.fs.Dir(), "pin.key"), keyHex)

	salto := fmt.Sprintf(`salto:
  identity_url: %[1]s
  api_url: %[1]s
  site_id: %[2]s
  client_id: %[3]s
  client_secret_file: %[4]s/client.secret
  username: %[5]s
  password_file: %[4]s/salto.password
  request_timeout: 10s
  sync_interval: 1h
`, fake.URL(), saltokstest.GeneratedSiteID, o.ClientID, r.dir, o.Username)
	doors := fmt.Sprintf(`doors:
  - id: front
    name: Front door
    mode: card_or_pin
    salto_locks: [%s]
    access_time: 1s
    held_open_time: 30s
`, saltokstest.LockID(0))
	cfg := fmt.Sprintf(`gateway_id: pc
state_dir: %[1]s
control_socket: %[2]s
clock_sync_check: "off"
%[3]s%[4]smqtt:
  broker: tcp://%[5]s
  site_id: site1
hardware:
  driver: sim
  sim_latch_file: %[6]s/latch.json
  doors:
    front:
      mfrc522: {spi: SPI0.0}
      relay: {pin: GPIO17, active_low: true}
      green_led: {pin: GPIO27}
      red_led: {pin: GPIO22}
      door_contact: {pin: GPIO4, switch: nc}
`, r.fs.Dir(), r.sock, doors, salto, r.addr, r.dir)
	r.cfg = filepath.Join(r.dir, "portier.yaml")
	require.NoError(t, os.WriteFile(r.cfg, []byte(cfg), 0o600))
	ref := fmt.Sprintf("gateway_id: ref\nstate_dir: %s\n%s%s", refState, doors, salto)
	r.refCfg = filepath.Join(r.dir, "ref.yaml")
	require.NoError(t, os.WriteFile(r.refCfg, []byte(ref), 0o600))
	r.refDB = filepath.Join(refState, "portier.db")
	r.hash(1)
	t.Cleanup(r.kill)
	return r
}

// writeDurable writes a file and makes it and its name durable.
func writeDurable(t testing.TB, path string, data []byte) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	d, err := os.Open(filepath.Dir(path))
	require.NoError(t, err)
	require.NoError(t, d.Sync())
	require.NoError(t, d.Close())
}

// startBroker starts the broker (on the same address after the first time)
// and records every event it delivers.
func (r *powerRig) startBroker() {
	b, err := mqtttest.Start(mqtttest.Options{Addr: r.addr})
	require.NoError(r.t, err)
	r.broker, r.addr = b, b.Addr()
	require.NoError(r.t, b.Subscribe("portier/site1/pc/event/#", func(_ string, payload []byte) {
		var e mqtt.EventPayload
		if json.Unmarshal(payload, &e) == nil {
			r.mu.Lock()
			r.received++
			r.mu.Unlock()
			r.report("broker", e.EventID, e.Seq)
		}
	}))
}

func (r *powerRig) stopBroker() {
	if r.broker != nil {
		require.NoError(r.t, r.broker.Close())
		r.broker = nil
	}
}

// report notes an event someone was told is recorded; a seq given to two
// events is a conflict.
func (r *powerRig) report(source, id string, seq int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if other, ok := r.bySeq[seq]; ok && other != id {
		r.conflicts = append(r.conflicts, fmt.Sprintf("seq %d is %s (%s) and %s (%s)", seq, other, r.sources[other], id, source))
		return
	}
	if other, ok := r.byID[id]; ok && other != seq {
		r.conflicts = append(r.conflicts, fmt.Sprintf("event %s has seq %d (%s) and %d (%s)", id, other, r.sources[id], seq, source))
		return
	}
	if _, ok := r.byID[id]; !ok {
		r.sources[id] = source
	}
	r.bySeq[seq], r.byID[id] = id, seq
}

func (r *powerRig) receivedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.received
}

func (r *powerRig) followedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.followed
}

// prepareOldSchema leaves, before the first start, a database one schema
// version behind with events in its outbox (the first delivered ones
// delivered), as an older portier would: the first start migrates it.
func (r *powerRig) prepareOldSchema(events, delivered int) {
	t := r.t
	files, err := filepath.Glob("../../sqlite/migrations/*.sql")
	require.NoError(t, err)
	sort.Strings(files)
	require.Len(t, files, r.schema, "one migration file per schema version")
	path := filepath.Join(r.fs.Dir(), "portier.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=FULL")
	require.NoError(t, err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, f := range files[:r.schema-1] {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		_, err = db.Exec(string(b))
		require.NoError(t, err, f)
	}
	_, err = db.Exec(fmt.Sprintf("PRAGMA user_version = %d", r.schema-1))
	require.NoError(t, err)
	var hasSentAt bool
	require.NoError(t, db.QueryRow("SELECT count(*) > 0 FROM pragma_table_info('outbox') WHERE name = 'sent_at'").Scan(&hasSentAt))
	tx, err := db.Begin()
	require.NoError(t, err)
	at := time.Now().Add(-time.Hour)
	for i := 1; i <= events; i++ {
		e := agent.Event{ID: fmt.Sprintf("old-%05d", i), Time: at.Add(time.Duration(i) * time.Millisecond), Type: agent.EventAccessDenied, Door: "front", Reason: agent.ReasonUnknownCredential}
		body, err := json.Marshal(e)
		require.NoError(t, err)
		_, err = tx.Exec("INSERT INTO outbox(seq, id, at, type, door, body) VALUES(?, ?, ?, ?, ?, ?)", i, e.ID, e.Time.UnixMilli(), string(e.Type), e.Door, string(body))
		require.NoError(t, err)
		if hasSentAt && i <= delivered {
			_, err = tx.Exec("UPDATE outbox SET sent_at = 1 WHERE seq = ?", i)
			require.NoError(t, err)
		}
		r.report("old database", e.ID, int64(i))
	}
	require.NoError(t, tx.Commit())
	_, err = db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	require.NoError(t, err)
	require.NoError(t, db.Close())
	d, err := os.Open(r.fs.Dir())
	require.NoError(t, err)
	require.NoError(t, d.Sync())
	require.NoError(t, d.Close())
	r.hashes[0], err = sqlitetest.DumpCache(r.copyDB())
	require.NoError(t, err)
}

// migrationCuts starts the agent on the old database with a cut aimed at
// an early operation of its start, again and again until a start gets
// through: the first cuts fall into the schema migration (one transaction
// that rewrites the outbox).
func (r *powerRig) migrationCuts(budget int) {
	for _, after := range []int{3, 25, 80, 200, 600} {
		if r.res.points >= budget {
			break
		}
		require.NoError(r.t, r.fs.Arm(powerfs.Trigger{After: after}))
		if !r.start() {
			r.cut("startup")
			continue
		}
		require.NoError(r.t, r.fs.Disarm())
		return
	}
	if r.proc == nil {
		require.True(r.t, r.start(), "the agent starts")
	}
}

// start runs the agent and waits until it is ready (true) or the power
// went first (false). Ready, its relay must be off.
func (r *powerRig) start() bool {
	t := r.t
	note := filepath.Join(r.dir, "notify.sock")
	os.Remove(note)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: note, Net: "unixgram"})
	require.NoError(t, err)
	r.notify = conn
	ready := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:n]), "READY=1") {
				close(ready)
				return
			}
		}
	}()
	started := time.Now()
	r.proc = exec.Command(portierBin, "run", "--config", r.cfg, "--sim-input", "-")
	r.proc.Env = []string{"HOME=" + r.dir, "PATH=" + os.Getenv("PATH"), "NOTIFY_SOCKET=" + note}
	r.stdin, err = r.proc.StdinPipe()
	require.NoError(t, err)
	r.stderr = &syncBuffer{}
	r.proc.Stderr = r.stderr
	require.NoError(t, r.proc.Start())
	r.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(r.proc, r.exited)

	select {
	case <-ready:
	case <-r.fs.Dead():
		return false
	case <-r.exited:
		if r.powerCut() {
			return false // it stopped on the I/O errors of the cut
		}
		t.Fatalf("portier run ended before it was ready: %s", r.stderr.tail())
	case <-time.After(2 * time.Minute):
		t.Fatalf("portier run did not get ready within 2 minutes: %s", r.stderr.tail())
	}
	require.False(t, r.latchRelay(), "the relay is off before the agent says it is ready")
	r.follow()
	r.load()
	// The sync every start makes must be over before the test changes the
	// site: a sync that pages through a site changing under it would mix
	// two versions (not what a cut is to be checked against).
	for r.stderr.syncs() == 0 {
		select {
		case <-r.fs.Dead():
			return false // the cut came during the start's sync
		case <-r.exited:
			if r.powerCut() {
				return false
			}
			t.Fatalf("portier run ended: %s", r.stderr.tail())
		case <-time.After(20 * time.Millisecond): // another process's progress
		}
		require.Less(t, time.Since(started), 2*time.Minute, "the start's sync did not end: %s", r.stderr.tail())
	}
	return true
}

// powerCut asks the file system whether the power is cut now.
func (r *powerRig) powerCut() bool {
	st, err := r.fs.Stats()
	require.NoError(r.t, err)
	return st.Dead
}

// latchRelay reads the relay's level from the sim board's latch file (the
// hardware: it keeps its level while no process drives it).
func (r *powerRig) latchRelay() bool {
	data, err := os.ReadFile(filepath.Join(r.dir, "latch.json"))
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	require.NoError(r.t, err)
	var levels map[string]map[string]bool
	require.NoError(r.t, json.Unmarshal(data, &levels))
	return levels["front"]["relay"]
}

func (r *powerRig) client() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", r.sock)
	}}}
}

// follow reads the agent's event stream (what `portier events --follow`
// prints) and reports every event in it.
func (r *powerRig) follow() {
	ctx, cancel := context.WithCancel(context.Background())
	r.stopFoll, r.follDone = cancel, make(chan struct{})
	go func() {
		defer close(r.follDone)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://portier/v1/events?follow=1&after=0&poll=10ms", nil)
		if err != nil {
			return
		}
		resp, err := r.client().Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var e agent.Event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				r.mu.Lock()
				r.followed++
				r.mu.Unlock()
				r.report("events --follow", e.ID, e.Seq)
			}
		}
	}()
}

// load uses the door while the agent runs: unknown cards every few ms, the
// door opening and closing now and then.
func (r *powerRig) load() {
	ctx, cancel := context.WithCancel(context.Background())
	r.stopLoad, r.loadDone = cancel, make(chan struct{})
	stdin := r.stdin
	go func() {
		defer close(r.loadDone)
		tick := time.NewTicker(15 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			line := fmt.Sprintf("tap front %08X\n", uint32(i)*2654435761)
			switch i % 20 {
			case 5:
				line = "open front\n"
			case 7:
				line = "close front\n"
			}
			if _, err := io.WriteString(stdin, line); err != nil {
				return // the agent died with the power
			}
		}
	}()
}

// post sends a request to the agent's control socket; errors are the
// power's business (the agent may be dying).
func (r *powerRig) post(path, body string) {
	resp, err := r.client().Post("http://portier"+path, "application/json", strings.NewReader(body))
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// newVersion changes the site at the fake (every user renamed, one more
// blocked) and knows the snapshot it makes: a reference cache synced by
// `portier sync` on ordinary disk.
func (r *powerRig) newVersion() {
	r.version++
	v := r.version
	for i := range r.fake.UserCount() {
		r.fake.UpdateUser(saltokstest.UserID(i), func(u *saltoks.SiteUser) {
			u.User.LastName = fmt.Sprintf("V%d", v)
			u.Blocked = u.Blocked || i == v
		})
	}
	r.possible = append(r.possible, v)
}

// hash returns the snapshot hash of site version v (syncing the reference
// cache when the fake serves v now).
func (r *powerRig) hash(v int) string {
	if h, ok := r.hashes[v]; ok {
		return h
	}
	require.Equal(r.t, r.version, v, "the fake serves only the newest version")
	out, errOut, code := runPortier(r.t, nil, "sync", "--config", r.refCfg)
	require.Equal(r.t, 0, code, "reference sync: %s %s", out, errOut)
	h, err := sqlitetest.DumpCache(r.refDB)
	require.NoError(r.t, err)
	r.hashes[v] = h
	return h
}

// waitDead waits for an aimed cut; when it does not come within limit the
// power is cut there and then, and the kind says so.
func (r *powerRig) waitDead(kind string, limit time.Duration) string {
	select {
	case <-r.fs.Dead():
		return kind
	case <-r.exited:
		if r.powerCut() {
			return kind
		}
		r.t.Fatalf("portier run ended: %s", r.stderr.tail())
	case <-time.After(limit):
		return kind + " (not reached: anywhere)"
	}
	return kind
}

func (r *powerRig) cutInAGrant() {
	r.post("/v1/doors/front/unlock", `{"duration":"30s"}`)
	r.poll("the relay to switch on", r.latchRelay)
	// While the grant's events are being committed: a few WAL writes on.
	require.NoError(r.t, r.fs.Arm(powerfs.Trigger{Kind: powerfs.OpWrite, Path: "portier.db-wal", After: 1 + r.rng.IntN(30)}))
	r.cut(r.waitDead("grant", 10*time.Second))
}

// poll waits for cond, which watches another process (the latch file is the
// hardware's level, the counts are the broker's and the event stream's): it
// fails only when cond stayed false for a minute.
func (r *powerRig) poll(what string, cond func() bool) {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for start := time.Now(); !cond(); <-tick.C {
		require.Less(r.t, time.Since(start), time.Minute, "waiting for %s: %s", what, r.stderr.tail())
	}
}

func (r *powerRig) cutInASync() {
	r.newVersion()
	r.hash(r.version)
	// The snapshot is applied in one transaction: the one long run of WAL
	// writes without an fsync (a batch of events writes a few pages). With
	// 1,500 users renamed it is about 150 writes long.
	require.NoError(r.t, r.fs.Arm(powerfs.Trigger{Kind: powerfs.OpWrite, Path: "portier.db-wal", Run: 30, After: 1 + r.rng.IntN(100)}))
	r.post("/v1/sync", "")
	r.cut(r.waitDead("sync", 10*time.Second))
}

func (r *powerRig) cutWhileDraining() {
	r.stopBroker()
	backlog := r.followedCount() + 50 + r.rng.IntN(150)
	r.poll("a backlog to build up", func() bool { return r.followedCount() >= backlog })
	before := r.receivedCount()
	r.startBroker()
	want := before + 1 + r.rng.IntN(40)
	r.poll("the backlog to drain", func() bool { return r.receivedCount() >= want })
	r.cut("drain")
}

func (r *powerRig) cutInACheckpoint() {
	// Checkpoints write the main database file; nothing else does while
	// the agent runs. A new site version adds pages to the WAL.
	require.NoError(r.t, r.fs.Arm(powerfs.Trigger{Kind: powerfs.OpWrite, Path: "portier.db", After: 1 + r.rng.IntN(20)}))
	r.newVersion()
	r.hash(r.version)
	r.post("/v1/sync", "")
	r.cut(r.waitDead("checkpoint", 30*time.Second))
}

func (r *powerRig) cutAnywhere() {
	require.NoError(r.t, r.fs.Arm(powerfs.Trigger{After: 1 + r.rng.IntN(3000)}))
	r.cut(r.waitDead("anywhere", 15*time.Second))
}

// cut cuts the power (unless an aimed cut already did), lets the agent die
// with it, powers on, checks what survived and starts the agent again.
func (r *powerRig) cut(kind string) {
	select {
	case <-r.fs.Dead():
	default:
		require.NoError(r.t, r.fs.Cut())
	}
	r.kill()
	relayWasOn := r.latchRelay()
	if at := r.fs.CutAt(); at != nil {
		logVerbose(r.t, "cut %d (%s) at %s; relay on: %v", r.res.points+1, kind, at, relayWasOn)
	}
	require.NoError(r.t, r.fs.PowerOn())
	r.res.points++
	r.res.kinds[kind]++
	if relayWasOn {
		r.res.kinds["relay on at the cut"]++
	}
	r.check(kind)
	if !strings.HasPrefix(kind, "startup") {
		require.True(r.t, r.start(), "the agent starts after the power came back")
	}
}

// kill ends the agent at once (the power is gone) and everything of this
// test that talked to it.
func (r *powerRig) kill() {
	if r.proc == nil {
		return
	}
	r.proc.Process.Kill()
	<-r.exited
	r.proc = nil
	r.notify.Close()
	if r.stopLoad != nil {
		r.stopLoad()
		<-r.loadDone
		r.stopLoad = nil
	}
	if r.stopFoll != nil {
		r.stopFoll()
		<-r.follDone
		r.stopFoll = nil
	}
}

// stop ends the run: the agent, then the broker.
func (r *powerRig) stop() {
	r.kill()
	r.stopBroker()
}

// copyDB copies the database as the storage holds it now (after a cut: what
// survived) to ordinary disk, for a look that changes nothing on the card.
func (r *powerRig) copyDB() string {
	dst := filepath.Join(r.t.TempDir(), "portier.db")
	for _, suffix := range []string{"", "-wal"} {
		src := filepath.Join(r.fs.Backing(), "portier.db"+suffix)
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
			continue
		}
		copyFile(r.t, src, dst+suffix)
	}
	return dst
}

// check looks at what the cut left.
func (r *powerRig) check(kind string) {
	t := r.t
	path := r.copyDB()
	db, err := sql.Open("sqlite3", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	var ok string
	require.NoError(t, db.QueryRow("PRAGMA integrity_check").Scan(&ok), "after a cut (%s)", kind)
	require.Equal(t, "ok", ok, "integrity_check after a cut (%s)", kind)
	var version int
	require.NoError(t, db.QueryRow("PRAGMA user_version").Scan(&version))
	require.Contains(t, []int{r.schema - 1, r.schema}, version, "the schema is the old one or the new one, whole")
	if version < r.schema {
		r.res.kinds["startup: still the old schema"]++
	}

	// Every event reported recorded is there, with its seq, once.
	rows, err := db.Query("SELECT seq, id FROM outbox")
	require.NoError(t, err)
	have := map[string]int64{}
	for rows.Next() {
		var seq int64
		var id string
		require.NoError(t, rows.Scan(&seq, &id))
		have[id] = seq
	}
	require.NoError(t, rows.Err())
	var through int64
	if version == r.schema {
		require.NoError(t, db.QueryRow("SELECT through FROM outbox_delivered").Scan(&through))
	}
	pruned := through - sqlite.KeepSent // the history keeps about the last KeepSent delivered events
	r.mu.Lock()
	var lost []string
	for id, seq := range r.byID {
		if seq <= pruned {
			continue
		}
		r.res.checks++
		if got, ok := have[id]; !ok || got != seq {
			lost = append(lost, fmt.Sprintf("%s (seq %d, reported by %s; now seq %d)", id, seq, r.sources[id], got))
		}
	}
	r.mu.Unlock()
	if len(lost) > 0 {
		slices.Sort(lost)
		t.Errorf("after a cut (%s): %d reported events are gone: %s", kind, len(lost), strings.Join(lost[:min(len(lost), 10)], ", "))
		r.res.lost += len(lost)
	}

	// The cache holds one whole snapshot: the last one seen or a newer one.
	h, err := sqlitetest.DumpCache(path)
	require.NoError(t, err)
	for i, v := range r.possible {
		if r.hash(v) == h {
			switch {
			case len(r.possible) == 1:
			case v < r.version:
				r.res.kinds["a sync under way: the old snapshot stayed"]++
			default:
				r.res.kinds["a sync under way: the new snapshot landed"]++
			}
			r.possible = r.possible[i:]
			return
		}
	}
	t.Errorf("after a cut (%s): the cache holds no whole snapshot of versions %v", kind, r.possible)
}

// syncBuffer is a bytes.Buffer for a process's stderr, safe to read while
// it writes, keeping the last 64 KiB, and counting the ends of syncs it
// logged.
type syncBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	synced int
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// slog writes a record per Write.
	if bytes.Contains(p, []byte(`msg="salto sync done"`)) || bytes.Contains(p, []byte(`msg="salto sync failed`)) {
		b.synced++
	}
	if b.buf.Len() > 64<<10 {
		rest := b.buf.Bytes()[b.buf.Len()-32<<10:]
		b.buf = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) syncs() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.synced
}

func (b *syncBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return tail(b.buf.String(), 4000)
}
