package mqtt

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"

	"github.com/portier-io/portier/agent"
)

// MaxPacketSize is the largest MQTT packet the link takes from the broker:
// a command of MaxCommandSize plus room for its topic and headers. paho
// reads every packet whole into memory, so a larger one is refused before
// paho sees any of it: the connection is dropped (with an alarm) and made
// again after the usual backoff. Commands between MaxCommandSize and this
// still arrive and are answered "oversized".
const MaxPacketSize = MaxCommandSize + 4<<10

// PacketTooLarge is why a connection was dropped: the broker sent a packet
// whose fixed header announced more than the limit.
type PacketTooLarge struct {
	Type   byte   // MQTT control packet type (3: PUBLISH)
	Length int    // the announced remaining length
	Limit  int    // MaxPacketSize
	Topic  string // a PUBLISH's topic, when it arrived with the header (at most 256 bytes)
}

func (e *PacketTooLarge) Error() string {
	what := fmt.Sprintf("an MQTT packet of type %d", e.Type)
	if e.Type == 3 {
		what = "a PUBLISH"
		if e.Topic != "" {
			what += " on " + e.Topic
		}
	}
	return fmt.Sprintf("the broker sent %s of %d bytes (limit %d): refused unread, connection dropped", what, e.Length, e.Limit)
}

// packetLimiter passes the broker's bytes to paho packet by packet. It reads
// each fixed header as the bytes arrive and holds it back until it is whole;
// a packet announcing more than limit bytes is never handed on: Read fails
// and the connection is closed. At most a few KiB are read of it.
type packetLimiter struct {
	net.Conn
	limit  int
	refuse func(*PacketTooLarge) // told once, when a packet is refused

	mu     sync.Mutex // paho reads from one goroutine; the lock keeps the race detector honest
	buf    [4096]byte
	start  int   // buf[start:end] is read from the connection, not yet handed on
	end    int   //
	remain int64 // bytes of the current packet (header included) still to hand on
	err    error // sticky: the connection is over
}

func newPacketLimiter(c net.Conn, limit int, refuse func(*PacketTooLarge)) *packetLimiter {
	return &packetLimiter{Conn: c, limit: limit, refuse: refuse}
}

func (l *packetLimiter) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.err != nil {
			return 0, l.err
		}
		if l.remain > 0 && l.end > l.start {
			n := copy(p, l.buf[l.start:min(l.end, l.start+int(min(l.remain, int64(len(l.buf)))))])
			l.start += n
			l.remain -= int64(n)
			return n, nil
		}
		if l.remain > 0 {
			// Inside a packet's body with nothing buffered: read straight
			// into p.
			n, err := l.Conn.Read(p[:min(int64(len(p)), l.remain)])
			l.remain -= int64(n)
			if err != nil {
				l.err = err
			}
			return n, err
		}
		// At a packet boundary: the whole fixed header must be here.
		hlen, length, ok := fixedHeader(l.buf[l.start:l.end])
		switch {
		case ok && hlen < 0:
			l.fail(fmt.Errorf("mqtt: malformed remaining length from the broker"))
		case ok && length > l.limit:
			e := &PacketTooLarge{Type: l.buf[l.start] >> 4, Length: length, Limit: l.limit}
			if e.Type == 3 {
				l.fill(hlen + 2 + 256) // the topic follows the header: best effort
				e.Topic = publishTopic(l.buf[l.start+hlen : l.end])
			}
			l.fail(e)
			l.refuse(e)
		case ok:
			l.remain = int64(hlen + length)
		default:
			if err := l.more(); err != nil {
				if l.end > l.start {
					err = fmt.Errorf("mqtt: connection ended inside a packet header: %w", err)
				}
				l.err = err
			}
		}
	}
}

// more reads at least one more byte into the buffer, moving what is
// buffered to its front first.
func (l *packetLimiter) more() error {
	if l.start > 0 {
		l.end = copy(l.buf[:], l.buf[l.start:l.end])
		l.start = 0
	}
	n, err := l.Conn.Read(l.buf[l.end:])
	l.end += n
	if n > 0 {
		return nil
	}
	return err
}

// fill reads until n bytes are buffered (or the buffer is full, or a read
// fails).
func (l *packetLimiter) fill(n int) {
	for l.end-l.start < min(n, len(l.buf)) {
		if l.more() != nil {
			return
		}
	}
}

func (l *packetLimiter) fail(err error) {
	l.err = err
	l.Conn.Close()
}

// fixedHeader parses an MQTT fixed header at the start of b: its length
// and the packet's remaining length. ok is false while b is too short to
// tell; hlen is -1 for a malformed length (more than four bytes).
func fixedHeader(b []byte) (hlen, length int, ok bool) {
	mult := 1
	for i := 1; i <= 4; i++ {
		if i >= len(b) {
			return 0, 0, false
		}
		length += int(b[i]&0x7f) * mult
		if b[i]&0x80 == 0 {
			return i + 1, length, true
		}
		mult *= 128
	}
	return -1, 0, true
}

// publishTopic reads a PUBLISH's topic from the start of its variable
// header, as far as it is in b.
func publishTopic(b []byte) string {
	if len(b) < 2 {
		return ""
	}
	n := int(b[0])<<8 | int(b[1])
	return string(b[2:min(len(b), 2+n, 2+256)])
}

// dial opens the connection to the broker as paho would (tcp and mqtt
// through a proxy from the environment, ssl, tls and mqtts with the TLS
// config) and puts the packet limiter in front of it.
func (l *Link) dial(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	var c net.Conn
	var err error
	switch uri.Scheme {
	case "tcp", "mqtt":
		c, err = proxy.FromEnvironmentUsing(o.Dialer).Dial("tcp", uri.Host)
	case "ssl", "tls", "mqtts":
		c, err = tls.DialWithDialer(o.Dialer, "tcp", uri.Host, o.TLSConfig)
	default:
		err = fmt.Errorf("unknown scheme %q", uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return newPacketLimiter(c, MaxPacketSize, l.packetRefused), nil
}

// packetRefused raises the alarm for a packet the limiter refused; paho sees
// the connection fail and the link connects again after its backoff.
func (l *Link) packetRefused(e *PacketTooLarge) {
	l.log.Error("mqtt: the broker sent a packet larger than the link takes; dropping the connection (set the broker's message_size_limit, see docs/mqtt.md)",
		"type", e.Type, "bytes", e.Length, "limit", e.Limit, "topic", e.Topic)
	ev := agent.Event{Time: l.cfg.Clock.Now(), Type: agent.EventPacketRefused, Detail: e.Error()}
	if err := l.cfg.Events.Record(context.WithoutCancel(l.runCtx), ev); err != nil {
		l.log.Error("mqtt: alarm not recorded", "type", string(ev.Type), "err", err)
	}
}
