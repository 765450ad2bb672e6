package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/cloud/saltoks/sitesync"
	"github.com/portier-io/portier/sqlite"
)

// The control socket is HTTP over a unix socket that only the service user
// and its group may connect to (mode 0660). The operator CLI (status, unlock,
// enroll, lockdown, office-mode, sync-now, events --follow) talks to the
// running daemon through it. Every command it carries is recorded with the
// caller's uid.

type controlServer struct {
	d    *daemon
	ln   net.Listener
	srv  *http.Server
	stop chan struct{} // closed at shutdown: ends the event streams
}

type peerKey struct{}

func (d *daemon) listenControl() (*controlServer, error) {
	path := d.cfg.ControlSocket
	if err := removeStaleSocket(path); err != nil {
		return nil, usageError{err}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, usageError{fmt.Errorf("control socket: %w", err)}
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	c := &controlServer{d: d, ln: ln, stop: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", c.status)
	mux.HandleFunc("POST /v1/doors/{door}/unlock", c.unlock)
	mux.HandleFunc("POST /v1/doors/{door}/lockdown", c.lockdown)
	mux.HandleFunc("POST /v1/doors/{door}/office_mode", c.officeMode)
	mux.HandleFunc("POST /v1/doors/{door}/enroll", c.enroll)
	mux.HandleFunc("POST /v1/sync", c.syncNow)
	mux.HandleFunc("GET /v1/events", c.events)
	c.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ConnContext: func(ctx context.Context, conn net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, peerUID(conn))
		},
	}
	return c, nil
}

// removeStaleSocket deletes a socket file left by a daemon that died, but
// refuses to start a second daemon beside a live one.
func removeStaleSocket(path string) error {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("another portier is already running (it answers on %s)", path)
	}
	return os.Remove(path)
}

func (c *controlServer) serve(ctx context.Context) error {
	err := c.srv.Serve(c.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (c *controlServer) close() {
	close(c.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.srv.Shutdown(ctx)
	os.Remove(c.d.cfg.ControlSocket)
}

// peerUID is the uid of the process on the other end of a unix socket.
func peerUID(conn net.Conn) int {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return -1
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1
	}
	uid := -1
	raw.Control(func(fd uintptr) {
		if cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
			uid = int(cred.Uid)
		}
	})
	return uid
}

// localCommand identifies a command from the control socket.
func localCommand(r *http.Request) agent.Command {
	var b [8]byte
	rand.Read(b[:])
	uid, _ := r.Context().Value(peerKey{}).(int)
	return agent.Command{ID: "local-" + hex.EncodeToString(b[:]), Actor: "local:uid=" + strconv.Itoa(uid)}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

type errorBody struct {
	Error string `json:"error"`
}

func (c *controlServer) door(w http.ResponseWriter, r *http.Request) (*agent.Controller, bool) {
	ctl, err := c.d.doors.Get(r.PathValue("door"))
	if err != nil {
		writeJSON(w, http.StatusNotFound, errorBody{err.Error()})
		return nil, false
	}
	return ctl, true
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{"bad request body: " + err.Error()})
		return false
	}
	return true
}

// Status is what `portier status` shows.
type Status struct {
	GatewayID  string             `json:"gateway_id"`
	Version    string             `json:"version"`
	StartedAt  time.Time          `json:"started_at"`
	Driver     string             `json:"driver"`
	Site       agent.Site         `json:"site"`
	Generation int64              `json:"snapshot_generation"`
	Doors      []agent.DoorStatus `json:"doors"`
	Sync       *sitesync.State    `json:"sync,omitempty"`
	Clock      ClockStatus        `json:"clock"`
	Outbox     sqlite.OutboxStats `json:"outbox"`
	// EventsHeld counts events an outbox failure holds in memory (see
	// agent.EventSpool); EventsLost those lost at the spool's limit.
	EventsHeld int `json:"events_held,omitempty"`
	EventsLost int `json:"events_lost,omitempty"`
	// Storage is the filesystem that holds the database.
	Storage *mqtt.StoragePayload `json:"storage,omitempty"`
	// MQTT is the broker link; absent when no broker is configured.
	MQTT *MQTTStatus `json:"mqtt,omitempty"`
}

