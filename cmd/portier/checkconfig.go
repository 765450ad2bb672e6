package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/portier-io/portier/cmd/portier/config"
)

// cmdCheckConfig validates a config file without touching hardware. The
// systemd unit runs it as ExecStartPre (--for run), as the service user and
// inside the service's sandbox, so it also catches files that user cannot
// read and state directories it cannot write.
func cmdCheckConfig(_ context.Context, e *env, args []string) int {
	fs := newFlags(e, "check-config", "[--config FILE] [--for COMMAND]")
	path := fs.String("config", config.PackagedPath, "config `file`")
	forCmd := fs.String("for", "", "also fail when the config lacks what `command` needs ("+strings.Join(config.Commands(), ", ")+"); the service checks --for run")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return wrongArgs(e, fs, 0)
	}
	if *forCmd != "" && !slices.Contains(config.Commands(), *forCmd) {
		return fail(e, exitUsage, "check-config: --for %q: want one of %s", *forCmd, strings.Join(config.Commands(), ", "))
	}
	r := config.Check(*path, e.getenv)
	for _, w := range r.Warnings {
		fmt.Fprintf(e.stdout, "warning: %s\n", w)
	}
	problems := r.Problems
	if *forCmd != "" {
		problems = append(problems, r.Lacks(*forCmd)...)
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(e.stderr, p)
		}
		fmt.Fprintf(e.stderr, "portier check-config: %s: %s\n", *path, countProblems(len(problems)))
		return exitUsage
	}
	fmt.Fprintf(e.stdout, "%s: OK (%s)\n", *path, r.Config.Summary())
	fmt.Fprintln(e.stdout, fitFor(r))
	return exitOK
}

// fitFor says which commands the config serves, and why not the others.
func fitFor(r config.Report) string {
	fit, unfit := r.FitFor()
	s := "fit for portier " + strings.Join(fit, ", ")
	byWhy := map[string][]string{}
	var whys []string
	for _, c := range config.Commands() {
		if why, ok := unfit[c]; ok {
			if byWhy[why] == nil {
				whys = append(whys, why)
			}
			byWhy[why] = append(byWhy[why], c)
		}
	}
	for _, why := range whys {
		s += fmt.Sprintf("; not %s: %s", strings.Join(byWhy[why], ", "), why)
	}
	return s
}

// countProblems is "1 problem" or "N problems".
func countProblems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}
