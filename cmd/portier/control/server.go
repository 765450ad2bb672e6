package control

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
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/portier-io/portier/agent"
)

// Daemon is what a running portier offers over the control socket.
type Daemon interface {
	// Status describes the gateway now.
	Status(ctx context.Context) Status
	// Doors runs the door commands.
	Doors() Doors
	// SyncNow starts a Salto KS sync; its error says why there is none.
	SyncNow() error
	// Events returns recorded events with seq > after, oldest first, at
	// most limit.
	Events(ctx context.Context, after int64, limit int) ([]agent.Event, error)
	// InstallReader moves door's new OSDP reader from its install key to a
	// key of its own, calling progress after each step; the daemon owns
	// the bus, so the install runs in it. cmd says who asked (the reader
	// operations are recorded with it).
	InstallReader(ctx context.Context, door string, cmd agent.Command, progress func(string)) error
	// SetReaderAddress moves door's OSDP reader to another address and
	// proves it answers there, calling progress after each step.
	SetReaderAddress(ctx context.Context, door string, cmd agent.Command, req ReaderAddressRequest, progress func(string)) error
	// ReaderOutput drives one output of door's OSDP reader (validated: a
	// known action, a valid pulse) and returns once the reader took it.
	ReaderOutput(ctx context.Context, door string, cmd agent.Command, req ReaderOutputRequest) error
	// Card runs a card operation at door's reader (validated: a known
	// door, a known op, a valid wait, a normalised tag number for issue),
	// telling each step to progress; a failure is the error. ctx ends when
	// the operator gives up; cmd is the caller, for the audit trail.
	Card(ctx context.Context, door string, cmd agent.Command, req CardRequest, progress func(step string)) (CardReport, error)
}

// Doors runs commands at a door by id; *agent.Doors implements it. A refusal
// is a CommandResult; the error says the command did not reach the door.
type Doors interface {
	DoorIDs() []string
	Unlock(ctx context.Context, door string, cmd agent.RemoteUnlock) (agent.CommandResult, error)
	Lockdown(ctx context.Context, door string, cmd agent.LockdownCommand) (agent.CommandResult, error)
	OfficeMode(ctx context.Context, door string, cmd agent.OfficeModeCommand) (agent.CommandResult, error)
	ArmEnrolment(ctx context.Context, door string, cmd agent.EnrolCommand) (agent.CommandResult, <-chan agent.EnrolResult, error)
	CancelEnrolment(ctx context.Context, door string, cmd agent.CancelEnrolment) (agent.CommandResult, error)
}

var _ Doors = (*agent.Doors)(nil)

// Server serves the control API on a unix socket (mode 0660: the service
// user and its group). Every command it carries is recorded with the
// caller's uid as its actor.
type Server struct {
	d    Daemon
	path string
	ln   net.Listener
	srv  *http.Server
	stop chan struct{} // closed at shutdown: ends the event streams
	once sync.Once
}

type peerKey struct{}

// Listen opens the socket at path. A socket file left by a daemon that died
// is replaced; a live daemon answering on it is an error.
func Listen(path string, d Daemon) (*Server, error) {
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s := &Server{d: d, path: path, ln: ln, stop: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathStatus, s.status)
	mux.HandleFunc(doorRoute(actionUnlock), s.unlock)
	mux.HandleFunc(doorRoute(actionLockdown), s.lockdown)
	mux.HandleFunc(doorRoute(actionOfficeMode), s.officeMode)
	mux.HandleFunc(doorRoute(actionEnroll), s.enroll)
	mux.HandleFunc(doorRoute(actionReaderInstall), s.installReader)
	mux.HandleFunc(doorRoute(actionReaderAddress), s.readerAddress)
	mux.HandleFunc(doorRoute(actionReaderOutput), s.readerOutput)
	mux.HandleFunc(doorRoute(actionCard), s.card)
	mux.HandleFunc("POST "+pathSync, s.syncNow)
	mux.HandleFunc("GET "+pathEvents, s.events)
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ConnContext: func(ctx context.Context, conn net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, peerUID(conn))
		},
	}
	return s, nil
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

// Run serves until ctx ends, then closes the server.
func (s *Server) Run(ctx context.Context) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-done:
		}
	}()
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close ends the event streams, gives answers in progress a moment to
// finish and removes the socket. It may be called more than once.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err = s.srv.Shutdown(ctx)
		s.ln.Close()
		os.Remove(s.path)
	})
	return err
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

