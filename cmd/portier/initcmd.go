package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cmd/portier/config"
	"github.com/portier-io/portier/hal"
)

// Environment variables init reads secrets from, so they never appear in a
// command line (which every user can read in ps).
const (
	envSaltoPassword     = "PORTIER_SALTO_PASSWORD"
	envSaltoClientSecret = "PORTIER_SALTO_CLIENT_SECRET"
	envMQTTPassword      = "PORTIER_MQTT_PASSWORD"
)

// initAnswers is everything init asks; flags fill it, prompts complete it.
type initAnswers struct {
	gatewayID, stateDir           string
	doorID, doorName, mode        string
	wiring, driver                string
	locks, groups                 string // comma-separated Salto ids
	identityURL, apiURL, siteID   string
	clientID, username            string
	password, clientSecret        string // secrets: never printed
	passwordFile, clientSecretKey string // where the secrets go
	mqttBroker, mqttUsername      string
	mqttSiteID                    string
	mqttPassword                  string // secret: never printed
	mqttPasswordFile              string
}

// initFlags are init's flags besides the answers.
type initFlags struct {
	config, secretsDir, owner string
	force, check, interactive bool
}

// cmdInit writes a config and its secret files for a new gateway.
func cmdInit(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "init", "[--config FILE] [--force] [--check] [flags]")
	var f initFlags
	var a initAnswers
	fs.StringVar(&f.config, "config", config.PackagedPath, "write the config to `file`")
	fs.StringVar(&f.secretsDir, "secrets-dir", "", "`dir` for the Salto secret files (default: the config file's directory)")
	fs.StringVar(&f.owner, "owner", "", "`user` that must read the secret files and state dir (default: portier, when run as root and that user exists)")
	fs.BoolVar(&f.force, "force", false, "overwrite an existing config and secret files (the PIN key is never replaced)")
	fs.BoolVar(&f.check, "check", false, "sign in to Salto KS and look the site, locks and access groups up before writing anything")
	fs.BoolVar(&f.interactive, "interactive", false, "ask for every value no flag gave (default: when standard input is a terminal)")
	fs.StringVar(&a.gatewayID, "gateway-id", "", "gateway `id`, unique per site (default: the host name)")
	fs.StringVar(&a.stateDir, "state-dir", "/var/lib/portier", "state `dir` (cache, outbox, PIN key)")
	fs.StringVar(&a.doorID, "door", "front", "door `id`")
	fs.StringVar(&a.doorName, "door-name", "Front door", "door `name`")
	fs.StringVar(&a.mode, "mode", "", "door `mode`: card, pin, card_or_pin or card_and_pin (default: card for mfrc522, card_or_pin for wiegand)")
	fs.StringVar(&a.wiring, "wiring", "mfrc522", "`setup` of docs/install.md: mfrc522 (reader, relay, door contact, exit button) or wiegand (reader with keypad, relay, door contact, exit button)")
	fs.StringVar(&a.driver, "driver", hal.DriverPeriph, "hardware `driver`: periph (the Pi's GPIO and SPI) or sim (simulated)")
	fs.StringVar(&a.locks, "salto-locks", "", "Salto KS lock `ids` that open the door, comma-separated")
	fs.StringVar(&a.groups, "salto-groups", "", "Salto KS access group `ids` whose members open the door, comma-separated")
	fs.StringVar(&a.identityURL, "salto-identity-url", "", "Salto KS identity server `url`, e.g. https://identity.eu.my-clay.com")
	fs.StringVar(&a.apiURL, "salto-api-url", "", "Salto KS API `url`, e.g. https://connect.my-clay.com")
	fs.StringVar(&a.siteID, "salto-site-id", "", "Salto KS site `id`")
	fs.StringVar(&a.clientID, "salto-client-id", "", "Salto KS API client `id`")
	fs.StringVar(&a.mqttBroker, "mqtt-broker", "", "MQTT broker `url`, e.g. ssl://broker.example:8883 (docs/mqtt.md)")
	fs.StringVar(&a.mqttUsername, "mqtt-username", "", "MQTT `user`; the password comes from $"+envMQTTPassword+" or a prompt")
	fs.StringVar(&a.mqttSiteID, "mqtt-site-id", "", "site `id` in the MQTT topics (default: the Salto KS site id)")
	fs.StringVar(&a.username, "salto-username", "", "the gateway's dedicated Salto KS `user`; the password comes from $"+envSaltoPassword+" or a prompt, the client secret from $"+envSaltoClientSecret+" or a prompt")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return wrongArgs(e, fs, 0)
	}
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	if !given["interactive"] {
		f.interactive = isInteractive(e.stdin)
	}
	if f.secretsDir == "" {
		f.secretsDir = filepath.Dir(f.config)
	}
	// Paths in the config are relative to the config's folder: the secret
	// files are written there as absolute paths, whatever the working
	// directory was.
	secretsDir, err := filepath.Abs(f.secretsDir)
	if err != nil {
		return fail(e, exitUsage, "init: --secrets-dir: %v", err)
	}
	a.password, a.clientSecret = e.getenv(envSaltoPassword), e.getenv(envSaltoClientSecret)
	a.mqttPassword = e.getenv(envMQTTPassword)

	owner, err := initOwner(f.owner, given["owner"])
	if err != nil {
		return fail(e, exitUsage, "init: %v", err)
	}
	// Refuse before the first question: every file init may write.
	secretFiles := map[string]string{"salto-password": filepath.Join(secretsDir, "salto-password"),
		"salto-client-secret": filepath.Join(secretsDir, "salto-client-secret"), "mqtt-password": filepath.Join(secretsDir, "mqtt-password")}
	if !f.force {
		if msg := existingFiles(f.config, secretFiles["salto-password"], secretFiles["salto-client-secret"], secretFiles["mqtt-password"]); msg != "" {
			return fail(e, exitUsage, "init: %s", msg)
		}
	}
	p := &prompter{e: e, in: bufio.NewReader(e.stdin), ask: f.interactive}
	if err := a.complete(p, given, f.check); err != nil {
		return fail(e, exitUsage, "init: %v", err)
	}
	a.passwordFile = secretFiles["salto-password"]
	if a.clientSecret != "" {
		a.clientSecretKey = secretFiles["salto-client-secret"]
	}
	if a.mqttPassword != "" {
		a.mqttPasswordFile = secretFiles["mqtt-password"]
	}
	if f.check {
		if a.identityURL == "" {
			return fail(e, exitUsage, "init: --check needs the salto settings (--salto-identity-url and the others)")
		}
		if code := checkSaltoAccess(ctx, e, &a); code != exitOK {
			return code
		}
	}
	cfgText, err := a.render()
	if err != nil {
		return fail(e, exitFailed, "init: %v", err)
	}
	// The config must pass the config's own checks before a byte is
	// written (each answer went through the same checks already).
	if _, err := config.Parse(cfgText, f.config); err != nil {
		return fail(e, exitUsage, "init: the config would be invalid:\n%v", err)
	}
	files := []string{f.config}
	if a.identityURL != "" {
		files = append(files, a.passwordFile)
		if a.clientSecretKey != "" {
			files = append(files, a.clientSecretKey)
		}
	}
	if a.mqttPasswordFile != "" {
		files = append(files, a.mqttPasswordFile)
	}
	// All or nothing: the files are staged, put in place together and
	// checked as run will check them; any failure takes back what was
	// written and puts back what was replaced.
	w := &fileSet{}
	err = a.write(w, f, owner, cfgText)
	if err == nil {
		err = w.commit()
	}
	var r config.Report
	if err == nil {
		r = config.Check(f.config, e.getenv)
		problems := append(r.Problems, r.Lacks("run")...)
		for _, p := range problems {
			fmt.Fprintln(e.stderr, p)
		}
		if len(problems) > 0 {
			w.undo()
			return fail(e, exitUsage, "init: the written config does not pass check-config --for run: nothing was kept")
		}
	}
	if err != nil {
		w.undo()
		return fail(e, exitFailed, "init: %v (nothing was kept)", err)
	}
	if err := w.done(); err != nil {
		return fail(e, exitFailed, "init: the files are in place, but storing them durably failed: %v", err)
	}
	for _, path := range files {
		fmt.Fprintf(e.stdout, "wrote %s\n", path)
	}
	fmt.Fprintf(e.stdout, "%s: OK (%s)\n", f.config, r.Config.Summary())
	start := "sudo systemctl enable --now portier"
	if abs, err := filepath.Abs(f.config); err != nil || abs != config.PackagedPath {
		// The packaged unit reads only its own config.
		start = fmt.Sprintf("portier run --config %s (the service reads %s, not this file)", f.config, config.PackagedPath)
	}
	fmt.Fprintf(e.stdout, "Next: portier pinout --config %s (wiring), sudo -u portier portier doctor --config %s (hardware), %s\n", f.config, f.config, start)
	return exitOK
}