// MQTTStatus is the MQTT link's state with the brokers it uses.
type MQTTStatus struct {
	Brokers []string `json:"brokers"`
	mqtt.LinkStatus
}

// ClockStatus reports the clock guard.
type ClockStatus struct {
	Trusted bool   `json:"trusted"`
	Reason  string `json:"reason,omitempty"`
	Policy  string `json:"policy"`
}

func (c *controlServer) status(w http.ResponseWriter, r *http.Request) {
	d := c.d
	v := d.db.View()
	st := Status{GatewayID: d.cfg.GatewayID, Version: version, StartedAt: d.started, Driver: d.cfg.Hardware.Driver,
		Site: v.Site, Generation: v.Generation,
		Clock: ClockStatus{Trusted: !d.guard.Untrusted(), Reason: d.guard.Reason(), Policy: d.cfg.ClockPolicyName()}}
	st.Doors = d.doors.Statuses()
	if d.engine != nil {
		if s, err := sitesync.ReadState(r.Context(), d.db); err == nil {
			st.Sync = &s
		}
	}
	if o, err := d.db.OutboxStats(r.Context()); err == nil {
		st.Outbox = o
	}
	st.EventsHeld, st.EventsLost = d.events.Held()
	st.Storage = storageOf(d.db.Path())
	if d.link != nil {
		st.MQTT = &MQTTStatus{Brokers: d.cfg.MQTT.URLs(), LinkStatus: d.link.Status()}
	}
	writeJSON(w, http.StatusOK, st)
}

// unlockRequest is the body of POST /v1/doors/{door}/unlock.
type unlockRequest struct {
	Duration string `json:"duration,omitempty"` // Go duration; empty: one access-time pulse
	Override bool   `json:"override,omitempty"` // needed during lockdown
}

func (c *controlServer) unlock(w http.ResponseWriter, r *http.Request) {
	ctl, ok := c.door(w, r)
	var req unlockRequest
	if !ok || !decodeBody(w, r, &req) {
		return
	}
	var dur time.Duration
	if req.Duration != "" {
		var err error
		if dur, err = time.ParseDuration(req.Duration); err != nil || dur < 0 {
			writeJSON(w, http.StatusBadRequest, errorBody{fmt.Sprintf("duration %q: want a positive Go duration like 30s or 2h", req.Duration)})
			return
		}
	}
	c.answer(w, r, func(ctx context.Context) (agent.CommandResult, error) {
		return ctl.Unlock(ctx, agent.RemoteUnlock{Command: localCommand(r), Duration: dur, Override: req.Override})
	})
}

type switchRequest struct {
	On    bool      `json:"on"`
	Until time.Time `json:"until,omitzero"`
}

func (c *controlServer) lockdown(w http.ResponseWriter, r *http.Request) {
	ctl, ok := c.door(w, r)
	var req switchRequest
	if !ok || !decodeBody(w, r, &req) {
		return
	}
	c.answer(w, r, func(ctx context.Context) (agent.CommandResult, error) {
		return ctl.Lockdown(ctx, agent.LockdownCommand{Command: localCommand(r), On: req.On})
	})
}

func (c *controlServer) officeMode(w http.ResponseWriter, r *http.Request) {
	ctl, ok := c.door(w, r)
	var req switchRequest
	if !ok || !decodeBody(w, r, &req) {
		return
	}
	c.answer(w, r, func(ctx context.Context) (agent.CommandResult, error) {
		return ctl.OfficeMode(ctx, agent.OfficeModeCommand{Command: localCommand(r), On: req.On, Until: req.Until})
	})
}

