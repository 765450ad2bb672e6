package main

// The questions of `portier init`: a prompter that asks on a terminal (or
// takes flags and environment variables when there is none) and the checks
// each answer must pass before it is written into a config.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/portier-io/portier/agent"
)

// prompter asks on stdout and reads answers from stdin when ask is set.
type prompter struct {
	e   *env
	in  *bufio.Reader
	ask bool
}

// value validates *v; when it is invalid, or force is set, and prompting is
// on, it asks until the answer is valid. Without prompts an invalid value
// is an error naming the flag.
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
	for {
		if *v != "" {
			fmt.Fprintf(p.e.stdout, "%s [%s]: ", question, *v)
		} else {
			fmt.Fprintf(p.e.stdout, "%s: ", question)
		}
		line, rerr := p.line()
		if rerr != nil {
			return fmt.Errorf("--%s: %w", flagName, rerr)
		}
		if line != "" {
			*v = line
		}
		if line == "-" { // an explicit empty answer for optional values
			*v = ""
		}
		if err := check(*v); err != nil {
			fmt.Fprintf(p.e.stdout, "  %v\n", err)
			continue
		}
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

func checkID(s string) error {
	if s == "" {
		return errors.New("required")
	}
	if !idPattern.MatchString(s) {
		return fmt.Errorf("%q: use letters, digits, '.', '_' and '-' (at most 64, no spaces or slashes: ids appear in MQTT topics)", s)
	}
	return nil
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

func checkSaltoID(s string) error {
	if !saltoPattern.MatchString(s) {
		return fmt.Errorf("%q does not look like a Salto KS id (letters, digits and '-', e.g. a UUID)", s)
	}
	return nil
}

func checkIDList(s string) error {
	for _, id := range splitList(s) {
		if err := checkSaltoID(id); err != nil {
			return err
		}
	}
	return nil
}

func checkBroker(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Port() == "" || !slices.Contains([]string{"tcp", "mqtt", "ssl", "tls", "mqtts"}, u.Scheme) {
		return fmt.Errorf("%q is not a broker URL such as ssl://broker.example:8883 or tcp://broker.example:1883", s)
	}
	return nil
}

func checkURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL such as https://identity.eu.my-clay.com", s)
	}
	return nil
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
