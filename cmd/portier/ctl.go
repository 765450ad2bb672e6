package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cmd/portier/config"
)

// controlClient talks to a running daemon over its control socket.
type controlClient struct {
	path string
	http *http.Client
}

func newControlClient(cfg *config.Config, timeout time.Duration) *controlClient {
	return &controlClient{path: cfg.ControlSocket, http: &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", cfg.ControlSocket)
		}},
	}}
}

// do sends a request and decodes the JSON answer into out. Non-2xx answers
// with an error body become errors; 409 (a door refused a command) decodes
// into out when the caller expects a command result.
func (c *controlClient) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, rd)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 && !(resp.StatusCode == http.StatusConflict && out != nil) {
		return resp.StatusCode, answerError(method, path, resp, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("control socket answer: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// stream GETs path and returns the open body of a 2xx answer, for answers
// that go on (event streams); the caller closes it.
func (c *controlClient) stream(ctx context.Context, path string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, answerError(http.MethodGet, path, resp, data)
	}
	return resp.Body, nil
}

// send makes one request, turning "cannot connect" into advice.
func (c *controlClient) send(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://portier"+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) {
			return nil, fmt.Errorf("portier is not running, or this user may not use its control socket %s (%v): start it with `systemctl start portier` or `portier run`, or run this as the portier user or a member of its group", c.path, ne.Err)
		}
		return nil, err
	}
	return resp, nil
}

// answerError is the error a non-2xx answer stands for.
func answerError(method, path string, resp *http.Response, data []byte) error {
	var eb errorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
		return errors.New(eb.Error)
	}
	return fmt.Errorf("%s %s: %s", method, path, resp.Status)
}

// clientSetup parses the common flags of the control commands.
func clientSetup(e *env, name, synopsis string, args []string, extra func(*flagSet)) (*config.Config, *flagSet, int, bool) {
	fs := &flagSet{FlagSet: newFlags(e, name, synopsis)}
	fs.cfgPath = fs.String("config", "", "config file (default: the embedded demo config)")
	fs.asJSON = fs.Bool("json", false, "print the answer as JSON")
	if extra != nil {
		extra(fs)
	}
	if code, ok := parseFlags(fs.FlagSet, args); !ok {
		return nil, nil, code, false
	}
	cfg, err := config.Load(*fs.cfgPath, e.getenv)
	if err != nil {
		return nil, nil, fail(e, exitUsage, "%v", err), false
	}
	return cfg, fs, 0, true
}

func cmdStatus(ctx context.Context, e *env, args []string) int {
	cfg, fs, code, ok := clientSetup(e, "status", "[--config FILE] [--json]", args, nil)
	if !ok {
		return code
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return exitUsage
	}
	var st Status
	if _, err := newControlClient(cfg, 10*time.Second).do(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return fail(e, exitFailed, "%v", err)
	}
	if *fs.asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
		return exitOK
	}
	w := e.stdout
	fmt.Fprintf(w, "portier %s on %s, up since %s (%s board)\n", st.Version, st.GatewayID, st.StartedAt.Local().Format("2006-01-02 15:04:05"), st.Driver)
	fmt.Fprintf(w, "site:   %s (%s), snapshot generation %d\n", st.Site.Name, st.Site.TimeZone, st.Generation)
	if st.Sync != nil {
		fmt.Fprint(w, "sync:   "+strings.TrimSpace(strings.ReplaceAll(st.Sync.Describe(e.now()), "\n", "\n        "))+"\n")
	}
	clock := "trusted"
	if !st.Clock.Trusted {
		clock = "NOT trusted: " + st.Clock.Reason
	}
	fmt.Fprintf(w, "clock:  %s (policy %s)\n", clock, st.Clock.Policy)
	fmt.Fprintf(w, "outbox: %d events waiting (last seq %d)\n", st.Outbox.Depth, st.Outbox.LastSeq)
	if m := st.MQTT; m != nil {
		if m.Connected {
			fmt.Fprintf(w, "mqtt:   connected (%s), %d events published, %d reconnects\n", strings.Join(m.Brokers, ", "), m.Published, m.Reconnects)
		} else {
			fmt.Fprintf(w, "mqtt:   NOT connected to %s since %s: %s (retrying; events wait in the outbox)\n",
				strings.Join(m.Brokers, ", "), m.Since.Local().Format("2006-01-02 15:04:05"), m.LastError)
		}
	}
	if st.Storage != nil {
		fmt.Fprintf(w, "disk:   %s free of %s\n", formatMB(st.Storage.FreeMB), formatMB(st.Storage.TotalMB))
	}
	if st.EventsHeld > 0 || st.EventsLost > 0 {
		fmt.Fprintf(w, "        THE OUTBOX REFUSES EVENTS: %d held in memory, %d lost (see the log; is the disk full?)\n", st.EventsHeld, st.EventsLost)
	}
	for _, d := range st.Doors {
		fmt.Fprintf(w, "door %-10s %s\n", d.Door, describeDoor(d))
	}
	return exitOK
}

