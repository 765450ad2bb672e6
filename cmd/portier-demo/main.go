// Command portier-demo is `make demo`: the whole door system on one laptop,
// with no hardware and no network. It starts a fake Salto KS serving the demo
// coworking site, runs the real portier daemon on simulated doors synced from
// it, and shows a live panel of decisions, relay changes and events while you
// tap cards, type PINs, open doors and press exit buttons. Without a terminal
// it plays a short guided tour instead.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"go.yaml.in/yaml/v3"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt/mqtttest"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
	"github.com/portier-io/portier/cloud/saltoks/sitefile"
	"github.com/portier-io/portier/cmd/portier/defaults"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bin := flag.String("portier", "bin/portier", "the portier binary to run")
	site := flag.String("site", "cmd/portier/defaults/demo-site.json", "the site the fake Salto KS serves")
	config := flag.String("config", "cmd/portier/defaults/portier.yaml", "the gateway config to start from (doors and sim wiring)")
	tour := flag.Bool("tour", false, "play the guided tour even on a terminal")
	flag.Parse()
	interactive := !*tour && isTerminal(os.Stdin)
	if err := run(ctx, os.Stdin, os.Stdout, *bin, *site, *config, interactive); err != nil {
		fmt.Fprintln(os.Stderr, "portier-demo:", err)
		os.Exit(1)
	}
}

// isTerminal asks the kernel whether f is a tty (/dev/null is a character
// device too, but no terminal).
func isTerminal(f *os.File) bool {
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}