// existingFiles says which of paths exist, with advice, or "".
func existingFiles(cfgPath string, paths ...string) string {
	var exist []string
	for _, path := range append([]string{cfgPath}, paths...) {
		if _, err := os.Lstat(path); err == nil {
			exist = append(exist, path)
		}
	}
	if len(exist) == 0 {
		return ""
	}
	verb := "exists"
	if len(exist) > 1 {
		verb = "exist"
	}
	hint := ""
	if b, err := os.ReadFile(cfgPath); err == nil && bytes.Contains(b, []byte(config.PlaceholderLock)) {
		hint = fmt.Sprintf(" (%s still maps the template's placeholder lock: it looks like the package's template, which --force replaces)", cfgPath)
	}
	return fmt.Sprintf("%s already %s: not overwritten (use --force to replace them; the PIN key is kept either way)%s", strings.Join(exist, ", "), verb, hint)
}

// fileOwner is who the secret files and the state dir belong to; nil keeps
// the current user.
type fileOwner struct {
	name     string
	uid, gid int
}

// initOwner resolves --owner. Without it, a root init hands the files to the
// packaged service user, because a root-owned 0600 secret is useless to it.
func initOwner(name string, given bool) (*fileOwner, error) {
	if !given {
		if os.Geteuid() != 0 {
			return nil, nil
		}
		name = "portier"
	}
	if name == "" {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		if !given {
			return nil, nil // root without the package installed: keep root
		}
		return nil, fmt.Errorf("--owner: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("--owner %s: uid %q gid %q are not numbers", name, u.Uid, u.Gid)
	}
	return &fileOwner{name: name, uid: uid, gid: gid}, nil
}

// complete validates the flag values and asks for what is missing; with
// check (init --check) a site uid may stand for the site id, as Salto KS
// resolves it.
func (a *initAnswers) complete(p *prompter, given map[string]bool, check bool) error {
	if a.gatewayID == "" {
		a.gatewayID = defaultGatewayID()
	}
	steps := []struct {
		flag, question string
		val            *string
		check          func(string) error
		ask            bool // ask even when the default is fine
	}{
		{"gateway-id", "Gateway id, unique per site (" + mqtt.IDRule + ")", &a.gatewayID, config.CheckID, true},
		{"state-dir", "State directory", &a.stateDir, checkAbs, false},
		{"door", "Door id (" + mqtt.IDRule + ")", &a.doorID, config.CheckID, true},
		{"door-name", "Door name", &a.doorName, nonEmpty, true},
		{"wiring", "Wiring (mfrc522 or wiegand, see docs/install.md)", &a.wiring, oneOf("mfrc522", "wiegand"), true},
		{"driver", "Hardware driver (periph or sim)", &a.driver, oneOf("periph", "sim"), false},
	}
	for _, s := range steps {
		if err := p.value(s.flag, s.question, s.val, s.check, s.ask && !given[s.flag]); err != nil {
			return err
		}
	}
	if a.mode == "" {
		a.mode = "card"
		if a.wiring == "wiegand" {
			a.mode = "card_or_pin"
		}
	}
	if err := p.value("mode", "Door mode (card, pin, card_or_pin, card_and_pin)", &a.mode, checkMode, !given["mode"]); err != nil {
		return err
	}
	if err := p.value("salto-locks", "Salto KS lock ids that open the door (comma-separated, may be empty)", &a.locks, checkIDList, !given["salto-locks"]); err != nil {
		return err
	}
	// A door with no lock and no group opens for nobody: with no lock
	// given, the groups are asked until there is one.
	groupsQ, groupsCheck := "Salto KS access group ids whose members open the door (comma-separated, may be empty)", checkIDList
	if len(splitList(a.locks)) == 0 {
		groupsQ = "Salto KS access group ids whose members open the door (comma-separated; at least one, as no lock was given)"
		groupsCheck = func(s string) error {
			if len(splitList(s)) == 0 {
				return errors.New("the door needs at least one Salto KS lock or access group id (the Salto KS portal shows them), or nobody could open it: give --salto-locks or --salto-groups")
			}
			return checkIDList(s)
		}
	}
	if err := p.value("salto-groups", groupsQ, &a.groups, groupsCheck, !given["salto-groups"]); err != nil {
		return err
	}
	if err := a.completeSalto(p, given, check); err != nil {
		return err
	}
	return a.completeMQTT(p)
}

// completeMQTT fills the mqtt: section: a broker, optionally a user and
// password, and a site id for the topics when there is no Salto site.
func (a *initAnswers) completeMQTT(p *prompter) error {
	if err := p.value("mqtt-broker", "MQTT broker URL, e.g. ssl://broker.example:8883 (empty: no MQTT)", &a.mqttBroker, optional(checkBroker), a.mqttBroker == "" && a.mqttUsername == ""); err != nil {
		return err
	}
	if a.mqttBroker == "" {
		if a.mqttUsername != "" || a.mqttSiteID != "" {
			return errors.New("--mqtt-broker: required with --mqtt-username or --mqtt-site-id")
		}
		return nil
	}
	if a.siteID == "" {
		if err := p.value("mqtt-site-id", "Site id for the MQTT topics, no Salto KS site to take it from ("+mqtt.IDRule+")", &a.mqttSiteID, config.CheckID, false); err != nil {
			return err
		}
	}
	if err := p.value("mqtt-username", "MQTT username (empty: none)", &a.mqttUsername, func(string) error { return nil }, a.mqttUsername == ""); err != nil {
		return err
	}
	if a.mqttUsername == "" {
		return nil
	}
	return p.secret(envMQTTPassword, "MQTT password", &a.mqttPassword, true)
}

// completeSalto fills the salto: section: all of it or none of it.
func (a *initAnswers) completeSalto(p *prompter, given map[string]bool, check bool) error {
	set := a.identityURL != "" || a.apiURL != "" || a.siteID != "" || a.clientID != "" || a.username != ""
	if !set && p.ask {
		if err := p.value("salto-identity-url", "Salto KS identity server URL, e.g. https://identity.eu.my-clay.com (empty: no Salto sync)", &a.identityURL, optional(saltoks.CheckIdentityURL), true); err != nil {
			return err
		}
		set = a.identityURL != ""
	}
	if !set {
		return nil
	}
	siteQuestion, siteCheck := "Salto KS site id (the site's UUID)", checkGUID
	if check {
		siteQuestion = "Salto KS site id (the site's UUID, or its uid such as DE0000000001: --check looks it up)"
		siteCheck = func(s string) error {
			if saltoks.IsSiteUID(s) {
				return nil
			}
			return checkGUID(s)
		}
	} else {
		siteCheck = func(s string) error { _, err := saltoks.ParseSiteID(s); return err }
	}
	steps := []struct {
		flag, question string
		val            *string
		check          func(string) error
	}{
		{"salto-identity-url", "Salto KS identity server URL, e.g. https://identity.eu.my-clay.com", &a.identityURL, saltoks.CheckIdentityURL},
		{"salto-api-url", "Salto KS API URL, e.g. https://connect.my-clay.com", &a.apiURL, saltoks.CheckAPIURL},
		{"salto-site-id", siteQuestion, &a.siteID, siteCheck},
		{"salto-client-id", "Salto KS client id", &a.clientID, nonEmpty},
		{"salto-username", "Salto KS username of this gateway", &a.username, nonEmpty},
	}
	for _, s := range steps {
		if err := p.value(s.flag, s.question, s.val, s.check, false); err != nil {
			return err
		}
	}
	if err := p.secret(envSaltoPassword, "Salto KS password", &a.password, true); err != nil {
		return err
	}
	return p.secret(envSaltoClientSecret, "Salto KS client secret (empty if the client has none)", &a.clientSecret, false)
}

// checkSaltoAccess signs in with the answers and looks the site, the door's
// locks and its access groups up, so a typo is found before the gateway is
// left on its own.
func checkSaltoAccess(ctx context.Context, e *env, a *initAnswers) int {
	c, err := saltoks.New(saltoks.Config{IdentityURL: a.identityURL, APIURL: a.apiURL, ClientID: a.clientID, ClientSecret: a.clientSecret,
		Grant: saltoks.GrantPassword, Username: a.username, Password: a.password, RequestTimeout: 15 * time.Second, MaxAttempts: 2,
		Logger: slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		return fail(e, exitUsage, "init --check: %v", err)
	}
	if saltoks.IsSiteUID(a.siteID) {
		if code := resolveSiteUID(ctx, e, c, a); code != exitOK {
			return code
		}
	}
	site, err := c.Site(ctx, a.siteID)
	if err != nil {
		return fail(e, exitFailed, "init --check: Salto KS site %s: %v", a.siteID, err)
	}
	fmt.Fprintf(e.stdout, "Salto KS: signed in as %s; site %s (time zone %s, subscription valid: %t)\n", a.username, site.ID, site.TimeZone, site.SubscriptionValid)
	door := agent.Door{ID: a.doorID, Name: a.doorName, LockIDs: splitList(a.locks), GroupIDs: splitList(a.groups)}
	var locks []saltoks.Lock
	var groups []saltoks.AccessGroup
	if len(door.LockIDs) > 0 {
		if locks, err = c.Locks(ctx, a.siteID); err != nil {
			return fail(e, exitFailed, "init --check: locks of site %s: %v", a.siteID, err)
		}
	}
	if len(door.GroupIDs) > 0 {
		if groups, err = c.AccessGroups(ctx, a.siteID); err != nil {
			return fail(e, exitFailed, "init --check: access groups of site %s: %v", a.siteID, err)
		}
	}
	if unknown := saltoks.CheckDoors([]agent.Door{door}, locks, groups); len(unknown) > 0 {
		var missing, close []string
		for _, u := range unknown {
			missing = append(missing, u.Kind+" "+u.ID)
			if len(u.Close) > 0 {
				close = append(close, fmt.Sprintf("\n  for %s %s the site has %s", u.Kind, u.ID, u.Matches()))
			}
		}
		return fail(e, exitUsage, "init --check: site %s has no %s%s", a.siteID, strings.Join(missing, ", no "), strings.Join(close, ""))
	}
	fmt.Fprintf(e.stdout, "Salto KS: the door's locks and access groups exist\n")
	return exitOK
}

// resolveSiteUID replaces a site uid (what the Salto KS app shows) by the
// site's id, from the sites the user can reach.
func resolveSiteUID(ctx context.Context, e *env, c *saltoks.Client, a *initAnswers) int {
	sites, err := c.Sites(ctx)
	if err != nil {
		return fail(e, exitFailed, "init --check: list the sites to look site uid %s up: %v", a.siteID, err)
	}
	var known []string
	for _, s := range sites {
		if strings.EqualFold(s.SiteUID, a.siteID) {
			fmt.Fprintf(e.stdout, "Salto KS: site uid %s is site id %s (%s)\n", s.SiteUID, saltoks.CanonicalID(s.ID), s.CustomerReference)
			a.siteID = saltoks.CanonicalID(s.ID)
			return exitOK
		}
		known = append(known, fmt.Sprintf("%s %q: site id %s", s.SiteUID, s.CustomerReference, saltoks.CanonicalID(s.ID)))
	}
	return fail(e, exitUsage, "init --check: %s is no site uid of %s's sites (%s)", a.siteID, a.username, strings.Join(known, "; "))
}

// configTemplate is the config init writes: the answers plus the wiring of
// docs/install.md's pictures, commented like packaging/portier.yaml.
var configTemplate = template.Must(template.New("portier.yaml").Funcs(template.FuncMap{"list": splitList, "q": strconv.Quote}).Parse(
	`# Portier configuration written by portier init. The package's example
# config, {{.Example}} (packaging/portier.yaml in the
# source), and docs/install.md describe every key.
gateway_id: {{q .GatewayID}}
state_dir: {{q .StateDir}}

doors:
  - id: {{q .DoorID}}
    name: {{q .DoorName}}
    mode: {{.Mode}}
{{- with list .Locks}}
    salto_locks: [{{range $i, $l := .}}{{if $i}}, {{end}}{{q $l}}{{end}}]
{{- end}}
{{- with list .Groups}}
    salto_access_groups: [{{range $i, $g := .}}{{if $i}}, {{end}}{{q $g}}{{end}}]
{{- end}}
{{if .IdentityURL}}
salto:
  identity_url: {{q .IdentityURL}}
  api_url: {{q .APIURL}}
  site_id: {{q .SiteID}}
  client_id: {{q .ClientID}}
{{- if .ClientSecretFile}}
  client_secret_file: {{q .ClientSecretFile}}
{{- end}}
  grant: password
  username: {{q .Username}}
  password_file: {{q .PasswordFile}}
{{else}}
# No salto: section: this gateway decides from what portier import loads.
{{end}}
{{- if .MQTTBroker}}
mqtt:
  broker: {{q .MQTTBroker}}
{{- if .MQTTSiteID}}
  site_id: {{q .MQTTSiteID}}
{{- end}}
{{- if .MQTTUsername}}
  username: {{q .MQTTUsername}}
  password_file: {{q .MQTTPasswordFile}}
{{- end}}
{{else}}
# No mqtt: section: events stay in the outbox (docs/mqtt.md).
{{end}}
hardware:
  driver: {{.Driver}}
  doors:
    {{q .DoorID}}:
{{- if eq .Wiring "wiegand"}}
      # Wiegand reader with keypad: D0→GPIO20 (pin 38), D1→GPIO21 (pin 40)
      # through a level shifter or optocoupler (readers drive 5 V).
      wiegand: {d0: GPIO20, d1: GPIO21}
{{- else}}
      # MFRC522 on SPI0.0: SDA→CE0 (pin 24), SCK 23, MOSI 19, MISO 21,
      # RST→GPIO25 (pin 22), 3.3 V only. Needs dtparam=spi=on.
      mfrc522: {spi: SPI0.0, reset: GPIO25}
{{- end}}
      relay: {pin: GPIO17, active_low: true}    # pin 11; opto relay boards are active low
      door_contact: {pin: GPIO4, switch: nc}    # pin 7 to GND, closed while the door is shut
      exit_button: {pin: GPIO22, switch: "no"}  # pin 15 to GND
`))

func (a *initAnswers) render() ([]byte, error) {
	var b bytes.Buffer
	err := configTemplate.Execute(&b, map[string]any{
		"Example": config.InstalledExample, "GatewayID": a.gatewayID, "StateDir": a.stateDir, "DoorID": a.doorID, "DoorName": a.doorName, "Mode": a.mode,
		"Locks": a.locks, "Groups": a.groups, "IdentityURL": a.identityURL, "APIURL": a.apiURL, "SiteID": a.siteID,
		"ClientID": a.clientID, "ClientSecretFile": a.clientSecretKey, "Username": a.username, "PasswordFile": a.passwordFile,
		"Driver": a.driver, "Wiring": a.wiring,
		"MQTTBroker": a.mqttBroker, "MQTTSiteID": a.mqttSiteID, "MQTTUsername": a.mqttUsername, "MQTTPasswordFile": a.mqttPasswordFile,
	})
	if err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return b.Bytes(), nil
}

// write stages the state dir and PIN key (kept when present), the secret
// files (0600, the owner's) and the config (0640, readable by the owner's
// group) in w; w.commit puts them in place.
func (a *initAnswers) write(w *fileSet, f initFlags, owner *fileOwner, cfgText []byte) error {
	if err := w.mkdirAll(a.stateDir, 0o750); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if err := owner.chown(a.stateDir); err != nil {
		return err
	}
	keyPath := filepath.Join(a.stateDir, "pin.key")
	if _, err := os.Lstat(keyPath); errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, agent.MinPINKeyLength)
		if _, err := rand.Read(key); err != nil {
			return fmt.Errorf("pin key: %w", err)
		}
		if err := w.stage(keyPath, []byte(hex.EncodeToString(key)+"\n"), 0o600, owner); err != nil {
			return fmt.Errorf("pin key: %w", err)
		}
	}
	secrets := []struct{ what, path, value string }{{"mqtt password", a.mqttPasswordFile, a.mqttPassword}}
	if a.identityURL != "" {
		secrets = append(secrets, struct{ what, path, value string }{"salto password", a.passwordFile, a.password},
			struct{ what, path, value string }{"salto client secret", a.clientSecretKey, a.clientSecret})
	}
	for _, sf := range secrets {
		if sf.path == "" {
			continue
		}
		if err := w.mkdirAll(filepath.Dir(sf.path), 0o755); err != nil {
			return fmt.Errorf("secrets dir: %w", err)
		}
		if err := w.stage(sf.path, []byte(sf.value+"\n"), 0o600, owner); err != nil {
			return fmt.Errorf("%s: %w", sf.what, err)
		}
	}
	if err := w.mkdirAll(filepath.Dir(f.config), 0o755); err != nil {
		return fmt.Errorf("config dir: %w", err)
	}
	// The config belongs to the current user (root for a packaged install);
	// only its group is the owner's, so the service reads but cannot edit it.
	var group *fileOwner
	if owner != nil {
		group = &fileOwner{name: owner.name, uid: -1, gid: owner.gid}
	}
	if err := w.stage(f.config, cfgText, 0o640, group); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// fileSet writes init's files all or nothing: each is staged beside its
// target, commit puts them all in place, and undo removes every file and
// directory this run created and puts back what commit replaced.
type fileSet struct {
	created []string // directories made by this run, removed by undo
	staged  []stagedFile
}

type stagedFile struct {
	path, tmp string
	backup    string // a hard link to the file commit replaced, "" for none
	committed bool
}

// mkdirAll is os.MkdirAll that remembers the first directory it created.
func (w *fileSet) mkdirAll(dir string, mode os.FileMode) error {
	top := ""
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		top = d
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	if top != "" {
		w.created = append(w.created, top)
	}
	return nil
}

// stage writes a file's new content beside it, with its mode and owner.
func (w *fileSet) stage(path string, data []byte, mode os.FileMode, owner *fileOwner) error {
	tmp, err := config.StageFile(path, data, mode, owner.chown)
	if err != nil {
		return err
	}
	w.staged = append(w.staged, stagedFile{path: path, tmp: tmp})
	return nil
}

// commit keeps a link to every file it replaces, then renames the staged
// files into place.
func (w *fileSet) commit() error {
	for i := range w.staged {
		f := &w.staged[i]
		if _, err := os.Lstat(f.path); err != nil {
			continue
		}
		if err := os.Link(f.path, f.tmp+".old"); err != nil {
			return fmt.Errorf("keep %s to put it back on failure: %w", f.path, err)
		}
		f.backup = f.tmp + ".old"
	}
	for i := range w.staged {
		f := &w.staged[i]
		if err := os.Rename(f.tmp, f.path); err != nil {
			return err
		}
		f.committed = true
	}
	return nil
}

// undo takes back everything this run wrote.
func (w *fileSet) undo() {
	for i := len(w.staged) - 1; i >= 0; i-- {
		f := w.staged[i]
		switch {
		case f.committed && f.backup != "":
			os.Rename(f.backup, f.path)
		case f.committed:
			os.Remove(f.path)
		default:
			os.Remove(f.tmp)
			if f.backup != "" {
				os.Remove(f.backup)
			}
		}
	}
	for i := len(w.created) - 1; i >= 0; i-- {
		os.RemoveAll(w.created[i])
	}
}

// done drops the links to the replaced files and syncs the directories, so
// that a power cut after init cannot bring back the old files or lose the
// new ones (the PIN key among them).
func (w *fileSet) done() error {
	dirs := map[string]bool{}
	for _, f := range w.staged {
		if f.backup != "" {
			os.Remove(f.backup)
		}
		dirs[filepath.Dir(f.path)] = true
	}
	for dir := range dirs {
		if err := config.SyncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// chown hands path to the owner; nil keeps the current user.
func (o *fileOwner) chown(path string) error {
	if o == nil {
		return nil
	}
	if err := os.Chown(path, o.uid, o.gid); err != nil {
		return fmt.Errorf("give %s to %s: %w", path, o.name, err)
	}
	return nil
}
