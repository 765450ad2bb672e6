package mqtt

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// streamConn is a net.Conn reading from r that counts what was read.
type streamConn struct {
	net.Conn
	r      io.Reader
	read   int
	closed bool
}

func (c *streamConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}

func (c *streamConn) Close() error { c.closed = true; return nil }

// packet builds an MQTT packet: type, flags and a body of n bytes (a PUBLISH
// body starts with its topic).
func packet(typ byte, topic string, n int) []byte {
	body := []byte{}
	if typ == 3 {
		body = append(body, byte(len(topic)>>8), byte(len(topic)))
		body = append(body, topic...)
	}
	body = append(body, bytes.Repeat([]byte{'x'}, max(0, n-len(body)))...)
	return append(header(typ, len(body)), body...)
}

// header encodes a fixed header announcing length bytes.
func header(typ byte, length int) []byte {
	h := []byte{typ << 4}
	for {
		b := byte(length % 128)
		length /= 128
		if length > 0 {
			b |= 0x80
		}
		h = append(h, b)
		if length == 0 {
			return h
		}
	}
}

// readAll reads through l in chunks of size until an error.
func readAll(l *packetLimiter, size int) ([]byte, error) {
	var out []byte
	buf := make([]byte, size)
	for {
		n, err := l.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
	}
}

func TestPacketLimiterPassesPackets(t *testing.T) {
	var in []byte
	for _, p := range [][]byte{
		{0x20, 0x02, 0x00, 0x00}, // CONNACK
		packet(3, "portier/s/g/cmd/unlock", 300),
		{0xd0, 0x00},                                       // PINGRESP
		packet(3, "portier/s/g/cmd/sync", 200_000-100_000), // within a bigger limit below
		packet(4, "", 2),                                   // PUBACK
		packet(3, "t", 128),                                // a two-byte remaining length
	} {
		in = append(in, p...)
	}
	for _, size := range []int{1, 3, 7, 4096, 1 << 20} {
		refused := 0
		c := &streamConn{r: bytes.NewReader(in)}
		l := newPacketLimiter(c, 200_000, func(*PacketTooLarge) { refused++ })
		out, err := readAll(l, size)
		require.ErrorIs(t, err, io.EOF, "read size %d", size)
		assert.Equal(t, in, out, "read size %d: every byte, in order", size)
		assert.Zero(t, refused)
	}
}

func TestPacketLimiterRefusesAnOversizedPublish(t *testing.T) {
	const huge = 100 << 20
	first := packet(3, "portier/s/g/cmd/unlock", 500)
	big := header(3, huge)
	topic := "portier/s/g/cmd/unlock"
	big = append(big, byte(len(topic)>>8), byte(len(topic)))
	big = append(big, topic...)
	stream := io.MultiReader(bytes.NewReader(first), bytes.NewReader(big), neverEnding('x'))
	c := &streamConn{r: stream}
	var refused []*PacketTooLarge
	l := newPacketLimiter(c, MaxPacketSize, func(e *PacketTooLarge) { refused = append(refused, e) })
	out, err := readAll(l, 64<<10)
	var tooLarge *PacketTooLarge
	require.ErrorAs(t, err, &tooLarge)
	assert.Equal(t, first, out, "the packet before it was handed on whole, nothing of the big one")
	assert.Equal(t, &PacketTooLarge{Type: 3, Length: huge, Limit: MaxPacketSize, Topic: topic}, tooLarge)
	assert.Contains(t, err.Error(), "a PUBLISH on portier/s/g/cmd/unlock of 104857600 bytes")
	assert.Len(t, refused, 1, "the alarm is raised once")
	assert.True(t, c.closed, "the connection is dropped")
	assert.LessOrEqual(t, c.read, len(first)+8192, "the big packet was not read")
	_, err = l.Read(make([]byte, 10))
	assert.Equal(t, tooLarge, err, "the connection stays failed")
}

func TestPacketLimiterRefusesAMalformedLength(t *testing.T) {
	c := &streamConn{r: bytes.NewReader([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01})}
	l := newPacketLimiter(c, MaxPacketSize, func(*PacketTooLarge) { t.Fatal("not a size refusal") })
	_, err := readAll(l, 10)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "malformed remaining length")
	assert.True(t, c.closed)
}

func TestPacketLimiterEndInsideAHeader(t *testing.T) {
	c := &streamConn{r: bytes.NewReader([]byte{0x30, 0x80})}
	l := newPacketLimiter(c, MaxPacketSize, func(*PacketTooLarge) {})
	out, err := readAll(l, 10)
	assert.Empty(t, out, "half a header is never handed on")
	assert.ErrorIs(t, err, io.EOF)
}

// FuzzPacketLimiter: whatever the broker sends, paho gets a prefix of it
// made of whole fixed headers, and a refusal reads at most a buffer beyond
// the last packet handed on.
func FuzzPacketLimiter(f *testing.F) {
	f.Add(append(packet(3, "a/b", 40), 0xd0, 0x00), 5, 100)
	f.Add(append(packet(3, "a/b", 40), header(3, 1<<20)...), 1, 1000)
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff}, 3, 50)
	f.Fuzz(func(t *testing.T, in []byte, size, limit int) {
		size = 1 + abs(size)%5000
		limit = abs(limit) % (1 << 16)
		c := &streamConn{r: bytes.NewReader(in)}
		var refused *PacketTooLarge
		l := newPacketLimiter(c, limit, func(e *PacketTooLarge) { refused = e })
		out, err := readAll(l, size)
		require.True(t, bytes.HasPrefix(in, out), "output is a prefix of the input")
		if errors.Is(err, io.EOF) {
			return
		}
		if refused != nil {
			assert.Greater(t, refused.Length, limit)
			assert.LessOrEqual(t, c.read-len(out), 4096, "at most a buffer of the refused packet was read")
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

var _ net.Conn = (*streamConn)(nil)
