package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/portier-io/portier/agent"
)

// Client talks to a running daemon over its control socket. Every call
// takes its deadline from ctx.
type Client struct {
	socket string
	http   *http.Client
	// Hint is added to "portier is not running": what else the caller may
	// have meant (e.g. the installed service's config).
	Hint string
}

// NewClient returns a client of the daemon listening on socket.
func NewClient(socket string) *Client {
	return &Client{socket: socket, http: &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}}
}

// Status asks for the gateway's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, pathStatus, nil, &st)
	return st, err
}

// Unlock unlocks door. A refusal is a result with Accepted false.
func (c *Client) Unlock(ctx context.Context, door string, req UnlockRequest) (agent.CommandResult, error) {
	var res agent.CommandResult
	err := c.do(ctx, http.MethodPost, doorPath(door, actionUnlock), req, &res)
	return res, err
}

// Lockdown turns lockdown on or off at door.
func (c *Client) Lockdown(ctx context.Context, door string, req SwitchRequest) (agent.CommandResult, error) {
	var res agent.CommandResult
	err := c.do(ctx, http.MethodPost, doorPath(door, actionLockdown), req, &res)
	return res, err
}

// OfficeMode turns office mode on or off at door.
func (c *Client) OfficeMode(ctx context.Context, door string, req SwitchRequest) (agent.CommandResult, error) {
	var res agent.CommandResult
	err := c.do(ctx, http.MethodPost, doorPath(door, actionOfficeMode), req, &res)
	return res, err
}

// Enroll arms enrolment at door and waits for the tap (or for the arm to
// expire). A refused command is a response whose Command is not accepted.
func (c *Client) Enroll(ctx context.Context, door string, req EnrollRequest) (EnrollResponse, error) {
	var res EnrollResponse
	err := c.do(ctx, http.MethodPost, doorPath(door, actionEnroll), req, &res)
	return res, err
}

// InstallReader has the daemon move door's new OSDP reader to a key of its
// own, calling progress with each step as the daemon reports it. It returns
// the install's error, or one about reaching the daemon.
func (c *Client) InstallReader(ctx context.Context, door string, progress func(string)) error {
	return c.steps(ctx, doorPath(door, actionReaderInstall), nil, "reader install", progress)
}

// SetReaderAddress has the daemon move door's OSDP reader to another
// address, calling progress with each step. It returns the operation's
// error, or one about reaching the daemon.
func (c *Client) SetReaderAddress(ctx context.Context, door string, req ReaderAddressRequest, progress func(string)) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("control request: %w", err)
	}
	return c.steps(ctx, doorPath(door, actionReaderAddress), bytes.NewReader(b), "reader address change", progress)
}

// ReaderOutput drives one output of door's OSDP reader; it returns once the
// reader took it, or why not.
func (c *Client) ReaderOutput(ctx context.Context, door string, req ReaderOutputRequest) error {
	return c.do(ctx, http.MethodPost, doorPath(door, actionReaderOutput), req, nil)
}

// steps posts to a reader operation that answers with InstallStep lines.
func (c *Client) steps(ctx context.Context, path string, body io.Reader, what string, progress func(string)) error {
	return c.stream(ctx, path, body, what, func(line []byte) (bool, error) {
		var st InstallStep
		if err := json.Unmarshal(line, &st); err != nil {
			return false, fmt.Errorf("control socket answer: %w", err)
		}
		switch {
		case st.Done && st.Error != "":
			return true, errors.New(st.Error)
		case st.Done:
			return true, nil
		case st.Step != "" && progress != nil:
			progress(st.Step)
		}
		return false, nil
	})
}

// Card runs a card operation at door's reader: progress gets each step as
// the daemon reports it; the report comes when the card is done. The
// operation fails with the daemon's error.
func (c *Client) Card(ctx context.Context, door string, req CardRequest, progress func(step string)) (CardReport, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return CardReport{}, fmt.Errorf("control request: %w", err)
	}
	var rep CardReport
	err = c.stream(ctx, doorPath(door, actionCard), bytes.NewReader(b), "card operation", func(line []byte) (bool, error) {
		var p CardProgress
		if err := json.Unmarshal(line, &p); err != nil {
			return false, fmt.Errorf("control socket answer: %w", err)
		}
		switch {
		case p.Done && p.Error != "":
			return true, errors.New(p.Error)
		case p.Done && p.Report != nil:
			rep = *p.Report
			return true, nil
		case p.Step != "" && progress != nil:
			progress(p.Step)
		}
		return false, nil
	})
	return rep, err
}

