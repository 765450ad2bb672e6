package mqtt

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/portier-io/portier/agent"
)

// Defaults of Config.
const (
	DefaultPrefix            = "portier"
	DefaultDiscoveryPrefix   = "homeassistant"
	DefaultOutboxLimit       = 100_000
	DefaultHighWater         = 0.5
	DefaultTelemetryInterval = time.Minute
	DefaultInFlight          = 256
	DefaultMaxCommandTTL     = time.Hour
	DefaultClockSkew         = 5 * time.Second
	DefaultBackoffMin        = time.Second
	DefaultBackoffMax        = time.Minute
	DefaultConnectTimeout    = 15 * time.Second
	DefaultAckTimeout        = 30 * time.Second
	DefaultKeepAlive         = 30 * time.Second
	DefaultStateInterval     = time.Second
	DefaultOutboxCheck       = 5 * time.Second
	MaxCommandSize           = 8 << 10
)

// HomeAssistant configures Home Assistant MQTT discovery.
type HomeAssistant struct {
	Enabled bool
	// AllowUnlock adds a lock entity per door whose UNLOCK command pulses the
	// door. Off by default: it hands door control to whoever controls HA.
	AllowUnlock bool
	// AllowLockdown and AllowOfficeMode add a lockdown and an office mode
	// switch per door, run like the lockdown and office_mode commands. Off
	// by default for the same reason.
	AllowLockdown   bool
	AllowOfficeMode bool
}