// door returns the request's door, answering 404 when there is none such.
func (s *Server) door(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, ids := r.PathValue("door"), s.d.Doors().DoorIDs()
	if !slices.Contains(ids, id) {
		writeJSON(w, http.StatusNotFound, errorBody{(&agent.UnknownDoorError{Door: id, Doors: ids}).Error()})
		return "", false
	}
	return id, true
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

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.d.Status(r.Context()))
}

func (s *Server) unlock(w http.ResponseWriter, r *http.Request) {
	door, ok := s.door(w, r)
	var req UnlockRequest
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
	s.answer(w, r, func(ctx context.Context) (agent.CommandResult, error) {
		return s.d.Doors().Unlock(ctx, door, agent.RemoteUnlock{Command: localCommand(r), Duration: dur, Override: req.Override})
	})
}

func (s *Server) lockdown(w http.ResponseWriter, r *http.Request) {
	door, ok := s.door(w, r)
	var req SwitchRequest
	if !ok || !decodeBody(w, r, &req) {
		return
	}
	s.answer(w, r, func(ctx context.Context) (agent.CommandResult, error) {
		return s.d.Doors().Lockdown(ctx, door, agent.LockdownCommand{Command: localCommand(r), On: req.On})
	})
}

func (s *Server) officeMode(w http.ResponseWriter, r *http.Request) {
	door, ok := s.door(w, r)
	var req SwitchRequest
	if !ok || !decodeBody(w, r, &req) {
		return
	}
	s.answer(w, r, func(ctx context.Context) (agent.CommandResult, error) {
		return s.d.Doors().OfficeMode(ctx, door, agent.OfficeModeCommand{Command: localCommand(r), On: req.On, Until: req.Until})
	})
}

// answer runs a door command: 200 with the result when the door accepted it,
// 409 with the result when it refused, 503 when it did not reach the door.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, fn func(context.Context) (agent.CommandResult, error)) {
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

// enroll arms "enrol the next tap" and answers when a card was enrolled, the
// arm expired, or the caller gave up.
func (s *Server) enroll(w http.ResponseWriter, r *http.Request) {
	door, ok := s.door(w, r)
	var req EnrollRequest
	if !ok || !decodeBody(w, r, &req) {
		return
	}
	tag, err := agent.NormalizeTagNumber(req.TagNumber)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
		return
	}
	cmd := localCommand(r)
	// The operator gave up (Ctrl-C, --timeout), maybe before the door
	// answered: the next card must not be enrolled behind their back. A door
	// that cannot take the cancel (stopping) ends the arm at its timeout.
	cancelArm := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		s.d.Doors().CancelEnrolment(ctx, door, agent.CancelEnrolment{Command: cmd})
	}
	res, results, err := s.d.Doors().ArmEnrolment(r.Context(), door, agent.EnrolCommand{Command: cmd, TagNumber: tag})
	if err != nil {
		if r.Context().Err() != nil {
			cancelArm()
		}
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"the door did not take the command: " + err.Error()})
		return
	}
	if !res.Accepted {
		writeJSON(w, http.StatusConflict, EnrollResponse{Command: res})
		return
	}
	select {
	case out := <-results:
		resp := EnrollResponse{Command: res, Outcome: string(out.Outcome), TagNumber: out.TagNumber, Credential: out.Credential, User: out.User}
		if out.Err != nil {
			resp.Error = out.Err.Error()
		}
		writeJSON(w, http.StatusOK, resp)
	case <-r.Context().Done():
		cancelArm()
	}
}

// installReader runs a reader install and streams its steps as JSON lines;
// the last line is Done, with the error if it failed.
func (s *Server) installReader(w http.ResponseWriter, r *http.Request) {
	door, ok := s.door(w, r)
	if !ok {
		return
	}
	streamSteps(w, func(progress func(string)) error {
		return s.d.InstallReader(r.Context(), door, localCommand(r), progress)
	})
}

// readerAddress runs a reader's address change and streams its steps as
// JSON lines, like an install.
func (s *Server) readerAddress(w http.ResponseWriter, r *http.Request) {
	door, ok := s.door(w, r)
	var req ReaderAddressRequest
	if !ok || !decodeBody(w, r, &req) {
		return
	}
	streamSteps(w, func(progress func(string)) error {
		return s.d.SetReaderAddress(r.Context(), door, localCommand(r), req, progress)
	})
}

