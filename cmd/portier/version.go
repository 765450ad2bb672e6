package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped at build time with -ldflags "-X main.version=… -X main.commit=… -X main.date=…".
var (
	version = "dev"
	commit  = ""
	date    = ""
)

func cmdVersion(_ context.Context, e *env, args []string) int {
	fs := newFlags(e, "version", "")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	c := commit
	if c == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	fmt.Fprintf(e.stdout, "portier %s", version)
	if c != "" {
		fmt.Fprintf(e.stdout, " commit %s", c)
	}
	if date != "" {
		fmt.Fprintf(e.stdout, " built %s", date)
	}
	fmt.Fprintf(e.stdout, " (%s, %s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
