package control_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cmd/portier/control"
)

// fakeDaemon answers like a daemon with the doors front and back.
type fakeDaemon struct {
	mu       sync.Mutex
	calls    []string
	lockdown bool
	events   []agent.Event
	noSync   bool
}

func (d *fakeDaemon) Status(context.Context) control.Status {
	return control.Status{GatewayID: "gw1", Version: "test", Doors: []agent.DoorStatus{{Door: "front", Locked: true}}}
}

func (d *fakeDaemon) Doors() control.Doors { return d }

func (d *fakeDaemon) SyncNow() error {
	if d.noSync {
		return errors.New("nothing to sync from")
	}
	d.call("sync")
	return nil
}

func (d *fakeDaemon) Events(_ context.Context, after int64, limit int) ([]agent.Event, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []agent.Event
	for _, e := range d.events {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (d *fakeDaemon) record(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for range n {
		seq := int64(len(d.events) + 1)
		d.events = append(d.events, agent.Event{Seq: seq, Type: agent.EventDoorOpened, Door: "front", Detail: strconv.FormatInt(seq, 10)})
	}
}

func (d *fakeDaemon) call(s string) {
	d.mu.Lock()
	d.calls = append(d.calls, s)
	d.mu.Unlock()
}

func (d *fakeDaemon) Calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

func (d *fakeDaemon) DoorIDs() []string { return []string{"front", "back"} }

func (d *fakeDaemon) Unlock(_ context.Context, door string, cmd agent.RemoteUnlock) (agent.CommandResult, error) {
	d.call(fmt.Sprintf("unlock %s %s %v by %s", door, cmd.Duration, cmd.Override, cmd.Actor))
	if d.lockdown && !cmd.Override {
		return agent.CommandResult{Reason: agent.CommandLockdown, Detail: "in lockdown"}, nil
	}
	return agent.CommandResult{Accepted: true}, nil
}

func (d *fakeDaemon) Lockdown(_ context.Context, door string, cmd agent.LockdownCommand) (agent.CommandResult, error) {
	d.call(fmt.Sprintf("lockdown %s %v", door, cmd.On))
	d.lockdown = cmd.On
	return agent.CommandResult{Accepted: true}, nil
}

func (d *fakeDaemon) OfficeMode(_ context.Context, door string, cmd agent.OfficeModeCommand) (agent.CommandResult, error) {
	d.call(fmt.Sprintf("office_mode %s %v %s", door, cmd.On, cmd.Until.UTC().Format(time.RFC3339)))
	return agent.CommandResult{Accepted: true}, nil
}

func (d *fakeDaemon) ArmEnrolment(_ context.Context, door string, cmd agent.EnrolCommand) (agent.CommandResult, <-chan agent.EnrolResult, error) {
	d.call("enroll " + door + " " + cmd.TagNumber)
	if door == "back" {
		return agent.CommandResult{Reason: agent.CommandUnsupported}, nil, nil
	}
	ch := make(chan agent.EnrolResult, 1)
	ch <- agent.EnrolResult{Outcome: agent.EnrolEnrolled, TagNumber: cmd.TagNumber, Credential: "uid:4 bytes …0D", User: &agent.UserRef{ID: "u1", Name: "Ada"}}
	return agent.CommandResult{Accepted: true}, ch, nil
}

func (d *fakeDaemon) CancelEnrolment(_ context.Context, door string, cmd agent.CancelEnrolment) (agent.CommandResult, error) {
	d.call("cancel enrolment " + door)
	return agent.CommandResult{Accepted: true}, nil
}

func (d *fakeDaemon) InstallReader(_ context.Context, door string, cmd agent.Command, progress func(string)) error {
	d.call("install " + door + " by " + cmd.Actor)
	progress("generated a key")
	progress("stored it")
	if door == "back" {
		return errors.New("the reader refused the default install key")
	}
	return nil
}

// SetReaderAddress moves front's reader; back's refuses.
func (d *fakeDaemon) SetReaderAddress(_ context.Context, door string, cmd agent.Command, req control.ReaderAddressRequest, progress func(string)) error {
	d.call(fmt.Sprintf("address %s %d %d by %s", door, req.Address, req.Baud, cmd.Actor))
	progress("sent osdp_COMSET")
	if door == "back" {
		return errors.New("address 2 on bus rs485-0 is taken")
	}
	return nil
}

// ReaderOutput takes front's output 0 only.
func (d *fakeDaemon) ReaderOutput(_ context.Context, door string, cmd agent.Command, req control.ReaderOutputRequest) error {
	d.call(fmt.Sprintf("output %s %d %s %s by %s", door, req.Output, req.Action, req.Pulse, cmd.Actor))
	if req.Output != 0 {
		return errors.New("the reader has 1 outputs")
	}
	return nil
}

// Card answers an inspect at front in two steps; back has no reader; a
// wait of 1ms never sees a card.
func (d *fakeDaemon) Card(ctx context.Context, door string, cmd agent.Command, req control.CardRequest, progress func(string)) (control.CardReport, error) {
	d.call(fmt.Sprintf("card %s %s %s %v %s by %s", door, req.Op, req.TagNumber, req.Reissue, req.UID, cmd.Actor))
	if door == "back" {
		return control.CardReport{}, errors.New("door back has no RFID reader")
	}
	if req.Op == control.CardInspect {
		// The daemon asks for the card from the request's goroutine and
		// reports the card's steps from the reader's, which may start
		// while the first line is still being written.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); progress("reading its version") }()
		progress("present the card at front")
		wg.Wait()
		return control.CardReport{Op: req.Op, Door: door, Product: "DESFire EV2"}, nil
	}
	progress("present the card at front")
	if req.Op == control.CardRekey {
		wait, err := req.WaitFor()
		if err != nil {
			return control.CardReport{}, err
		}
		return control.CardReport{}, fmt.Errorf("no card within %s", wait)
	}
	progress("reading its version")
	return control.CardReport{Op: req.Op, Door: door, UID: "04A1B2C3D4E5F6", Product: "DESFire EV2", Site: "issued", TagNumber: req.TagNumber}, nil
}

// serve runs a server for d on a socket in a temp dir.
func serve(t *testing.T, d control.Daemon) (*control.Client, string, context.CancelFunc) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "portier.sock")
	srv, err := control.Listen(sock, d)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return control.NewClient(sock), sock, cancel
}

