package osdp_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/osdp"
)

func TestParseFrame(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		want  osdp.Frame
		err   error
	}{
		{"Annex E ID with CRC", "53 00 09 00 04 61 00 C0 66", osdp.Frame{Addr: 0, Seq: 0, Code: osdp.CmdID, Data: []byte{0}}, nil},
		{"Annex E ID with checksum", "53 00 08 00 00 61 00 44", osdp.Frame{Checksum: true, Code: osdp.CmdID, Data: []byte{0}}, nil},
		{"Annex E COMSET broadcast", "53 7F 0D 00 04 6E 00 80 25 00 00 6E 38",
			osdp.Frame{Addr: 0x7F, Code: osdp.CmdCOMSET, Data: []byte{0, 0x80, 0x25, 0, 0}}, nil},
		{"leading mark byte", "FF 53 00 09 00 04 61 00 C0 66", osdp.Frame{Code: osdp.CmdID, Data: []byte{0}}, nil},
		{"bad CRC", "53 00 09 00 04 61 00 C0 67", osdp.Frame{}, osdp.ErrCheck},
		{"bad checksum", "53 00 08 00 00 61 00 45", osdp.Frame{}, osdp.ErrCheck},
		{"length field disagrees", "53 00 0A 00 04 61 00 C0 66", osdp.Frame{}, osdp.ErrFrame},
		{"length over the limit", "53 00 FF 7F 04 61 00 C0 66", osdp.Frame{}, osdp.ErrTooLong},
		{"too short", "53 00 05 00 04", osdp.Frame{}, osdp.ErrFrame},
		{"no SOM", "54 00 09 00 04 61 00 C0 66", osdp.Frame{}, osdp.ErrFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := osdp.ParseFrame(unhex(t, tt.frame))
			if tt.err != nil {
				assert.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want.Addr, f.Addr)
			assert.Equal(t, tt.want.Reply, f.Reply)
			assert.Equal(t, tt.want.Seq, f.Seq)
			assert.Equal(t, tt.want.Checksum, f.Checksum)
			assert.Equal(t, tt.want.Code, f.Code)
			assert.Equal(t, tt.want.Data, f.Data)
		})
	}
}

func TestAppendFrameMatchesAnnexE(t *testing.T) {
	got, err := osdp.AppendFrame(nil, osdp.Frame{Addr: 0x7F, Code: osdp.CmdCOMSET, Data: []byte{0, 0x80, 0x25, 0, 0}}, nil, false)
	require.NoError(t, err)
	assert.Equal(t, unhex(t, "53 7F 0D 00 04 6E 00 80 25 00 00 6E 38"), got)
	got, err = osdp.AppendFrame(nil, osdp.Frame{Checksum: true, Code: osdp.CmdID, Data: []byte{0}}, nil, true)
	require.NoError(t, err)
	assert.Equal(t, unhex(t, "FF 53 00 08 00 00 61 00 44"), got)
	_, err = osdp.AppendFrame(nil, osdp.Frame{Addr: 0x80}, nil, false)
	assert.Error(t, err)
	_, err = osdp.AppendFrame(nil, osdp.Frame{Code: osdp.CmdPOLL, Data: make([]byte, osdp.MaxFrame)}, nil, false)
	assert.ErrorIs(t, err, osdp.ErrTooLong)
}

