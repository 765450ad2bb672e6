// Command portier is the Portier door agent: `portier run` is the daemon, the
// other subcommands are operator tools for installers. This package is
// composition and flags: it wires the daemon (run.go) and gives each
// subcommand what it declares it needs (session.go). Its config
// (cmd/portier/config) and the daemon⇄CLI contract (cmd/portier/control) are
// packages of their own; nothing outside cmd reads files, flags or the
// environment. Only this package turns errors into exit codes and messages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	// Gateways may lack /usr/share/zoneinfo; schedules must still be evaluated
	// in the site's zone.
	_ "time/tzdata"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cmd/portier/control"
)

// Exit statuses shared by all subcommands (README.md, "Exit status").
const (
	exitOK     = 0
	exitDenied = 1 // `portier check`: the decision is a denial; a door refused a command
	exitUsage  = 2 // bad flags, bad config, bad data, a door the gateway does not have
	exitFailed = 3 // the operation failed (I/O, network, no agent running)
)

// env is what a subcommand may touch of the outside world; tests replace it.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	now    func() time.Time
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) int
}

func commands() []command {
	return []command{
		{"run", "run the door agent (the daemon)", cmdRun},
		{"status", "show the running agent's doors, sync, clock and outbox", cmdStatus},
		{"unlock", "unlock a door now (a pulse, or --duration)", cmdUnlock},
		{"lockdown", "put a door in lockdown (on) or lift it (off)", cmdSwitch("lockdown", "lockdown", (*control.Client).Lockdown, false)},
		{"office-mode", "hold a door unlocked (on) or end office mode (off)", cmdSwitch("office-mode", "office mode", (*control.Client).OfficeMode, true)},
		{"enroll", "map the next card tapped at a door to a Salto tag number", cmdEnroll},
		{"card", "issue, inspect or re-key a DESFire card at a door's reader", cmdCard},
		{"sync-now", "ask the running agent to sync from Salto KS now", cmdSyncNow},
		{"check", "decide whether a credential opens a door (offline, from the cache)", cmdCheck},
		{"import", "load a site snapshot file into the cache", cmdImport},
		{"sync", "sync the cache from Salto KS once and print the sync state", cmdSync},
		{"access-code", "create, delete or list access codes (PINs programmed through Salto KS)", cmdAccessCode},
		{"events", "print the recorded events, sent or waiting (--follow to keep watching)", cmdEvents},
		{"version", "print the version", cmdVersion},
		{"doctor", "self-test the gateway's door hardware (--actuate clicks relays)", cmdDoctor},
		{"pinout", "show which device wire goes to which header pin (--svg FILE)", cmdPinout},
		{"reader", "OSDP readers: install (a key of its own), set-address, output (test its outputs)", cmdReader},
		{"init", "write a config and its secret files for a new gateway (--check tests Salto KS)", cmdInit},
		{"check-config", "validate a config file without touching hardware", cmdCheckConfig},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, now: time.Now})
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	if isHelp(args[0]) {
		if len(args) == 1 {
			usage(e.stdout)
			return exitOK
		}
		// `portier help CMD [OP]` is `portier CMD [OP] -h`.
		args = append(args[1:len(args):len(args)], "-h")
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "portier: unknown command %q (see `portier help`)\n", args[0])
	return exitUsage
}

// isHelp says whether arg asks for help.
// opUsage answers `portier CMD` given no operation it knows: help asked for
// goes to standard output (exit 0); otherwise what is wrong, then the usage,
// to standard error (exit 2).
func opUsage(e *env, cmd string, args []string, usage string) int {
	w, code := e.stderr, exitUsage
	switch {
	case len(args) > 0 && isHelp(args[0]):
		w, code = e.stdout, exitOK
	case len(args) > 0:
		fmt.Fprintf(e.stderr, "portier %s: unknown operation %q\n\n", cmd, args[0])
	}
	fmt.Fprint(w, usage)
	return code
}

func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Portier door agent.\n\nUsage: portier <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun `portier <command> -h` (or `portier help <command>`) for the flags of a command.")
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), strings.TrimSpace("Usage: portier "+name+" "+synopsis))
		printFlags(fs)
	}
	return fs
}