func run(ctx context.Context, in io.Reader, w io.Writer, bin, sitePath, configPath string, interactive bool) error {
	// The panel prints events from its own goroutine: one lock for all output.
	out := &lockedWriter{w: w}
	dir, err := os.MkdirTemp("", "portier-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The agent log outlives the demo's state: after quit it is where to
	// look for what went wrong.
	logPath := filepath.Join(os.TempDir(), "portier-demo.log")

	// The cloud: a fake Salto KS on loopback, serving the demo site.
	raw, err := os.ReadFile(sitePath)
	if err != nil {
		return err
	}
	site, err := sitefile.Decode(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", sitePath, err)
	}
	fake, err := saltokstest.New(site, saltokstest.Options{RealTime: true})
	if err != nil {
		return err
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	// The dashboards' side: an MQTT broker on loopback (1883 when free).
	broker, brokerAddr, err := startBroker()
	if err != nil {
		return err
	}
	defer broker.Close()

	cfg, err := demoConfig(configPath, dir, srv.URL, site.Site.ID, fake.Options(), brokerAddr)
	if err != nil {
		return err
	}
	env := append(os.Environ(), "STATE_DIRECTORY="+dir)
	// PINs and enrolled cards are the gateway's own knowledge (Salto never
	// returns a PIN), so they come from the site file; everything else syncs.
	if msg, err := exec.CommandContext(ctx, bin, "import", "--config", cfg, sitePath).CombinedOutput(); err != nil {
		return fmt.Errorf("import: %v\n%s", err, msg)
	}
	if msg, err := exec.CommandContext(ctx, bin, "sync", "--config", cfg).CombinedOutput(); err != nil {
		return fmt.Errorf("sync from the fake Salto KS: %v\n%s", err, msg)
	}

	panel := &panel{w: out, seen: make(chan agent.Event, 256), interactive: interactive}
	// The agent's answers to sim input (an unknown command, an unknown door)
	// belong on the user's screen, not in the log.
	d, err := startDaemon(ctx, bin, cfg, dir, logPath, env, panel.simOutput())
	if err != nil {
		return err
	}
	defer d.stop()
	defer panel.stop()
	if err := panel.follow(ctx, bin, cfg, env); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nPortier demo — Hive Coworking Berlin, three simulated doors synced from a fake Salto KS.\n")
	fmt.Fprintf(out, "The lab takes only DESFire cards issued with Portier's public DEMO keys: never use them on a real site.\n")
	// The studio's OSDP reader is new: an installer moves it from its
	// install key to a key of its own, through the running agent.
	fmt.Fprintln(out, "The studio has a new OSDP reader on a simulated RS-485 line; the installer gives it a key of its own:")
	fmt.Fprintln(out, "  $ portier reader install --door studio")
	inst := exec.CommandContext(ctx, bin, "reader", "install", "--config", cfg, "--door", "studio")
	inst.Env = env
	msg, err := inst.CombinedOutput()
	for _, l := range strings.Split(strings.TrimSpace(string(msg)), "\n") {
		fmt.Fprintln(out, "  "+l)
	}
	if err != nil {
		return fmt.Errorf("reader install: %v", err)
	}
	fmt.Fprintf(out, "Agent log: %s (kept after quit)\n", logPath)
	host, port, _ := net.SplitHostPort(brokerAddr)
	fmt.Fprintf(out, "MQTT: the events are also on a broker at %s — watch them with\n  mosquitto_sub -h %s -p %s -t 'portier/#' -v\n\n", brokerAddr, host, port)
	if interactive {
		fmt.Fprint(out, help)
		err = d.interact(ctx, in, out, panel, bin, cfg, env)
	} else {
		err = d.tour(ctx, out, panel, bin, cfg, env)
	}
	if err != nil {
		return err
	}
	if err := d.stop(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nportier stopped; every relay is in its safe state.")
	return nil
}

const help = `Try (door ids: front = card or PIN, studio = card then PIN on an OSDP reader, lab = DESFire cards only):
  card front ada                   Ada's card, a DESFire EV2 (its fingerprint is recorded at its first tap)
  card front ada-copy              her UID copied onto a "magic" MIFARE Classic: refused (card_mismatch), card_alarm
  card lab ada                     the lab opens only for a card that proves the site's key: granted
  card lab ada-copy                the copy proves nothing: card_not_authenticated (not_desfire)
  card lab foreign                 another site's DESFire card: card_not_authenticated (wrong_key)
  card lab pulled                  a card taken away mid-authentication: card_read_failed
  issue lab 02301234               issue a blank card as Ada's replacement at the lab's reader,
                                   then present it: card lab blank (card lab ada is refused from then on)
  inspect lab                      what a card is (then present one: card lab blank)
  cards                            the named cards
  tap front DE:AD:BE:EF            Grace's card (a UID only; flex desk: weekdays 08–20)
  keys front 482915#               Ada's PIN at the front keypad
  tap front 04:66:77:88            Mallory's card (blocked in Salto KS)
  keys front 111111# (5 times)     wrong PINs: the keypad locks out
  open front                       open the door without a grant: forced_open at once,
                                   held_open if it stays open 8 s
  close front                      close it again: the alarms clear
  exit front                       press the exit button (then open front: no alarm)
  osdp studio card H10301 12 1001  Ada's fob at the studio's OSDP reader (Secure Channel):
                                   awaiting_pin, the reader blinks amber…
  osdp studio keys 482915#         …her PIN on the reader's keypad: granted, the LED turns green
  show studio                      the door's outputs and the reader's state, LED and buzzer
  osdp studio unplug / plug        cut the reader's cable: reader_offline within 8 s; and back
  osdp studio tamper on|off        open the reader's housing: tamper
  status                           the agent's status (doors, the reader's identity)
  help   this text      quit   stop
`

// startBroker runs an embedded MQTT broker on loopback, on 1883 when free.
func startBroker() (*mqtttest.Broker, string, error) {
	addr := "127.0.0.1:1883"
	if ln, err := net.Listen("tcp", addr); err != nil {
		addr = "127.0.0.1:0" // 1883 is taken (a real broker?): any free port
	} else {
		ln.Close()
	}
	b, err := mqtttest.Start(mqtttest.Options{Addr: addr})
	if err != nil {
		return nil, "", err
	}
	return b, b.Addr(), nil
}

func demoConfig(path, dir, saltoURL, siteID string, o saltokstest.Options, brokerAddr string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	for name, v := range map[string]string{"client.secret": o.ClientSecret, "salto.password": o.Password, "desfire.keys": string(defaults.DemoDESFireKeys)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			return "", err
		}
	}
	// The demo site's DESFire keys: public, for the demo only (the lab
	// takes only DESFire cards, and `portier card issue` needs them).
	cfg["cards"] = map[string]any{"desfire_key_file": filepath.Join(dir, "desfire.keys")}
	cfg["state_dir"] = dir
	// A laptop's clock is kept by its OS, whatever adjtimex says in a VM.
	cfg["clock_sync_check"] = "off"
	cfg["salto"] = map[string]any{
		"identity_url": saltoURL, "api_url": saltoURL, "site_id": siteID, "client_id": o.ClientID,
		"client_secret_file": filepath.Join(dir, "client.secret"), "username": o.Username,
		"password_file": filepath.Join(dir, "salto.password"), "sync_interval": "1m",
	}
	cfg["mqtt"] = map[string]any{"broker": "tcp://" + brokerAddr, "telemetry_interval": "30s"}
	hw, _ := cfg["hardware"].(map[string]any)
	if hw == nil {
		return "", fmt.Errorf("%s has no hardware section", path)
	}
	hw["sim_latch_file"] = filepath.Join(dir, "outputs.json")
	for _, dv := range cfg["doors"].([]any) {
		if door, ok := dv.(map[string]any); ok {
			door["held_open_time"] = "8s" // long enough to walk through, short enough to see the alarm
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "portier.yaml")
	return p, os.WriteFile(p, out, 0o600)
}

// daemon is the running portier.
type daemon struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	simOut io.WriteCloser
	once   sync.Once
	err    error
}

// startDaemon runs portier with sim input from a pipe: its standard output
// (the answers to sim commands) goes to simOut, its log to logPath.
func startDaemon(ctx context.Context, bin, cfg, dir, logPath string, env []string, simOut io.WriteCloser) (*daemon, error) {
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, "run", "--config", cfg, "--sim-input", "-")
	cmd.Env = append(env, "NOTIFY_SOCKET="+sock)
	cmd.Stdout, cmd.Stderr = simOut, logf
	d := &daemon{cmd: cmd, simOut: simOut}
	if d.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// Ready when the agent says so over sd_notify, as under systemd.
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		n, err := conn.Read(buf)
		if err != nil {
			d.stop()
			log, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("portier did not become ready: %v\n%s", err, log)
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			return d, nil
		}
	}
}