// readerOutput drives a reader's output: 200 once the reader took it, 409
// with the reason when it did not.
func (s *Server) readerOutput(w http.ResponseWriter, r *http.Request) {
	door, ok := s.door(w, r)
	var req ReaderOutputRequest
	if !ok || !decodeBody(w, r, &req) {
		return
	}
	if _, err := req.PulseFor(); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
		return
	}
	if err := s.d.ReaderOutput(r.Context(), door, localCommand(r), req); err != nil {
		writeJSON(w, http.StatusConflict, errorBody{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, req)
}

// streamSteps runs a reader operation, streaming its steps as InstallStep
// JSON lines; the last line is Done, with the error if it failed.
func streamSteps(w http.ResponseWriter, run func(progress func(string)) error) {
	send := streamLines(w)
	if err := run(func(step string) { send(InstallStep{Step: step}) }); err != nil {
		send(InstallStep{Done: true, Error: err.Error()})
		return
	}
	send(InstallStep{Done: true})
}

// card runs a card operation and streams its progress as JSON lines; the
// request's end (the operator gave up) ends the operation.
func (s *Server) card(w http.ResponseWriter, r *http.Request) {
	door, ok := s.door(w, r)
	var req CardRequest
	if !ok || !decodeBody(w, r, &req) {
		return
	}
	if !slices.Contains(CardOps, req.Op) {
		writeJSON(w, http.StatusBadRequest, errorBody{fmt.Sprintf("card operation %q: want one of %v", req.Op, CardOps)})
		return
	}
	if _, err := req.WaitFor(); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
		return
	}
	if req.Op == CardIssue {
		tag, err := agent.NormalizeTagNumber(req.TagNumber)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
			return
		}
		req.TagNumber = tag
		if req.Reissue && req.UID == "" {
			writeJSON(w, http.StatusBadRequest, errorBody{"reissue needs the card's UID: it replaces an issued card's identity, and must not hit a card tapped in the meantime"})
			return
		}
	}
	if req.UID != "" {
		uid, err := agent.ParseUID(req.UID)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{"uid: " + err.Error()})
			return
		}
		req.UID = strings.ToUpper(hex.EncodeToString(uid))
	}
	send := streamLines(w)
	rep, err := s.d.Card(r.Context(), door, localCommand(r), req, func(step string) { send(CardProgress{Step: step}) })
	if err != nil {
		send(CardProgress{Done: true, Error: err.Error()})
		return
	}
	send(CardProgress{Done: true, Report: &rep})
}

// streamLines starts an answer of JSON lines (an operation's progress) and
// returns what sends one, flushed at once so the operator sees each step.
// Any goroutine may send: a card operation's first step comes from the
// request's goroutine and the card's steps from the reader's, which starts
// as soon as the operator, having read the first, presents the card —
// possibly before that first write has returned. Unserialised, the two
// writes interleaved and broke the answer's chunked encoding.
func streamLines(w http.ResponseWriter) func(v any) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	var mu sync.Mutex
	return func(v any) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(v)
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func (s *Server) syncNow(w http.ResponseWriter, r *http.Request) {
	if err := s.d.SyncNow(); err != nil {
		writeJSON(w, http.StatusConflict, errorBody{err.Error()})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"sync": "triggered"})
}

// eventsBatch is how many events one read of the stream takes.
const eventsBatch = 1000

// events streams recorded events with seq > after as JSON lines: what is
// there, then, with follow=1, every new event until the client goes away or
// the daemon stops (the stream then simply ends). poll (a Go duration, at
// least EventsPollMin) sets how often the stream looks for new events.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		var err error
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			writeJSON(w, http.StatusBadRequest, errorBody{fmt.Sprintf("after %q: want a sequence number", v)})
			return
		}
	}
	poll := EventsPollDefault
	if v := q.Get("poll"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < EventsPollMin {
			writeJSON(w, http.StatusBadRequest, errorBody{fmt.Sprintf("poll %q: want a Go duration of at least %s", v, EventsPollMin)})
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
		evs, err := s.d.Events(r.Context(), after, eventsBatch)
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
		if len(evs) == eventsBatch {
			continue // more are waiting
		}
		if !follow {
			return
		}
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		}
	}
}