// printFlags is flag.PrintDefaults with the flags written as the usage
// lines, the README and the messages write them: --config, not -config.
func printFlags(fs *flag.FlagSet) {
	header := "\nFlags:"
	fs.VisitAll(func(f *flag.Flag) {
		if header != "" {
			fmt.Fprintln(fs.Output(), header)
			header = ""
		}
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			if g, ok := f.Value.(flag.Getter); ok {
				if _, isString := g.Get().(string); isString {
					line += fmt.Sprintf(" (default %q)", f.DefValue)
					break
				}
			}
			line += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintln(fs.Output(), line)
	})
}

// argsError reports a mistake in a command's arguments, then its usage.
func argsError(e *env, fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "portier %s: "+format+"\n\n", append([]any{fs.Name()}, args...)...)
	fs.SetOutput(e.stderr)
	fs.Usage()
	return exitUsage
}

// wrongArgs is argsError for positional arguments: too many (a config file
// given without --config gets that hint) or too few.
func wrongArgs(e *env, fs *flag.FlagSet, want int) int {
	got := fs.Args()
	if len(got) < want {
		return argsError(e, fs, "missing argument: want %d, got %d", want, len(got))
	}
	extra := got[want]
	if fs.Lookup("config") != nil && (strings.HasSuffix(extra, ".yaml") || strings.HasSuffix(extra, ".yml")) {
		return argsError(e, fs, "unexpected argument %q: give a config file with --config %s", extra, extra)
	}
	return argsError(e, fs, "unexpected argument %q", extra)
}

// parseFlags parses args, accepting flags before and after positional
// arguments (`portier enroll front --tag-number 1` as well as
// `portier enroll --tag-number 1 front`); everything after "--" is
// positional. -h prints the usage on standard output (so `portier run -h |
// less` shows it), exit 0; a mistake is said in the operator's words
// (flagMistake), then the usage, on standard error, exit 2.
func parseFlags(e *env, fs *flag.FlagSet, args []string) (int, bool) {
	var pos, tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	// The flag package's own report (its words, then the usage) is
	// replaced by ours.
	fs.SetOutput(io.Discard)
	defer fs.SetOutput(e.stderr)
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(e.stdout)
				fs.Usage()
				return exitOK, false
			}
			return argsError(e, fs, "%s", flagMistake(fs, err)), false
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	// Leave the positional arguments where fs.Arg finds them.
	fs.Parse(append(append([]string{"--"}, pos...), tail...))
	return 0, true
}

// badFlagValue is the flag package's error for a value its flag cannot take.
var badFlagValue = regexp.MustCompile(`^invalid (?:boolean )?value ("(?:[^"\\]|\\.)*") for (?:flag )?-([^:]+): `)

// flagMistake says what is wrong with a flag in the operator's words: the
// flag package says "parse error" for a duration that is not one.
func flagMistake(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := badFlagValue.FindStringSubmatch(msg); m != nil {
		value, _ := strconv.Unquote(m[1])
		if f := fs.Lookup(m[2]); f != nil {
			if g, ok := f.Value.(flag.Getter); ok {
				switch g.Get().(type) {
				case time.Duration:
					return fmt.Sprintf("--%s: %q is not a duration; e.g. 30s, 5m, 1h30m", f.Name, value)
				case int, int64, uint, uint64:
					return fmt.Sprintf("--%s: %q is not a whole number", f.Name, value)
				case bool:
					return fmt.Sprintf("--%s: %q is not true or false (--%[1]s alone is true)", f.Name, value)
				}
			}
		}
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return fmt.Sprintf("unknown flag --%s (the flags are below)", strings.TrimPrefix(name, "-"))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Sprintf("--%s needs a value", strings.TrimPrefix(name, "-"))
	}
	return msg
}

// fail prints an error for the operator and returns code, except that a
// door the gateway does not have is always the operator's mistake
// (exitUsage), whether the config or the running agent found it.
func fail(e *env, code int, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "portier: "+format+"\n", args...)
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, agent.ErrUnknownDoor) {
			return exitUsage
		}
	}
	return code
}