func TestClientAndServer(t *testing.T) {
	d := &fakeDaemon{}
	c, sock, _ := serve(t, d)
	ctx := context.Background()

	st, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), st.Mode().Perm(), "the service user and its group only")

	status, err := c.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "gw1", status.GatewayID)
	require.Len(t, status.Doors, 1)

	res, err := c.Unlock(ctx, "front", control.UnlockRequest{Duration: "30s"})
	require.NoError(t, err)
	assert.True(t, res.Accepted)
	_, err = c.Unlock(ctx, "cellar", control.UnlockRequest{})
	assert.EqualError(t, err, `no door "cellar" (doors: front, back)`)
	assert.ErrorIs(t, err, agent.ErrUnknownDoor, "the CLI tells an unknown door apart")
	_, err = c.Unlock(ctx, "front", control.UnlockRequest{Duration: "soon"})
	assert.EqualError(t, err, `duration "soon": want a positive Go duration like 30s or 2h`)
	assert.NotErrorIs(t, err, agent.ErrUnknownDoor)

	res, err = c.Lockdown(ctx, "back", control.SwitchRequest{On: true})
	require.NoError(t, err)
	assert.True(t, res.Accepted)
	res, err = c.Unlock(ctx, "back", control.UnlockRequest{})
	require.NoError(t, err, "a refusal is an answer, not an error")
	assert.False(t, res.Accepted)
	assert.Equal(t, agent.CommandLockdown, res.Reason)
	res, err = c.Unlock(ctx, "back", control.UnlockRequest{Override: true})
	require.NoError(t, err)
	assert.True(t, res.Accepted)
	until := time.Date(2026, 11, 24, 18, 0, 0, 0, time.UTC)
	_, err = c.OfficeMode(ctx, "front", control.SwitchRequest{On: true, Until: until})
	require.NoError(t, err)

	enrolled, err := c.Enroll(ctx, "front", control.EnrollRequest{TagNumber: "2301234"})
	require.NoError(t, err)
	assert.True(t, enrolled.Command.Accepted)
	assert.Equal(t, string(agent.EnrolEnrolled), enrolled.Outcome)
	assert.Equal(t, "02301234", enrolled.TagNumber, "the tag number is normalised")
	assert.Equal(t, "Ada", enrolled.User.Name)
	refused, err := c.Enroll(ctx, "back", control.EnrollRequest{TagNumber: "1"})
	require.NoError(t, err)
	assert.False(t, refused.Command.Accepted)
	_, err = c.Enroll(ctx, "front", control.EnrollRequest{TagNumber: "12a"})
	assert.Error(t, err)

	require.NoError(t, c.SyncNow(ctx))
	d.noSync = true
	assert.EqualError(t, c.SyncNow(ctx), "nothing to sync from")

	var steps []string
	require.NoError(t, c.InstallReader(ctx, "front", func(s string) { steps = append(steps, s) }))
	assert.Equal(t, []string{"generated a key", "stored it"}, steps, "each step as it happens")
	steps = nil
	assert.EqualError(t, c.InstallReader(ctx, "back", func(s string) { steps = append(steps, s) }), "the reader refused the default install key")
	assert.Len(t, steps, 2)
	err = c.InstallReader(ctx, "cellar", func(string) {})
	assert.EqualError(t, err, `no door "cellar" (doors: front, back)`)
	assert.ErrorIs(t, err, agent.ErrUnknownDoor)

	uid := fmt.Sprintf("local:uid=%d", os.Getuid())
	assert.Equal(t, []string{
		"unlock front 30s false by " + uid,
		"lockdown back true",
		"unlock back 0s false by " + uid,
		"unlock back 0s true by " + uid,
		"office_mode front true 2026-11-24T18:00:00Z",
		"enroll front 02301234",
		"enroll back 00000001",
		"sync",
		"install front by " + uid,
		"install back by " + uid,
	}, d.Calls())
}

