// Command portier-demo shows Portier on its embedded defaults with no
// hardware and no network: it imports the demo coworking site into a
// throw-away cache and puts a day's worth of taps and PINs to the real
// portier binary, printing each command and its answer.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
)

// step is one thing a person does at a door, and the command that asks
// Portier about it.
type step struct {
	story string
	args  []string
	stdin string
}

func steps() []step {
	return []step{
		{"Ada (resident, 24/7) taps her enrolled card at the front door on Tuesday morning",
			[]string{"check", "--door", "front", "--uid", "04:A1:B2:C3:D4:E5:F6", "--at", "2026-11-24T09:12"}, ""},
		{"Grace (flex desk, weekdays 08–20) types her PIN at the front door",
			[]string{"check", "--door", "front", "--pin-stdin", "--at", "2026-11-24T09:30"}, "135790\n"},
		{"…and tries again on Saturday",
			[]string{"check", "--door", "front", "--tag", "02301235", "--at", "2026-11-28T11:00"}, ""},
		{"The studio needs card AND PIN: Ada taps only her card",
			[]string{"check", "--door", "studio", "--tag", "02301234", "--at", "2026-11-24T10:00"}, ""},
		{"…then taps and types her PIN",
			[]string{"check", "--door", "studio", "--tag", "02301234", "--pin-stdin", "--at", "2026-11-24T10:00"}, "482915\n"},
		{"Linus presents his Wiegand fob at the maker lab (weekdays 09–18)",
			[]string{"check", "--door", "lab", "--wiegand", "H10301:12:3456", "--at", "2026-11-24T14:00"}, ""},
		{"Dana's day pass code, the day before her pass",
			[]string{"check", "--door", "front", "--pin", "975310", "--at", "2026-11-22T10:00"}, ""},
		{"Dana's day pass code on the day",
			[]string{"check", "--door", "front", "--pin", "975310", "--at", "2026-11-23T10:00"}, ""},
		{"Omar (night shift 22:00–06:00) arrives at 02:30",
			[]string{"check", "--door", "front", "--tag", "02301238", "--at", "2026-11-24T02:30"}, ""},
		{"Mallory was blocked in Salto KS",
			[]string{"check", "--door", "front", "--tag", "02301236", "--at", "2026-11-24T09:00"}, ""},
		{"Gus's party code: the site ran out of Salto seats, so Gus is suspended",
			[]string{"check", "--door", "front", "--pin", "246810", "--at", "2026-12-05T18:00"}, ""},
		{"Carl's cleaning-crew group has no time schedule yet (Salto: that grants nothing)",
			[]string{"check", "--door", "front", "--tag", "02301239", "--at", "2026-11-24T06:00"}, ""},
		{"A card nobody knows",
			[]string{"check", "--door", "front", "--uid", "01:02:03:04", "--at", "2026-11-24T12:00"}, ""},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	bin := flag.String("portier", "bin/portier", "the portier binary to drive")
	site := flag.String("site", "cmd/portier/defaults/demo-site.json", "the site snapshot to import")
	flag.Parse()
	if err := run(ctx, os.Stdout, *bin, *site); err != nil {
		fmt.Fprintln(os.Stderr, "portier-demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, bin, site string) error {
	state, err := os.MkdirTemp("", "portier-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	env := append(os.Environ(), "STATE_DIRECTORY="+state)

	fmt.Fprintf(w, "Portier demo — Hive Coworking Berlin, decided offline from the local cache.\n")
	fmt.Fprintf(w, "Cache: %s (thrown away at the end)\n\n", filepath.Join(state, "portier.db"))
	if err := show(ctx, w, bin, env, "Load the demo site (the same JSON a Salto KS sync produces)", []string{"import", site}, ""); err != nil {
		return err
	}
	for _, s := range steps() {
		if err := show(ctx, w, bin, env, s.story, s.args, s.stdin); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "Try your own: %s check --door front --tag 02301234 (after `%s import %s`).\n", bin, bin, site)
	return nil
}

func show(ctx context.Context, w io.Writer, bin string, env []string, story string, args []string, stdin string) error {
	fmt.Fprintf(w, "── %s\n$ %s %s", story, filepath.Base(bin), strings.Join(args, " "))
	if stdin != "" {
		fmt.Fprint(w, "   # PIN typed on stdin")
	}
	fmt.Fprintln(w)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if _, denied := err.(*exec.ExitError); err != nil && !(denied && cmd.ProcessState.ExitCode() == 1) {
		return fmt.Errorf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out.String())
	}
	fmt.Fprintln(w, out.String())
	return nil
}
