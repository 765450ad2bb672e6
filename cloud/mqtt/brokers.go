package mqtt

import (
	"fmt"
	"net/url"
	"strings"
)

// Broker orders (Config.BrokerOrder): how a link with several brokers picks
// the one to connect to.
const (
	// BrokerSpread treats the brokers as equal nodes of one cluster. Each
	// gateway starts at a random one, so a fleet spreads over the nodes (and
	// a restarted cluster is not stormed on its first node); after a
	// connection ends it tries another node first, chosen at random among
	// the rest, so the gateways of a failed node spread over the survivors.
	BrokerSpread = "spread"
	// BrokerInOrder tries the brokers in the configured order on every
	// connect: a primary and its standbys.
	BrokerInOrder = "in_order"
)

// brokerList keeps the configured brokers and where the next connection
// attempt starts. Only Run's goroutine uses it.
type brokerList struct {
	urls   []*url.URL
	spread bool
	jitter func() float64
	next   int
}

func newBrokerList(cfg Config) (*brokerList, error) {
	b := &brokerList{spread: cfg.BrokerOrder != BrokerInOrder, jitter: cfg.Jitter}
	for _, s := range cfg.Brokers {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("mqtt: broker url %q: %w", s, err)
		}
		b.urls = append(b.urls, u)
	}
	if b.spread {
		b.next = b.pick(len(b.urls))
	}
	return b, nil
}

// pick returns a random index below n.
func (b *brokerList) pick(n int) int {
	if n <= 1 {
		return 0
	}
	return min(n-1, int(b.jitter()*float64(n)))
}

// servers lists the brokers in the order the next attempt tries them; paho
// walks them until one accepts. The pointers identify the brokers in
// index.
func (b *brokerList) servers() []*url.URL {
	out := make([]*url.URL, 0, len(b.urls))
	for i := range b.urls {
		out = append(out, b.urls[(b.next+i)%len(b.urls)])
	}
	return out
}

// index returns the position of a broker from servers, or -1.
func (b *brokerList) index(u *url.URL) int {
	for i, v := range b.urls {
		if v == u {
			return i
		}
	}
	return -1
}

// done records that an attempt ended; last is the broker it connected to,
// or tried last when it failed (-1: none). The next attempt starts at
// another broker, chosen at random: after a lost connection the gateways of
// a failed node spread over the others, a broker that hung until the
// timeout is not tried first again, and after a long outage of the whole
// cluster each gateway comes back to a random node, whatever node it was
// on before.
func (b *brokerList) done(last int) {
	n := len(b.urls)
	if !b.spread || last < 0 || n < 2 {
		return
	}
	b.next = (last + 1 + b.pick(n-1)) % n
}

// validBrokerOrder checks Config.BrokerOrder.
func validBrokerOrder(o string) error {
	switch o {
	case "", BrokerSpread, BrokerInOrder:
		return nil
	}
	return fmt.Errorf("broker order %q: want %s", o, strings.Join([]string{BrokerSpread, BrokerInOrder}, " or "))
}
