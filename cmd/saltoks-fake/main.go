// Command saltoks-fake serves a fake Salto KS (identity server and Connect
// API) on a loopback port, for `make demo` and manual tests. It serves a
// Portier snapshot file, or a generated site, prints its URLs and the test
// credentials, and runs until interrupted. It is a test tool: the production
// portier binary never contains the fake.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
	"github.com/portier-io/portier/cloud/saltoks/sitefile"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "saltoks-fake:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("saltoks-fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	site := fs.String("site", "", "Portier snapshot file to serve (see docs/snapshot-format.md)")
	users := fs.Int("users", 0, "serve a generated site with this many users instead of --site")
	groups := fs.Int("groups", 10, "access groups of a generated site")
	locks := fs.Int("locks", 4, "locks of a generated site")
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback by default)")
	seats := fs.Int("seat-limit", 0, "subscription seats; users created beyond it are suspended (0: unlimited)")
	secretDir := fs.String("secret-dir", "", "write client.secret and salto.password (mode 0600) into this directory")
	verbose := fs.Bool("verbose", false, "log every request")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var f *sitefile.File
	switch {
	case *users > 0:
		f = saltokstest.Generate(saltokstest.SiteShape{Users: *users, Groups: *groups, Locks: *locks})
	case *site != "":
		var err error
		if f, err = readSite(*site); err != nil {
			return err
		}
	default:
		return errors.New("give --site FILE or --users N")
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	fake, err := saltokstest.New(f, saltokstest.Options{SeatLimit: *seats, RealTime: true,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	o := fake.Options()
	url := "http://" + ln.Addr().String()
	if *secretDir != "" {
		for name, v := range map[string]string{"client.secret": o.ClientSecret, "salto.password": o.Password} {
			if err := os.WriteFile(filepath.Join(*secretDir, name), []byte(v+"\n"), 0o600); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(stdout, "fake Salto KS serving site %s (%s)\n", f.Site.ID, f.Site.TimeZone)
	fmt.Fprintf(stdout, "salto:\n  identity_url: %s\n  api_url: %s\n  site_id: %s\n  client_id: %s\n  username: %s\n", url, url, f.Site.ID, o.ClientID, o.Username)
	fmt.Fprintf(stdout, "test secrets: client secret %q, password %q (test values, not real credentials)\n", o.ClientSecret, o.Password)
	var handler http.Handler = fake
	if *verbose {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			slog.New(slog.NewTextHandler(stderr, nil)).Info("request", "method", r.Method, "path", r.URL.Path)
			fake.ServeHTTP(w, r)
		})
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		return err
	}
}

// readSite reads the snapshot file in its JSON form (the fake needs Salto's
// shapes, not the domain snapshot).
func readSite(path string) (*sitefile.File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return sitefile.Decode(b)
}
