package saltokstest

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// FaultKind is what an injected fault does to a matching request.
type FaultKind int

// Fault kinds.
const (
	// RateLimit answers 429 with Retry-After.
	RateLimit FaultKind = iota + 1
	// ServerError answers 500 with an ASP.NET-style error body.
	ServerError
	// Slow delays the answer by Delay (real time), or, with Delay 0, holds it
	// until the client gives up (its request timeout).
	Slow
	// CutBody sends the headers and half of the real body, then closes the
	// connection.
	CutBody
	// Malformed answers 200 with JSON that ends in the middle.
	Malformed
	// ExpireToken expires the request's token just before it is checked, as
	// if it ran out in the middle of a sync.
	ExpireToken
	// After lets the request through and then runs Do (e.g. to change a list
	// between two of its pages).
	After
	// Hold keeps matching requests waiting until Times of them wait at once,
	// then lets them all through: a client that never has that many open
	// (it does not overlap them) sees them hang until its request timeout.
	Hold
)

// Fault is one injected failure. It applies to requests whose method matches
// Method ("" any) and whose path contains Path ("" any API path; the token
// endpoint is "/connect/token"), after Skip matching requests have passed,
// Times times (0 means once, -1 forever).
type Fault struct {
	Kind       FaultKind
	Method     string
	Path       string
	Skip       int
	Times      int
	RetryAfter time.Duration // RateLimit: the Retry-After value (whole seconds)
	Delay      time.Duration // Slow
	Do         func()        // After

	holdN, held int           // Hold: how many to gather, how many came
	release     chan struct{} // Hold: closed when holdN came
}

// Inject adds a fault. Faults are checked in the order added.
func (k *Fake) Inject(f Fault) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if f.Times == 0 {
		f.Times = 1
	}
	if f.Kind == Hold {
		f.holdN, f.release = max(f.Times, 1), make(chan struct{})
	}
	k.faults = append(k.faults, &f)
}

// ClearFaults removes every injected fault.
func (k *Fake) ClearFaults() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.faults = nil
}

// takeFault returns the fault applying to r, consuming one use of it.
func (k *Fake) takeFault(r *http.Request) *Fault {
	k.mu.Lock()
	defer k.mu.Unlock()
	isToken := r.URL.Path == "/connect/token"
	for _, f := range k.faults {
		if f.Times == 0 || (f.Method != "" && f.Method != r.Method) {
			continue
		}
		if f.Path == "" && isToken || f.Path != "" && !strings.Contains(r.URL.Path, f.Path) {
			continue
		}
		if f.Skip > 0 {
			f.Skip--
			continue
		}
		if f.Times > 0 {
			f.Times--
		}
		return f
	}
	return nil
}

// ServeHTTP implements http.Handler: faults first, then the routes.
func (k *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	k.hits[r.Method+" "+r.URL.Path]++
	k.active++
	k.peak = max(k.peak, k.active)
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.active--
		k.mu.Unlock()
	}()
	if d := k.opt.Latency; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	f := k.takeFault(r)
	if f == nil {
		k.mux.ServeHTTP(w, r)
		return
	}
	switch f.Kind {
	case RateLimit:
		secs := int(f.RetryAfter / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		k.writeError(w, http.StatusTooManyRequests, "", "Too many requests")
	case ServerError:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"Message":"An error has occurred."}`))
	case Slow:
		if f.Delay <= 0 {
			<-r.Context().Done()
			return
		}
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
			k.mux.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	case CutBody:
		rec := httptest.NewRecorder()
		k.mux.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("saltokstest: CutBody needs a hijackable connection")
		}
		conn, buf, err := hj.Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		writeCut(buf, rec.Code, rec.Header(), body)
	case Malformed:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"items":[{"id":"0b5e`))
	case ExpireToken:
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			k.mu.Lock()
			if _, known := k.tokens[tok]; known {
				k.tokens[tok] = k.clock().Add(-time.Second)
			}
			k.mu.Unlock()
		}
		k.mux.ServeHTTP(w, r)
	case After:
		k.mux.ServeHTTP(w, r)
		if f.Do != nil {
			f.Do()
		}
	case Hold:
		k.mu.Lock()
		f.held++
		if f.held == f.holdN {
			close(f.release)
		}
		k.mu.Unlock()
		select {
		case <-f.release:
			k.mux.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	default:
		k.mux.ServeHTTP(w, r)
	}
}

// writeCut writes a response announcing the whole body and sending half.
func writeCut(buf *bufio.ReadWriter, code int, h http.Header, body []byte) {
	buf.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) + "\r\n")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Write(buf)
	buf.WriteString("\r\n")
	buf.Write(body[:len(body)/2])
	buf.Flush()
}