func (d *daemon) sim(line string) error {
	_, err := io.WriteString(d.stdin, line+"\n")
	return err
}

// stop sends SIGTERM (the agent puts every output in its safe state) and waits.
func (d *daemon) stop() error {
	d.once.Do(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		err := d.cmd.Wait()
		d.simOut.Close()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			d.err = fmt.Errorf("portier exited with status %d", ee.ExitCode())
		}
	})
	return d.err
}

func (d *daemon) interact(ctx context.Context, in io.Reader, out io.Writer, p *panel, bin, cfg string, env []string) error {
	lines := bufio.NewScanner(in)
	for {
		fmt.Fprint(out, prompt)
		if !lines.Scan() {
			return lines.Err()
		}
		line := strings.TrimSpace(lines.Text())
		switch {
		case line == "":
		case line == "quit" || line == "q":
			return nil
		case line == "help":
			fmt.Fprint(out, help)
		case line == "status":
			c := exec.CommandContext(ctx, bin, "status", "--config", cfg)
			c.Env, c.Stdout, c.Stderr = env, out, out
			c.Run()
		case strings.HasPrefix(line, "issue ") || strings.HasPrefix(line, "inspect "):
			if err := cardCommand(ctx, p.line, bin, cfg, env, strings.Fields(line), nil); err != nil {
				fmt.Fprintln(out, err)
			}
		default:
			if err := d.sim(line); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// cardCommand runs `portier card issue|inspect` in the background, as an
// operator at the gateway would: its steps appear on the screen while the
// person at the prompt presents the card with a sim command. asked (may be
// nil) is closed once the command asks for the card.
func cardCommand(ctx context.Context, line func(string), bin, cfg string, env []string, f []string, asked chan<- struct{}) error {
	var args []string
	switch {
	case f[0] == "issue" && len(f) == 3:
		args = []string{"card", "issue", f[1], "--tag-number", f[2]}
	case f[0] == "inspect" && len(f) == 2:
		args = []string{"card", "inspect", f[1]}
	default:
		return errors.New("usage: issue DOOR TAG_NUMBER | inspect DOOR")
	}
	c := exec.CommandContext(ctx, bin, append(args, "--config", cfg)...)
	c.Env = env
	r, w := io.Pipe()
	c.Stdout, c.Stderr = w, w
	if err := c.Start(); err != nil {
		return err
	}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if asked != nil && strings.Contains(sc.Text(), "present the card") {
				close(asked)
				asked = nil
			}
			line("  " + sc.Text())
		}
	}()
	go func() {
		c.Wait()
		w.Close()
	}()
	return nil
}

// tourStep is one thing a person does, and the event (door and type) that
// shows the answer.
type tourStep struct {
	say    string
	pause  time.Duration // a person's pace before acting (a look: after it)
	sim    string
	door   string
	expect []agent.EventType // every event the step causes, so none lands under the next step
	card   []string          // an operator's `portier card` command, started first
}

func (d *daemon) tour(ctx context.Context, out io.Writer, p *panel, bin, cfg string, env []string) error {
	steps := []tourStep{
		{"Ada taps her card (a DESFire EV2) at the front door", 0, "card front ada", "front", []agent.EventType{agent.EventRelayOn, agent.EventCardLearned}, nil},
		{"…and the strike relocks after the access time", 0, "", "front", []agent.EventType{agent.EventRelayOff}, nil},
		{"Ada types her PIN at the front keypad", 0, "keys front 482915#", "front", []agent.EventType{agent.EventAccessGranted, agent.EventRelayOn}, nil},
		{"Mallory (blocked in Salto KS) taps her card", 0, "tap front 04:66:77:88", "front", []agent.EventType{agent.EventAccessDenied, agent.EventCardLearned}, nil},
		{"Someone types a PIN nobody has", 0, "keys front 111111#", "front", []agent.EventType{agent.EventAccessDenied}, nil},
		{"The studio wants card and PIN: Ada presents her fob to its OSDP reader (encrypted, supervised)…", 0, "osdp studio card H10301 12 1001", "studio", []agent.EventType{agent.EventAwaitingPIN}, nil},
		{"…the reader blinks amber for her PIN", 500 * time.Millisecond, "show studio", "", nil, nil},
		{"…and she types it on the reader's keypad", 0, "osdp studio keys 482915#", "studio", []agent.EventType{agent.EventAccessGranted, agent.EventRelayOn}, nil},
		{"…the reader's LED turns green", 500 * time.Millisecond, "show studio", "", nil, nil},
		{"The front door relocks", 0, "", "front", []agent.EventType{agent.EventRelayOff}, nil},
		{"A little later, the front door is pushed open without a grant", 2 * time.Second, "open front", "front", []agent.EventType{agent.EventDoorOpened, agent.EventForcedOpen}, nil},
		{"…and closed again", 0, "close front", "front", []agent.EventType{agent.EventDoorClosed, agent.EventForcedOpenCleared}, nil},
		{"Someone inside presses the exit button", 0, "exit front", "front", []agent.EventType{agent.EventExitPressed, agent.EventRelayOn}, nil},
		{"Someone cuts the studio reader's cable: the gateway notices within OSDP's 8 s", 0, "osdp studio unplug", "studio", []agent.EventType{agent.EventReaderOffline}, nil},
		{"…and it is plugged back in: the secure channel is set up again", 0, "osdp studio plug", "studio", []agent.EventType{agent.EventReaderOnline}, nil},
		{"Someone presents Ada's UID copied onto a \"magic\" MIFARE Classic: it answers unlike her card", 0, "card front ada-copy", "front", []agent.EventType{agent.EventAccessDenied, agent.EventCardAlarm}, nil},
		{"The lab opens only for a DESFire card that proves the site's key: Ada's does", 0, "card lab ada", "lab", []agent.EventType{agent.EventAccessGranted, agent.EventRelayOn, agent.EventCardLearned}, nil},
		{"…the copy proves nothing there", 0, "card lab ada-copy", "lab", []agent.EventType{agent.EventAccessDenied}, nil},
		{"Ada lost her card: an admin issues a blank one as its replacement at the lab's reader", 0, "card lab blank", "lab", []agent.EventType{agent.EventCardIssued},
			[]string{"issue", "lab", "02301234"}},
		{"The new card opens the lab", 0, "card lab blank", "lab", []agent.EventType{agent.EventAccessGranted}, nil},
		{"…and the lost one no longer does", 0, "card lab ada", "lab", []agent.EventType{agent.EventAccessDenied}, nil},
	}
	for _, s := range steps {
		fmt.Fprintf(out, "\n▶ %s\n", s.say)
		if s.expect != nil {
			time.Sleep(s.pause)
		}
		if s.card != nil {
			fmt.Fprintf(out, "  $ portier card %s %s --tag-number %s\n", s.card[0], s.card[1], s.card[2])
			asked := make(chan struct{})
			if err := cardCommand(ctx, p.line, bin, cfg, env, s.card, asked); err != nil {
				return err
			}
			select {
			case <-asked:
			case <-time.After(20 * time.Second):
				return errors.New("portier card issue did not ask for the card (see the agent log)")
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if s.sim != "" {
			fmt.Fprintf(out, "  door> %s\n", s.sim)
			if err := d.sim(s.sim); err != nil {
				return err
			}
		}
		if s.expect == nil {
			time.Sleep(s.pause) // a look at the door: its answer comes on the panel
			continue
		}
		if err := p.await(ctx, s.door, s.expect, 20*time.Second); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "\nRun `make demo` in a terminal to tap and type yourself.")
	return nil
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// prompt is what the interactive demo shows when it waits for a command.
const prompt = "door> "

// panel prints the agent's events as they are recorded. Interactive, each
// line clears the prompt it interrupts and draws it again below, so the
// prompt stays the last thing on the screen.
type panel struct {
	w           io.Writer
	interactive bool
	seen        chan agent.Event
	done        chan struct{}
	quit        context.CancelFunc
}

// line prints one line of the panel.
func (p *panel) line(s string) {
	if p.interactive {
		fmt.Fprint(p.w, "\r\033[K"+s+"\n"+prompt)
		return
	}
	fmt.Fprintln(p.w, s)
}

// simOutput is where the agent's answers to sim commands go: each line on
// the panel, marked.
func (p *panel) simOutput() io.WriteCloser {
	r, w := io.Pipe()
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			switch t := strings.TrimSpace(sc.Text()); {
			case t == "":
			case strings.HasPrefix(t, "error:"):
				p.line("  ! " + t)
			default:
				p.line("    " + t) // an answer: show's outputs, help
			}
		}
	}()
	return w
}

func (p *panel) follow(ctx context.Context, bin, cfg string, env []string) error {
	ctx, p.quit = context.WithCancel(ctx)
	p.done = make(chan struct{})
	c := exec.CommandContext(ctx, bin, "events", "--config", cfg, "--follow", "--json", "--limit", "100000", "--poll", "50ms")
	c.Env = env
	stdout, err := c.StdoutPipe()
	if err != nil {
		return err
	}
	if err := c.Start(); err != nil {
		return err
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e agent.Event
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			p.print(e)
			select {
			case p.seen <- e:
			default:
			}
		}
		c.Wait()
	}()
	return nil
}

// stop ends the follower and waits until the panel printed its last line.
func (p *panel) stop() {
	if p.quit != nil {
		p.quit()
		<-p.done
	}
}

// await waits until an event of each of types at door has been shown, in
// any order.
func (p *panel) await(ctx context.Context, door string, types []agent.EventType, limit time.Duration) error {
	pending := slices.Clone(types)
	deadline := time.After(limit)
	for len(pending) > 0 {
		select {
		case e := <-p.seen:
			if i := slices.Index(pending, e.Type); i >= 0 && e.Door == door {
				pending = slices.Delete(pending, i, i+1)
			}
		case <-deadline:
			return fmt.Errorf("no %v event at %s within %s (see the agent log)", pending, door, limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (p *panel) print(e agent.Event) {
	mark := "  "
	switch e.Type {
	case agent.EventAccessGranted:
		mark = "✔ "
	case agent.EventAccessDenied, agent.EventForcedOpen, agent.EventHeldOpen, agent.EventLockoutStarted, agent.EventCardAlarm, agent.EventReaderOffline:
		mark = "✘ "
	case agent.EventRelayOn:
		mark = "🔓"
	case agent.EventRelayOff:
		mark = "🔒"
	}
	line := fmt.Sprintf("  %s %s  %-7s %-18s", mark, e.Time.Local().Format("15:04:05"), e.Door, e.Type)
	if e.Reason != "" && e.Reason != agent.ReasonGranted {
		line += " " + string(e.Reason)
	}
	if e.User != nil {
		line += "  " + e.User.Name
	}
	if e.Group != nil {
		line += " (" + e.Group.Name + ")"
	}
	if e.Credential != "" {
		line += "  " + e.Credential
	}
	if e.Detail != "" && e.Type != agent.EventAccessGranted {
		line += "  — " + e.Detail
	}
	p.line(line)
}