func describeDoor(d agent.DoorStatus) string {
	parts := []string{"locked"}
	if !d.Locked {
		parts[0] = "UNLOCKED"
		if !d.UnlockedUntil.IsZero() {
			parts[0] += " until " + d.UnlockedUntil.Local().Format("15:04:05")
		}
	}
	if d.DoorOpen {
		parts = append(parts, "open")
	} else {
		parts = append(parts, "closed")
	}
	if d.Override != "" && d.Override != "none" {
		parts = append(parts, "override "+string(d.Override))
	}
	if d.OfficeMode != "" && d.OfficeMode != "off" {
		parts = append(parts, "office mode "+string(d.OfficeMode))
	}
	if !d.LockedOutUntil.IsZero() {
		parts = append(parts, "PIN locked out until "+d.LockedOutUntil.Local().Format("15:04:05"))
	}
	for _, a := range d.Alarms {
		parts = append(parts, "ALARM "+string(a))
	}
	if d.EnrolmentArmed {
		parts = append(parts, "waiting for a card to enrol")
	}
	if !d.Running {
		parts = append(parts, "NOT RUNNING")
	}
	return strings.Join(parts, ", ")
}

func printCommandResult(e *env, what string, res agent.CommandResult, asJSON bool) int {
	if asJSON {
		json.NewEncoder(e.stdout).Encode(res)
	} else if res.Accepted {
		fmt.Fprintf(e.stdout, "%s: done", what)
		if res.Detail != "" {
			fmt.Fprintf(e.stdout, " (%s)", res.Detail)
		}
		fmt.Fprintln(e.stdout)
	} else {
		fmt.Fprintf(e.stderr, "%s: refused: %s", what, res.Reason)
		if res.Detail != "" {
			fmt.Fprintf(e.stderr, " (%s)", res.Detail)
		}
		fmt.Fprintln(e.stderr)
	}
	if res.Accepted {
		return exitOK
	}
	return exitDenied
}

func cmdUnlock(ctx context.Context, e *env, args []string) int {
	var dur *time.Duration
	var override *bool
	cfg, fs, code, ok := clientSetup(e, "unlock", "DOOR [--duration D] [--override]", args, func(fs *flagSet) {
		dur = fs.Duration("duration", 0, "hold the door unlocked this long (default: one access-time pulse that relocks when the door closes)")
		override = fs.Bool("override", false, "unlock even in lockdown")
	})
	if !ok {
		return code
	}
	if fs.NArg() != 1 || *dur < 0 {
		fs.Usage()
		return exitUsage
	}
	req := unlockRequest{Override: *override}
	if *dur > 0 {
		req.Duration = dur.String()
	}
	var res agent.CommandResult
	if _, err := newControlClient(cfg, 15*time.Second).do(ctx, http.MethodPost, "/v1/doors/"+fs.Arg(0)+"/unlock", req, &res); err != nil {
		return fail(e, exitFailed, "%v", err)
	}
	return printCommandResult(e, "unlock "+fs.Arg(0), res, *fs.asJSON)
}