// stream posts to an operation that answers with JSON lines of progress and
// hands each line to line until it says the answer is complete. what names
// the operation in errors.
func (c *Client) stream(ctx context.Context, path string, body io.Reader, what string, line func([]byte) (last bool, err error)) error {
	resp, err := c.send(ctx, http.MethodPost, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return answerError(http.MethodPost, path, resp, data)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if last, err := line(sc.Bytes()); last || err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("portier stopped before the %s ended (see its log)", what)
}

// SyncNow asks the daemon to sync from Salto KS now.
func (c *Client) SyncNow(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, pathSync, nil, nil)
}

// Follow streams every event with seq > after as it is recorded, looking
// for new ones every poll, until ctx ends or the daemon stops.
func (c *Client) Follow(ctx context.Context, after int64, poll time.Duration) (*EventStream, error) {
	q := url.Values{"follow": {"1"}, "after": {strconv.FormatInt(after, 10)}, "poll": {poll.String()}}
	path := pathEvents + "?" + q.Encode()
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, answerError(http.MethodGet, path, resp, data)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	return &EventStream{body: resp.Body, sc: sc}, nil
}

// EventStream is a stream of events from Follow.
type EventStream struct {
	body io.ReadCloser
	sc   *bufio.Scanner
}

// ErrStreamEnded is Next's error when the daemon ended the stream (it
// stopped).
var ErrStreamEnded = errors.New("portier stopped: no more events to follow")

// Next returns the next event, waiting for it.
func (s *EventStream) Next() (agent.Event, error) {
	if !s.sc.Scan() {
		if err := s.sc.Err(); err != nil {
			return agent.Event{}, fmt.Errorf("event stream: %w", err)
		}
		return agent.Event{}, ErrStreamEnded
	}
	var ev agent.Event
	if err := json.Unmarshal(s.sc.Bytes(), &ev); err != nil {
		return agent.Event{}, fmt.Errorf("event stream: %w", err)
	}
	return ev, nil
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }

// do sends a request and decodes the JSON answer into out. Non-2xx answers
// become errors, except 409 (a door refused a command), whose body is the
// door's answer and is decoded into out when the caller expects one.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("control request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, rd)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 && !(resp.StatusCode == http.StatusConflict && out != nil) {
		return answerError(method, path, resp, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("control socket answer: %w", err)
		}
	}
	return nil
}

// send makes one request, turning "cannot connect" into advice.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://portier"+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne *net.OpError
		switch {
		case ctx.Err() != nil:
			// Ctrl-C or the caller's timeout: say so, not the HTTP
			// library's "Post \"http://portier/…\": context canceled".
			return nil, fmt.Errorf("stopped waiting for portier's answer (%v): %w", context.Cause(ctx), ctx.Err())
		case errors.As(err, &ne):
			return nil, &UnreachableError{Socket: c.socket, Err: ne.Err, Hint: c.Hint}
		}
		return nil, err
	}
	return resp, nil
}

// UnreachableError is a control socket nobody answers on, or that this user
// may not use.
type UnreachableError struct {
	Socket string
	Err    error
	Hint   string // Client.Hint
}

func (e *UnreachableError) Error() string {
	msg := fmt.Sprintf("portier is not running, or this user may not use its control socket %s (%v): start it with `systemctl start portier` or `portier run`, or run this as the portier user or a member of its group", e.Socket, e.Err)
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// answerError is the error a non-2xx answer stands for.
func answerError(method, path string, resp *http.Response, data []byte) error {
	var eb errorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
		return &answer{status: resp.StatusCode, msg: eb.Error}
	}
	return fmt.Errorf("%s %s: %s", method, path, resp.Status)
}

// answer is the daemon's error answer: its message, and for a door it does
// not have, errors.Is agent.ErrUnknownDoor (the CLI's exit status for an
// operator's mistake).
type answer struct {
	status int
	msg    string
}

func (a *answer) Error() string { return a.msg }

func (a *answer) Is(target error) bool {
	return target == agent.ErrUnknownDoor && a.status == http.StatusNotFound
}
