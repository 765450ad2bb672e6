package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// screen is the terminal the interactive demo writes to; every write wakes
// whoever waits for some text.
type screen struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	moved chan struct{}
}

func newScreen() *screen { return &screen{moved: make(chan struct{}, 1)} }

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.moved <- struct{}{}:
	default:
	}
	return s.buf.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitFor waits until the screen shows want; it fails when nothing new has
// been written for a minute, however long the whole wait took.
func (s *screen) waitFor(t *testing.T, want string) {
	t.Helper()
	for !strings.Contains(s.String(), want) {
		select {
		case <-s.moved:
		case <-time.After(time.Minute):
			t.Fatalf("no %q on the screen; nothing written for a minute:\n%s", want, s.String())
		}
	}
}

// TestInteractive types at the demo's prompt as a person would: the prompt
// stays visible under the live panel, and mistakes are answered on screen.
func TestInteractive(t *testing.T) {
	bin := buildPortier(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, typing := io.Pipe()
	out := newScreen()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, in, out, bin, "../portier/defaults/demo-site.json", "../portier/defaults/portier.yaml", true)
	}()
	out.waitFor(t, prompt)
	for _, step := range []struct{ typed, shows string }{
		{"foo bar", `unknown command "foo"`},
		{"tap back 04:A1:B2:C3", `no door "back"`},
		{"open front", "forced_open"},
		{"close front", "forced_open_cleared"},
		{"tap front 04:A1:B2:C3:D4:E5:F6", "access_granted"},
	} {
		_, err := io.WriteString(typing, step.typed+"\n")
		require.NoError(t, err)
		out.waitFor(t, step.shows)
	}
	// Every line the panel prints leaves the prompt as the last thing on
	// the screen: a person always sees where to type.
	text := out.String()
	for _, want := range []string{"access_granted", "forced_open", `unknown command "foo"`} {
		re := regexp.MustCompile(regexp.QuoteMeta(want) + `[^\n]*\n` + regexp.QuoteMeta(prompt))
		assert.Regexp(t, re, text, "the prompt is not drawn again after %q", want)
	}
	_, err := io.WriteString(typing, "quit\n")
	require.NoError(t, err)
	require.NoError(t, <-done)
	assert.Contains(t, out.String(), "(kept after quit)")
}