func TestFollow(t *testing.T) {
	d := &fakeDaemon{}
	d.record(1500) // more than one read of the stream
	c, _, stop := serve(t, d)
	ctx := context.Background()

	_, err := c.Follow(ctx, 0, time.Millisecond)
	assert.ErrorContains(t, err, `poll "1ms": want a Go duration of at least 10ms`)

	stream, err := c.Follow(ctx, 1000, control.EventsPollMin)
	require.NoError(t, err)
	defer stream.Close()
	for want := int64(1001); want <= 1500; want++ {
		ev, err := stream.Next()
		require.NoError(t, err)
		require.Equal(t, want, ev.Seq)
	}
	d.record(1) // recorded while followed
	ev, err := stream.Next()
	require.NoError(t, err)
	assert.Equal(t, int64(1501), ev.Seq)

	stop() // the daemon stops: the stream ends
	_, err = stream.Next()
	assert.ErrorIs(t, err, control.ErrStreamEnded)
}

func TestListen(t *testing.T) {
	d := &fakeDaemon{}
	_, sock, _ := serve(t, d)
	_, err := control.Listen(sock, d)
	assert.EqualError(t, err, "another portier is already running (it answers on "+sock+")")

	// A socket file left by a daemon that died is replaced.
	stale := filepath.Join(t.TempDir(), "portier.sock")
	require.NoError(t, os.WriteFile(stale, nil, 0o600))
	srv, err := control.Listen(stale, d)
	require.NoError(t, err)
	require.NoError(t, srv.Close())
	_, err = os.Stat(stale)
	assert.ErrorIs(t, err, os.ErrNotExist, "Close removes the socket")
	require.NoError(t, srv.Close(), "twice is fine")

	_, err = control.NewClient(stale).Status(context.Background())
	assert.ErrorContains(t, err, "portier is not running, or this user may not use its control socket "+stale)
}