func cmdSwitch(name, path, what string) func(ctx context.Context, e *env, args []string) int {
	return func(ctx context.Context, e *env, args []string) int {
		var until *string
		cfg, fs, code, ok := clientSetup(e, name, "DOOR on|off", args, func(fs *flagSet) {
			if path == "office_mode" {
				until = fs.String("until", "", "with on: end office mode at this time (RFC 3339)")
			}
		})
		if !ok {
			return code
		}
		if fs.NArg() != 2 || (fs.Arg(1) != "on" && fs.Arg(1) != "off") {
			fs.Usage()
			return exitUsage
		}
		req := switchRequest{On: fs.Arg(1) == "on"}
		if until != nil && *until != "" {
			t, err := time.Parse(time.RFC3339, *until)
			if err != nil {
				return fail(e, exitUsage, "--until: %v", err)
			}
			req.Until = t
		}
		var res agent.CommandResult
		if _, err := newControlClient(cfg, 15*time.Second).do(ctx, http.MethodPost, "/v1/doors/"+fs.Arg(0)+"/"+path, req, &res); err != nil {
			return fail(e, exitFailed, "%v", err)
		}
		return printCommandResult(e, what+" "+fs.Arg(1)+" at "+fs.Arg(0), res, *fs.asJSON)
	}
}

func cmdEnroll(ctx context.Context, e *env, args []string) int {
	var tag *string
	var wait *time.Duration
	cfg, fs, code, ok := clientSetup(e, "enroll", "DOOR --tag-number N", args, func(fs *flagSet) {
		tag = fs.String("tag-number", "", "the Salto tag number of the card that will be tapped next")
		wait = fs.Duration("timeout", 70*time.Second, "how long to wait for the tap")
	})
	if !ok {
		return code
	}
	if fs.NArg() != 1 || *tag == "" {
		fs.Usage()
		return exitUsage
	}
	if _, err := agent.NormalizeTagNumber(*tag); err != nil {
		return fail(e, exitUsage, "--tag-number: %v", err)
	}
	if !*fs.asJSON {
		fmt.Fprintf(e.stderr, "tap the card with tag number %s on door %s…\n", *tag, fs.Arg(0))
	}
	var res enrollResponse
	status, err := newControlClient(cfg, *wait).do(ctx, http.MethodPost, "/v1/doors/"+fs.Arg(0)+"/enroll", enrollRequest{TagNumber: *tag}, &res)
	if err != nil {
		return fail(e, exitFailed, "%v", err)
	}
	if *fs.asJSON {
		json.NewEncoder(e.stdout).Encode(res)
	}
	if status == http.StatusConflict || !res.Command.Accepted {
		return printCommandResult(e, "enroll at "+fs.Arg(0), res.Command, false)
	}
	if res.Outcome != string(agent.EnrolEnrolled) {
		msg := res.Outcome
		if res.Error != "" {
			msg += ": " + res.Error
		}
		return fail(e, exitDenied, "enrolment %s", msg)
	}
	if !*fs.asJSON {
		holder := "no user holds this tag number yet; the card opens once a sync brings its holder"
		if res.User != nil {
			holder = "it opens for " + res.User.Name
		}
		fmt.Fprintf(e.stdout, "enrolled %s as tag %s: %s\n", res.Credential, res.TagNumber, holder)
	}
	return exitOK
}

func cmdSyncNow(ctx context.Context, e *env, args []string) int {
	cfg, fs, code, ok := clientSetup(e, "sync-now", "[--config FILE]", args, nil)
	if !ok {
		return code
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return exitUsage
	}
	if _, err := newControlClient(cfg, 10*time.Second).do(ctx, http.MethodPost, "/v1/sync", nil, nil); err != nil {
		return fail(e, exitFailed, "%v", err)
	}
	fmt.Fprintln(e.stdout, "sync triggered; `portier status` shows its result")
	return exitOK
}

// formatMB prints a size given in MB for people.
func formatMB(mb int64) string {
	if mb >= 10*1024 {
		return fmt.Sprintf("%d GB", mb/1024)
	}
	if mb >= 1024 {
		return fmt.Sprintf("%.1f GB", float64(mb)/1024)
	}
	return fmt.Sprintf("%d MB", mb)
}