func (c *controlServer) answer(w http.ResponseWriter, r *http.Request, fn func(context.Context) (agent.CommandResult, error)) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	res, err := fn(ctx)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"the door did not take the command: " + err.Error()})
		return
	}
	code := http.StatusOK
	if !res.Accepted {
		code = http.StatusConflict
	}
	writeJSON(w, code, res)
}

type enrollRequest struct {
	TagNumber string `json:"tag_number"`
}

// enrollResponse is the outcome of an enrolment.
type enrollResponse struct {
	Command    agent.CommandResult `json:"command"`
	Outcome    string              `json:"outcome,omitempty"`
	TagNumber  string              `json:"tag_number,omitempty"`
	Credential string              `json:"credential,omitempty"`
	User       *agent.UserRef      `json:"user,omitempty"`
	Error      string              `json:"error,omitempty"`
}

// enroll arms "enrol the next tap" and answers when a card was enrolled, the
// arm expired, or the caller gave up.
func (c *controlServer) enroll(w http.ResponseWriter, r *http.Request) {
	ctl, ok := c.door(w, r)
	var req enrollRequest
	if !ok || !decodeBody(w, r, &req) {
		return
	}
	tag, err := agent.NormalizeTagNumber(req.TagNumber)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
		return
	}
	res, results, err := ctl.ArmEnrolment(r.Context(), agent.EnrolCommand{Command: localCommand(r), TagNumber: tag})
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"the door did not take the command: " + err.Error()})
		return
	}
	if !res.Accepted {
		writeJSON(w, http.StatusConflict, enrollResponse{Command: res})
		return
	}
	select {
	case out := <-results:
		resp := enrollResponse{Command: res, Outcome: string(out.Outcome), TagNumber: out.TagNumber, Credential: out.Credential, User: out.User}
		if out.Err != nil {
			resp.Error = out.Err.Error()
		}
		writeJSON(w, http.StatusOK, resp)
	case <-r.Context().Done():
	}
}

func (c *controlServer) syncNow(w http.ResponseWriter, r *http.Request) {
	if c.d.engine == nil {
		writeJSON(w, http.StatusConflict, errorBody{"this gateway has no salto: section, so there is nothing to sync from"})
		return
	}
	c.d.engine.Trigger()
	writeJSON(w, http.StatusAccepted, map[string]string{"sync": "triggered"})
}

// eventsPoll bounds how often an event stream looks for new events.
const (
	eventsPollDefault = 250 * time.Millisecond
	eventsPollMin     = 10 * time.Millisecond
)

// events streams recorded events with seq > after as JSON lines: what is
// there, then, with follow=1, every new event until the client goes away or
// the daemon stops (the stream then simply ends). poll (a Go duration, at
// least 10ms) sets how often the stream looks for new events.
func (c *controlServer) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		var err error
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			writeJSON(w, http.StatusBadRequest, errorBody{fmt.Sprintf("after %q: want a sequence number", v)})
			return
		}
	}
	poll := eventsPollDefault
	if v := q.Get("poll"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < eventsPollMin {
			writeJSON(w, http.StatusBadRequest, errorBody{fmt.Sprintf("poll %q: want a Go duration of at least %s", v, eventsPollMin)})
			return
		}
		poll = d
	}
	follow := q.Get("follow") == "1"
	w.Header().Set("Content-Type", "application/x-ndjson")
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for started := false; ; started = true {
		evs, err := c.d.db.Events(r.Context(), after, 1000)
		if err != nil {
			if !started {
				writeJSON(w, http.StatusInternalServerError, errorBody{err.Error()})
			}
			return // mid-stream the client sees the stream end
		}
		for _, ev := range evs {
			if enc.Encode(ev) != nil {
				return // the client went away
			}
			after = ev.Seq
		}
		if flusher != nil {
			flusher.Flush()
		}
		if len(evs) == 1000 {
			continue // more are waiting
		}
		if !follow {
			return
		}
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-c.stop:
			return
		}
	}
}