// Config configures a Link. Zero values take the defaults above.
type Config struct {
	Brokers  []string // tcp://host:1883, mqtt://…, ssl://host:8883, tls://…, mqtts://…
	ClientID string   // default portier-<site>-<gateway>
	Topics   Topics   // Site and Gateway required; Prefix and Discovery default
	Username string
	Password string
	// BrokerOrder is BrokerSpread (default: the brokers are nodes of one
	// cluster) or BrokerInOrder (a primary and its standbys).
	BrokerOrder string
	// TLS is used for ssl://, tls:// and mqtts:// brokers (custom CA,
	// client certificate). nil: the system roots.
	TLS *tls.Config
	// CommandKey, when set, makes an HMAC-SHA256 signature mandatory on
	// every command (see docs/mqtt.md for the signed bytes).
	CommandKey []byte
	// OutboxLimit is the outbox depth that raises outbox_full; HighWater (a
	// fraction of it) raises outbox_high_water. Neither drops events.
	OutboxLimit int
	HighWater   float64
	// TelemetryInterval between telemetry messages.
	TelemetryInterval time.Duration
	// InFlight bounds the QoS 1 events published and not yet acknowledged.
	InFlight int
	// MaxCommandTTL refuses commands whose expires_at is further ahead.
	MaxCommandTTL time.Duration
	// ClockSkew is allowed between the sender's clock and the gateway's.
	ClockSkew     time.Duration
	HomeAssistant HomeAssistant
	// RefusalBurst refused commands per cause and RefusalInterval are
	// recorded one by one; the rest of the interval's are summed up in one
	// commands_refused event (see refusals.go). A negative burst sums up
	// every refusal.
	RefusalInterval time.Duration
	RefusalBurst    int

	BackoffMin, BackoffMax time.Duration
	ConnectTimeout         time.Duration
	AckTimeout             time.Duration // a PUBACK later than this drops the connection
	KeepAlive              time.Duration
	StateInterval          time.Duration // how often door states are polled for changes
	OutboxCheck            time.Duration // how often the outbox depth is checked

	Outbox     Outbox          // required
	Meter      OutboxMeter     // required
	Events     agent.EventSink // required: command attempts and outbox alarms
	CommandLog CommandLog      // required
	Doors      Doors           // required
	// DoorNames are the doors' display names (door id → name) for Home
	// Assistant; a door without one is shown by its id.
	DoorNames   map[string]string
	AccessCodes AccessCodes     // optional: access_code_* commands are refused without it
	Syncer      Syncer          // optional: sync is refused without it
	Telemetry   TelemetrySource // optional
	// Discovery (optional) remembers the Home Assistant entities announced;
	// without it an entity dropped from the configuration stays in Home
	// Assistant until removed there by hand.
	Discovery DiscoveryLog
	// ClockGuard (optional) decides the expiry policy; without it the
	// telemetry source's ClockTrusted does, and without both the clock is
	// trusted.
	ClockGuard ClockGuard

	Clock  agent.Clock    // default agent.SystemClock
	Logger *slog.Logger   // default discard
	Jitter func() float64 // in [0,1); default math/rand/v2
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	c.Topics = c.Topics.WithDefaults()
	if c.ClientID == "" {
		c.ClientID = "portier-" + c.Topics.Site + "-" + c.Topics.Gateway
	}
	if c.OutboxLimit == 0 {
		c.OutboxLimit = DefaultOutboxLimit
	}
	if c.HighWater == 0 {
		c.HighWater = DefaultHighWater
	}
	if c.InFlight == 0 {
		c.InFlight = DefaultInFlight
	}
	def(&c.TelemetryInterval, DefaultTelemetryInterval)
	def(&c.MaxCommandTTL, DefaultMaxCommandTTL)
	def(&c.ClockSkew, DefaultClockSkew)
	def(&c.BackoffMin, DefaultBackoffMin)
	def(&c.BackoffMax, DefaultBackoffMax)
	def(&c.ConnectTimeout, DefaultConnectTimeout)
	def(&c.AckTimeout, DefaultAckTimeout)
	def(&c.KeepAlive, DefaultKeepAlive)
	def(&c.StateInterval, DefaultStateInterval)
	def(&c.OutboxCheck, DefaultOutboxCheck)
	def(&c.RefusalInterval, DefaultRefusalInterval)
	if c.RefusalBurst == 0 {
		c.RefusalBurst = DefaultRefusalBurst
	}
	if c.Clock == nil {
		c.Clock = agent.NewSystemClock()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Jitter == nil {
		c.Jitter = rand.Float64
	}
	return c
}

// Validate checks the configuration after defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no broker url"))
	}
	for _, b := range c.Brokers {
		u, err := url.Parse(b)
		if err != nil || u.Host == "" {
			errs = append(errs, fmt.Errorf("broker url %q: want scheme://host:port", b))
			continue
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts":
		default:
			errs = append(errs, fmt.Errorf("broker url %q: scheme must be tcp, mqtt, ssl, tls or mqtts", b))
		}
	}
	if err := validBrokerOrder(c.BrokerOrder); err != nil {
		errs = append(errs, err)
	}
	if err := c.Topics.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.CommandKey != nil && len(c.CommandKey) < 16 {
		errs = append(errs, errors.New("command key: at least 16 bytes"))
	}
	if c.OutboxLimit < 1 {
		errs = append(errs, errors.New("outbox limit must be positive"))
	}
	if c.HighWater <= 0 || c.HighWater >= 1 {
		errs = append(errs, errors.New("outbox high-water fraction must be between 0 and 1"))
	}
	if c.InFlight < 1 || c.InFlight > 65000 {
		errs = append(errs, errors.New("in-flight window must be 1–65000"))
	}
	if c.BackoffMin > c.BackoffMax {
		errs = append(errs, errors.New("backoff minimum exceeds maximum"))
	}
	for name, missing := range map[string]bool{
		"outbox": c.Outbox == nil, "outbox meter": c.Meter == nil, "event sink": c.Events == nil,
		"command log": c.CommandLog == nil, "doors": c.Doors == nil,
	} {
		if missing {
			errs = append(errs, fmt.Errorf("no %s", name))
		}
	}
	if c.Doors != nil {
		for _, d := range c.Doors.DoorIDs() {
			if !ValidID(d) {
				errs = append(errs, fmt.Errorf("door id %q cannot be a topic level: %s", d, IDRule))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	return nil
}
