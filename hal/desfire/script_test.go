package desfire_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// h decodes hex written with spaces, as the published traces are.
func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// step is one DESFire command of a published trace: what the reader must
// send (command byte and data, additional frames joined, framing removed;
// "*": any single frame) and the card's answer frames (native form: status
// first).
type step struct {
	send string
	recv []string
}

// script is a Transport that replays a trace and fails the test on the
// first byte the client sends differently. Commands split into additional
// frames are answered AF until complete.
type script struct {
	t       testing.TB
	native  bool
	steps   []step
	pending []byte
	answers [][]byte
}

func (s *script) Transmit(_ context.Context, apdu []byte) ([]byte, error) {
	s.t.Helper()
	cmd, data, err := s.unframe(apdu)
	if err != nil {
		s.t.Error(err)
		return nil, err
	}
	if len(s.answers) > 0 {
		if cmd != 0xAF || len(data) != 0 {
			s.t.Errorf("expected an additional-frame request, got %02X % X", cmd, data)
		}
		a := s.answers[0]
		s.answers = s.answers[1:]
		return s.frame(a), nil
	}
	if len(s.steps) == 0 {
		s.t.Errorf("unexpected command %02X % X", cmd, data)
		return nil, errors.New("script: no more steps")
	}
	if s.steps[0].send == "*" { // any command, answered as scripted
		st := s.steps[0]
		s.steps = s.steps[1:]
		return s.frame(h(st.recv[0])), nil
	}
	want := h(s.steps[0].send)
	if cmd == 0xAF && s.pending != nil {
		s.pending = append(s.pending, data...)
	} else {
		s.pending = append([]byte{cmd}, data...)
	}
	if len(s.pending) < len(want) && bytes.HasPrefix(want, s.pending) {
		return s.frame([]byte{0xAF}), nil
	}
	if !bytes.Equal(s.pending, want) {
		s.t.Errorf("sent  % X\nwant  % X", s.pending, want)
	}
	st := s.steps[0]
	s.steps = s.steps[1:]
	s.pending = nil
	for _, r := range st.recv[1:] {
		s.answers = append(s.answers, h(r))
	}
	return s.frame(h(st.recv[0])), nil
}

func (s *script) unframe(apdu []byte) (byte, []byte, error) {
	if s.native {
		if len(apdu) == 0 {
			return 0, nil, errors.New("script: empty frame")
		}
		return apdu[0], apdu[1:], nil
	}
	if len(apdu) < 5 || apdu[0] != 0x90 || apdu[2] != 0 || apdu[3] != 0 || apdu[len(apdu)-1] != 0 {
		return 0, nil, errors.New("script: not an ISO-wrapped DESFire command: " + hex.EncodeToString(apdu))
	}
	if len(apdu) == 5 {
		return apdu[1], nil, nil
	}
	if int(apdu[4]) != len(apdu)-6 {
		return 0, nil, errors.New("script: Lc does not match: " + hex.EncodeToString(apdu))
	}
	return apdu[1], apdu[5 : len(apdu)-1], nil
}

// frame turns a native answer (status first) into what the card sends.
func (s *script) frame(native []byte) []byte {
	if s.native {
		return native
	}
	return append(append([]byte(nil), native[1:]...), 0x91, native[0])
}

func (s *script) done() {
	s.t.Helper()
	if len(s.steps) > 0 || len(s.answers) > 0 {
		s.t.Errorf("trace not finished: %d steps left", len(s.steps))
	}
}