// Both ends of a session: every message round-trips, the MAC chain advances
// in step, and any change to a message, or a replay, breaks it.
func TestSecureRoundTrip(t *testing.T) {
	var cpR, pdR [8]byte
	copy(cpR[:], "cpcpcpcp")
	copy(pdR[:], "pdpdpdpd")
	cp := osdp.NewSession(key1, cpR, pdR)
	pd := osdp.NewSession(key1, cpR, pdR)
	cp.Establish()
	pd.Establish()
	msgs := []struct {
		reply bool
		code  byte
		data  []byte
	}{
		{false, osdp.CmdPOLL, nil},
		{true, osdp.ReplyACK, nil},
		{false, osdp.CmdLED, make([]byte, 14)},
		{true, osdp.ReplyRAW, []byte{0, 1, 26, 0, 1, 2, 3, 4}},
		{false, osdp.CmdKEYSET, append([]byte{1, 16}, key2[:]...)},
		{true, osdp.ReplyKEYPPAD, []byte{0, 16, '1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '1', '2', '3', '4', '5', '6'}},
	}
	var wires [][]byte
	for i, m := range msgs {
		send, recv := cp, pd
		if m.reply {
			send, recv = pd, cp
		}
		wire, err := osdp.AppendFrame(nil, osdp.Frame{Addr: 5, Reply: m.reply, Seq: byte(i%3 + 1), Code: m.code, Data: m.data}, send, true)
		require.NoError(t, err)
		wires = append(wires, append([]byte(nil), wire...))
		if len(m.data) > 0 {
			assert.NotContains(t, string(wire), string(m.data), "data is encrypted")
		}

		// A changed byte with a recomputed CRC fails the MAC.
		forged := append([]byte(nil), wire...)
		forged[8] ^= 0x01
		crc := osdp.CRC16(forged[1 : len(forged)-2])
		forged[len(forged)-2], forged[len(forged)-1] = byte(crc), byte(crc>>8)
		ff, err := osdp.ParseFrame(forged)
		require.NoError(t, err)
		probe := *recv
		assert.ErrorIs(t, probe.Open(&ff), osdp.ErrMAC, "forged message %d", i)

		f, err := osdp.ParseFrame(wire)
		require.NoError(t, err)
		require.True(t, f.Secure())
		require.NoError(t, recv.Open(&f), "message %d", i)
		assert.Equal(t, m.code, f.Code)
		assert.Equal(t, len(m.data), len(f.Data))
		if len(m.data) > 0 {
			assert.Equal(t, m.data, f.Data)
		}
		assert.Equal(t, send.CMAC, recv.CMAC)
		assert.Equal(t, send.RMAC, recv.RMAC)
	}
	// Once the chain has moved on, no earlier message verifies again.
	for i, w := range wires[:len(wires)-1] {
		recv := pd
		if msgs[i].reply {
			recv = cp
		}
		f, err := osdp.ParseFrame(w)
		require.NoError(t, err)
		probe := *recv
		assert.ErrorIs(t, probe.Open(&f), osdp.ErrMAC, "replay of message %d", i)
	}
}

func TestReceiver(t *testing.T) {
	id := unhex(t, "53 00 09 00 04 61 00 C0 66")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	push := func(r *osdp.Receiver, b []byte, at time.Time, step time.Duration) [][]byte {
		var out [][]byte
		for i, c := range b {
			if f := r.Push(c, at.Add(time.Duration(i)*step)); f != nil {
				out = append(out, append([]byte(nil), f...))
			}
		}
		return out
	}
	tests := []struct {
		name  string
		input []byte
		step  time.Duration
		want  int
	}{
		{"one frame", id, time.Millisecond, 1},
		{"noise and mark before", append(unhex(t, "00 12 FF FF"), id...), time.Millisecond, 1},
		{"two frames back to back", append(append([]byte(nil), id...), id...), time.Millisecond, 2},
		{"impossible length then a frame", append(unhex(t, "53 01 02"), id...), time.Millisecond, 1},
		{"huge length then a frame", append(unhex(t, "53 00 FF FF"), id...), time.Millisecond, 1},
		{"gap inside a frame", id, 30 * time.Millisecond, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := osdp.Receiver{InterChar: 20 * time.Millisecond}
			got := push(&r, tt.input, t0, tt.step)
			require.Len(t, got, tt.want)
			for _, f := range got {
				assert.Equal(t, id, f)
			}
		})
	}
}

// FuzzParseFrame feeds arbitrary bytes through the receiver and the parser,
// and through a session: nothing panics, frames stay within MaxFrame, and
// every accepted frame re-encodes to the same bytes.
func FuzzParseFrame(f *testing.F) {
	f.Add(unhex(f, "53 00 09 00 04 61 00 C0 66"))
	f.Add(unhex(f, "FF 53 7F 0D 00 04 6E 00 80 25 00 00 6E 38"))
	f.Add(unhex(f, "53 00 08 00 00 61 00 44"))
	f.Add(unhex(f, "53 00 FF FF 04"))
	var cpR, pdR [8]byte
	s := osdp.NewSession(key1, cpR, pdR)
	s.Establish()
	sec, _ := osdp.AppendFrame(nil, osdp.Frame{Addr: 1, Reply: true, Seq: 1, Code: osdp.ReplyRAW, Data: []byte{0, 1, 26, 0, 1, 2, 3, 4}}, s, true)
	f.Add(sec)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		r := osdp.Receiver{InterChar: 20 * time.Millisecond}
		for i, c := range b {
			raw := r.Push(c, t0.Add(time.Duration(i)*time.Millisecond))
			if raw == nil {
				continue
			}
			if len(raw) > osdp.MaxFrame {
				t.Fatalf("frame of %d bytes", len(raw))
			}
			fr, err := osdp.ParseFrame(raw)
			if err != nil {
				continue
			}
			if !fr.Secure() && fr.SCB.Type == 0 {
				// Reserved CTRL bits are ignored, so compare the decoded
				// fields, not the bytes.
				again, err := osdp.AppendFrame(nil, fr, nil, false)
				if err != nil {
					t.Fatalf("re-encode %x: %v", raw, err)
				}
				fr2, err := osdp.ParseFrame(again)
				if err != nil || fr2.Addr != fr.Addr || fr2.Reply != fr.Reply || fr2.Seq != fr.Seq ||
					fr2.Checksum != fr.Checksum || fr2.Code != fr.Code || string(fr2.Data) != string(fr.Data) {
					t.Fatalf("re-encode: %x vs %x (%v)", again, raw, err)
				}
			}
			var cpR, pdR [8]byte
			sess := osdp.NewSession(key1, cpR, pdR)
			_ = sess.Open(&fr)
		}
		_, _ = osdp.ParseFrame(b)
	})
}
