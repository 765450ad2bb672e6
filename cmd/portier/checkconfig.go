package main

import (
	"context"
	"fmt"

	"github.com/portier-io/portier/cmd/portier/config"
)

// cmdCheckConfig validates a config file without touching hardware. The
// systemd unit runs it as ExecStartPre, as the service user and inside the
// service's sandbox, so it also catches files that user cannot read and
// state directories it cannot write.
func cmdCheckConfig(_ context.Context, e *env, args []string) int {
	fs := newFlags(e, "check-config", "[--config FILE]")
	path := fs.String("config", config.PackagedPath, "config `file`")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	r := config.Check(*path, e.getenv)
	for _, w := range r.Warnings {
		fmt.Fprintf(e.stdout, "warning: %s\n", w)
	}
	if len(r.Problems) > 0 {
		for _, p := range r.Problems {
			fmt.Fprintln(e.stderr, p)
		}
		fmt.Fprintf(e.stderr, "portier check-config: %s: %d problem(s)\n", *path, len(r.Problems))
		return exitUsage
	}
	fmt.Fprintf(e.stdout, "%s: OK (%s)\n", *path, r.Config.Summary())
	return exitOK
}
