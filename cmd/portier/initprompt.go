package main

// The questions of `portier init`: a prompter that asks on a terminal (or
// takes flags and environment variables when there is none) and the checks
// each answer must pass before it is written into a config.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cmd/portier/config"
)

// prompter asks on stdout and reads answers from stdin when ask is set.
type prompter struct {
	e   *env
	in  *bufio.Reader
	ask bool
}

// value validates *v; when it is invalid, or force is set, and prompting is
// on, it asks until the answer is valid. Without prompts an invalid value
// is an error naming the flag. Only a valid value is offered as the
// default: an invalid one (from a flag, or an answer) is said why and asked
// again without one.
func (p *prompter) value(flagName, question string, v *string, check func(string) error, force bool) error {
	err := check(*v)
	if !p.ask {
		if err != nil {
			return fmt.Errorf("--%s: %w", flagName, err)
		}
		return nil
	}
	if err == nil && !force {
		return nil
	}
	def := *v
	if err != nil {
		if def != "" {
			fmt.Fprintf(p.e.stdout, "  --%s: %v\n", flagName, err)
		}
		def = ""
	}
	for {
		if def != "" {
			fmt.Fprintf(p.e.stdout, "%s [%s]: ", question, def)
		} else {
			fmt.Fprintf(p.e.stdout, "%s: ", question)
		}
		line, rerr := p.line()
		if rerr != nil {
			return fmt.Errorf("--%s: %w", flagName, rerr)
		}
		answer := def
		switch line {
		case "":
		case "-": // an explicit empty answer for optional values
			answer = ""
		default:
			answer = line
		}
		if err := check(answer); err != nil {
			fmt.Fprintf(p.e.stdout, "  %v\n", err)
			continue
		}
		*v = answer
		return nil
	}
}

// secret asks for a secret with the terminal's echo off. A value from the
// environment is taken as is.
func (p *prompter) secret(envName, question string, v *string, required bool) error {
	if *v != "" {
		return nil
	}
	if !p.ask {
		if required {
			return fmt.Errorf("%s: set it in the environment (not on the command line, where every user can read it), or run init on a terminal to be asked", envName)
		}
		return nil
	}
	for {
		fmt.Fprintf(p.e.stdout, "%s: ", question)
		restore := echoOff(p.e.stdin)
		line, err := p.line()
		restore()
		fmt.Fprintln(p.e.stdout)
		if err != nil {
			return fmt.Errorf("%s: %w", envName, err)
		}
		if line == "" && required {
			fmt.Fprintln(p.e.stdout, "  required")
			continue
		}
		*v = line
		return nil
	}
}

func (p *prompter) line() (string, error) {
	s, err := p.in.ReadString('\n')
	if err != nil && (err != io.EOF || s == "") {
		if err == io.EOF {
			return "", errors.New("standard input ended before every question was answered")
		}
		return "", err
	}
	return strings.TrimSpace(s), nil
}

// isInteractive reports whether r is a terminal someone can answer at.
// /dev/null is a character device too (systemd, cron and CI give it as
// standard input), so it is told apart explicitly.
func isInteractive(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok || !isTerminal(f) {
		return false
	}
	st, err := f.Stat()
	if err != nil {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && !os.SameFile(st, null)
}

// echoOff turns the terminal's echo off for a secret and returns the undo.
// stty keeps this portable; without it (or without a terminal) the answer
// is simply read.
func echoOff(in io.Reader) func() {
	f, ok := in.(*os.File)
	if !ok || !isInteractive(f) {
		return func() {}
	}
	stty := func(arg string) error {
		c := exec.Command("stty", arg)
		c.Stdin = f
		return c.Run()
	}
	if stty("-echo") != nil {
		return func() {}
	}
	return func() { _ = stty("echo") }
}

func nonEmpty(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("required")
	}
	return nil
}

// defaultGatewayID is the host's short name when it is a valid id.
func defaultGatewayID() string {
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	if config.CheckID(host) != nil {
		return ""
	}
	return host
}

func checkAbs(s string) error {
	if !filepath.IsAbs(s) {
		return fmt.Errorf("%q is not an absolute path", s)
	}
	return nil
}

func checkMode(s string) error {
	if !slices.Contains(agent.DoorModes, agent.DoorMode(s)) {
		return fmt.Errorf("%q is not card, pin, card_or_pin or card_and_pin", s)
	}
	return nil
}

// checkGUID checks a Salto id as the config does.
func checkGUID(s string) error {
	_, err := saltoks.ParseGUID(s)
	return err
}

// checkIDList checks comma-separated Salto ids.
func checkIDList(s string) error {
	for _, id := range splitList(s) {
		if err := checkGUID(id); err != nil {
			return err
		}
	}
	return nil
}

// checkBroker checks a broker URL as the config's mqtt: section does.
func checkBroker(s string) error {
	return config.MQTTConfig{Broker: s}.Validate()
}

func oneOf(vals ...string) func(string) error {
	return func(s string) error {
		if !slices.Contains(vals, s) {
			return fmt.Errorf("%q is not one of %s", s, strings.Join(vals, ", "))
		}
		return nil
	}
}

func optional(check func(string) error) func(string) error {
	return func(s string) error {
		if s == "" {
			return nil
		}
		return check(s)
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
