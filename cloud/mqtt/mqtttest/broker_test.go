package mqtttest_test

import (
	"net"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cloud/mqtt/mqtttest"
)

// connectPacket is an MQTT 3.1.1 CONNECT with client id "c", user "u" and
// password "p", clean session, keepalive 60 s.
var connectPacket = []byte{
	0x10, 19, // CONNECT, remaining length
	0, 4, 'M', 'Q', 'T', 'T', 4, 0xC2, 0, 60, // protocol, level 4, flags, keepalive
	0, 1, 'c', 0, 1, 'u', 0, 1, 'p',
}

// TestCloseWhileClientsConnect stops brokers while clients are connecting,
// connected and being refused — the moment mochi's own listener races and
// deadlocks on. Under -race this fails if Close is not clean; without a
// fix it hangs until the test timeout.
func TestCloseWhileClientsConnect(t *testing.T) {
	for round := range 30 {
		b, err := mqtttest.Start(mqtttest.Options{Username: "u", Password: "p"})
		require.NoError(t, err)
		addr := b.Addr()
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				for {
					c, err := net.DialTimeout("tcp", addr, time.Second)
					if err != nil {
						return // the broker is gone
					}
					pkt := connectPacket
					if i%2 == 1 {
						pkt = append([]byte(nil), connectPacket...)
						pkt[len(pkt)-1] = 'x' // a refused password
					}
					_, _ = c.Write(pkt)
					_ = c.SetReadDeadline(time.Now().Add(time.Second))
					var ack [4]byte
					_, _ = c.Read(ack[:])
					if round%2 == 0 {
						_ = c.Close() // leave at once, sometimes mid-attach
					} else {
						defer c.Close() // stay connected through Close
					}
				}
			})
		}
		// Let some connections in (no clock to inject: this is real I/O).
		for ok := false; !ok; {
			c, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			_, _ = c.Write(connectPacket)
			var ack [4]byte
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _ := c.Read(ack[:])
			ok = n == 4 && ack[0] == 0x20 && ack[3] == 0 // CONNACK accepted
			_ = c.Close()
		}
		require.NoError(t, b.Close())
		wg.Wait()
		_, err = net.DialTimeout("tcp", addr, time.Second)
		assert.Error(t, err, "round %d: the address is free after Close", round)
	}
}

func TestPublishSubscribeAndAuth(t *testing.T) {
	b, err := mqtttest.Start(mqtttest.Options{Username: "u", Password: "p"})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })

	got := make(chan string, 1)
	require.NoError(t, b.Subscribe("a/#", func(topic string, payload []byte) { got <- topic + "=" + string(payload) }))

	bad := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetUsername("u").SetPassword("x").SetAutoReconnect(false))
	tok := bad.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.Error(t, tok.Error(), "a wrong password is refused")

	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetUsername("u").SetPassword("p").SetAutoReconnect(false))
	tok = c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer c.Disconnect(0)
	pub := c.Publish("a/b", 1, false, "hi")
	require.True(t, pub.WaitTimeout(10*time.Second))
	require.NoError(t, pub.Error())
	select {
	case m := <-got:
		assert.Equal(t, "a/b=hi", m)
	case <-time.After(10 * time.Second):
		t.Fatal("the inline subscriber got nothing")
	}

	in := make(chan string, 1)
	c.Subscribe("d/#", 1, func(_ paho.Client, m paho.Message) { in <- string(m.Payload()) }).WaitTimeout(10 * time.Second)
	require.NoError(t, b.Publish("d/e", []byte("from the broker"), false))
	select {
	case m := <-in:
		assert.Equal(t, "from the broker", m)
	case <-time.After(10 * time.Second):
		t.Fatal("the client got nothing from Publish")
	}
}

// TestOverlappingSubscriptions: two in-broker subscriptions whose filters
// both match a message each get it.
func TestOverlappingSubscriptions(t *testing.T) {
	b, err := mqtttest.Start(mqtttest.Options{})
	require.NoError(t, err)
	defer b.Close()
	got := make(chan string, 4)
	for _, f := range []string{"#", "a/#"} {
		require.NoError(t, b.Subscribe(f, func(topic string, _ []byte) { got <- f + " " + topic }))
	}
	require.NoError(t, b.Publish("a/b", []byte("x"), false))
	var seen []string
	for range 2 {
		select {
		case s := <-got:
			seen = append(seen, s)
		case <-time.After(30 * time.Second):
			t.Fatalf("only %v", seen)
		}
	}
	assert.ElementsMatch(t, []string{"# a/b", "a/# a/b"}, seen)
}