func TestCardOperations(t *testing.T) {
	d := &fakeDaemon{}
	c, _, _ := serve(t, d)
	ctx := context.Background()

	var steps []string
	rep, err := c.Card(ctx, "front", control.CardRequest{Op: control.CardIssue, TagNumber: "2301234", Reissue: true, UID: "04:a1:b2:c3"}, func(s string) { steps = append(steps, s) })
	require.NoError(t, err)
	assert.Equal(t, []string{"present the card at front", "reading its version"}, steps)
	assert.Equal(t, "02301234", rep.TagNumber, "the tag number arrives normalised")
	assert.Equal(t, "DESFire EV2", rep.Product)
	assert.Equal(t, fmt.Sprintf("card front issue 02301234 true 04A1B2C3 by local:uid=%d", os.Getuid()), d.Calls()[0], "tag number and UID arrive normalised, with the caller")

	steps = nil
	rep, err = c.Card(ctx, "front", control.CardRequest{Op: control.CardInspect}, func(s string) { steps = append(steps, s) })
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"present the card at front", "reading its version"}, steps, "steps sent from two goroutines at once arrive whole")
	assert.Equal(t, "DESFire EV2", rep.Product)

	_, err = c.Card(ctx, "back", control.CardRequest{Op: control.CardInspect}, nil)
	assert.EqualError(t, err, "door back has no RFID reader")
	_, err = c.Card(ctx, "front", control.CardRequest{Op: control.CardRekey, Wait: "20ms"}, nil)
	assert.EqualError(t, err, "no card within 20ms")

	for _, tt := range []struct {
		door string
		req  control.CardRequest
		want string
	}{
		{"attic", control.CardRequest{Op: control.CardInspect}, `no door "attic"`},
		{"front", control.CardRequest{Op: "format"}, `card operation "format"`},
		{"front", control.CardRequest{Op: control.CardIssue, TagNumber: "123456789"}, "tag number must be 1–8 digits"},
		{"front", control.CardRequest{Op: control.CardInspect, Wait: "soon"}, `wait "soon"`},
		{"front", control.CardRequest{Op: control.CardIssue, TagNumber: "1", Reissue: true}, "reissue needs the card's UID"},
		{"front", control.CardRequest{Op: control.CardInspect, UID: "12345"}, "uid: invalid credential"},
	} {
		_, err := c.Card(ctx, tt.door, tt.req, nil)
		assert.ErrorContains(t, err, tt.want)
	}
	assert.Len(t, d.Calls(), 4, "refused requests never reach the daemon")
}

// TestReaderOperations: an address change streams its steps and its
// outcome; an output request is checked (action, pulse) before the daemon
// sees it, and the reader's refusal comes back as the error.
func TestReaderOperations(t *testing.T) {
	d := &fakeDaemon{}
	c, _, _ := serve(t, d)
	ctx := t.Context()

	var steps []string
	require.NoError(t, c.SetReaderAddress(ctx, "front", control.ReaderAddressRequest{Address: 3}, func(s string) { steps = append(steps, s) }))
	assert.Equal(t, []string{"sent osdp_COMSET"}, steps)
	assert.EqualError(t, c.SetReaderAddress(ctx, "back", control.ReaderAddressRequest{Address: 2, Baud: 9600}, func(string) {}), "address 2 on bus rs485-0 is taken")
	assert.EqualError(t, c.SetReaderAddress(ctx, "cellar", control.ReaderAddressRequest{Address: 2}, func(string) {}), `no door "cellar" (doors: front, back)`)

	for _, tc := range []struct {
		name string
		req  control.ReaderOutputRequest
		err  string
	}{
		{"on", control.ReaderOutputRequest{Output: 0, Action: control.OutputOn}, ""},
		{"pulse", control.ReaderOutputRequest{Output: 0, Action: control.OutputPulse, Pulse: "1.5s"}, ""},
		{"no such output", control.ReaderOutputRequest{Output: 4, Action: control.OutputOff}, "the reader has 1 outputs"},
		{"unknown action", control.ReaderOutputRequest{Output: 0, Action: "toggle"}, `output action "toggle": want on, off or pulse`},
		{"pulse without a duration", control.ReaderOutputRequest{Output: 0, Action: control.OutputPulse}, `pulse "": want a positive Go duration like 500ms or 3s`},
		{"a duration without pulse", control.ReaderOutputRequest{Output: 0, Action: control.OutputOn, Pulse: "1s"}, `pulse "1s" only goes with the pulse action`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.ReaderOutput(ctx, "front", tc.req)
			if tc.err == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, tc.err)
		})
	}
	by := fmt.Sprintf(" by local:uid=%d", os.Getuid())
	assert.Equal(t, []string{
		"address front 3 0" + by, "address back 2 9600" + by,
		"output front 0 on " + by, "output front 0 pulse 1.5s" + by, "output front 4 off " + by,
	}, d.Calls(), "invalid requests never reach the daemon; the others name the caller")
}
