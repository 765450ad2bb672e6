package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portier-io/portier/cloud/mqtt"
)

// MQTTConfig is the mqtt: section: the link to an MQTT broker (docs/mqtt.md).
// An empty section means no link: events stay in the outbox. Secrets are
// never in this file, only paths to files only their owner can read.
type MQTTConfig struct {
	Broker   string   `yaml:"broker"`    // tcp://host:1883 or ssl://host:8883 (also mqtt://, tls://, mqtts://)
	Brokers  []string `yaml:"brokers"`   // more brokers: nodes of one cluster, or standbys
	ClientID string   `yaml:"client_id"` // default portier-<site>-<gateway>
	Prefix   string   `yaml:"prefix"`    // topic prefix, default portier
	SiteID   string   `yaml:"site_id"`   // default salto.site_id

	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"` // mode 0600

	// BrokerOrder: spread (default; the brokers are nodes of one cluster) or
	// in_order (broker first, then the standbys).
	BrokerOrder string `yaml:"broker_order"`

	TLS MQTTTLSConfig `yaml:"tls"`

	// CommandKeyFile holds the shared HMAC key for signed commands (mode
	// 0600; hex, or at least 16 bytes of text). With a key every command
	// must be signed.
	CommandKeyFile string `yaml:"command_key_file"`
	// RequireSignature refuses to start without command_key_file, so a
	// missing key cannot silently turn signatures off.
	RequireSignature bool `yaml:"require_signature"`

	OutboxLimit       int           `yaml:"outbox_limit"`       // depth that raises outbox_full, default 100000 (nothing is dropped)
	OutboxHighWater   float64       `yaml:"outbox_high_water"`  // fraction of the limit that raises outbox_high_water, default 0.5
	TelemetryInterval time.Duration `yaml:"telemetry_interval"` // default 60s

	HomeAssistant MQTTHomeAssistant `yaml:"home_assistant"`

	line int
}

// MQTTTLSConfig configures TLS to the broker.
type MQTTTLSConfig struct {
	CAFile   string `yaml:"ca_file"`   // PEM CA bundle of the broker; default the system roots
	CertFile string `yaml:"cert_file"` // client certificate (mTLS)
	KeyFile  string `yaml:"key_file"`  // its private key, mode 0600
	// InsecureSkipVerify turns off checking the broker's certificate: for a
	// lab broker only, never in production (anyone can then impersonate the
	// broker and send commands). Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// MQTTHomeAssistant configures Home Assistant discovery.
type MQTTHomeAssistant struct {
	Enabled         bool   `yaml:"enabled"`
	DiscoveryPrefix string `yaml:"discovery_prefix"` // default homeassistant
	// AllowUnlock adds a lock entity per door whose UNLOCK opens it: whoever
	// controls Home Assistant then controls the doors. Default false.
	AllowUnlock bool `yaml:"allow_unlock"`
	// AllowLockdown and AllowOfficeMode add a lockdown and an office mode
	// switch per door (office mode holds the door open). Default false.
	AllowLockdown   bool `yaml:"allow_lockdown"`
	AllowOfficeMode bool `yaml:"allow_office_mode"`
}

// UnmarshalYAML decodes the section strictly and validates it, so mistakes
// are reported with the config file's other errors.
func (m *MQTTConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain MQTTConfig
	var p plain
	err := decodeStrict(n, &p) // what decoded is kept, so Check can go on
	*m = MQTTConfig(p)
	m.line = n.Line
	if err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		// A TypeError lets the decoder go on, so the file's other
		// problems are reported with these, each on its own.
		var te yaml.TypeError
		for _, msg := range strings.Split(err.Error(), "\n") {
			te.Errors = append(te.Errors, fmt.Sprintf("line %d: %s", n.Line, msg))
		}
		return &te
	}
	return nil
}

// Enabled reports whether a broker is configured.
func (m MQTTConfig) Enabled() bool { return m.Broker != "" || len(m.Brokers) > 0 }

// URLs lists the configured brokers.
func (m MQTTConfig) URLs() []string {
	var out []string
	if m.Broker != "" {
		out = append(out, m.Broker)
	}
	return append(out, m.Brokers...)
}

// Validate checks the section without reading any file.
func (m MQTTConfig) Validate() error {
	if !m.Enabled() {
		if m.ClientID != "" || m.Username != "" || m.PasswordFile != "" || m.TLS != (MQTTTLSConfig{}) || m.CommandKeyFile != "" ||
			m.RequireSignature || m.HomeAssistant.Enabled || m.OutboxLimit != 0 || m.Prefix != "" || m.SiteID != "" {
			return errors.New("mqtt: broker is not set (mqtt.broker: tcp://host:1883 or ssl://host:8883); remove the mqtt: section to run without a broker")
		}
		return nil
	}
	var errs []string
	tlsUsed := false
	for _, b := range m.URLs() {
		u, err := url.Parse(b)
		if err != nil || u.Host == "" || u.Port() == "" {
			errs = append(errs, fmt.Sprintf("broker %q: want scheme://host:port, e.g. ssl://broker.example:8883", b))
			continue
		}
		if u.User != nil {
			// status, check-config, telemetry and the log all show the
			// address.
			errs = append(errs, fmt.Sprintf("broker %q: a user or password in the address would be shown wherever the address is: put the user in mqtt.username and the password in mqtt.password_file (mode 0600)", u.Redacted()))
			continue
		}
		switch u.Scheme {
		case "tcp", "mqtt":
		case "ssl", "tls", "mqtts":
			tlsUsed = true
		default:
			errs = append(errs, fmt.Sprintf("broker %q: scheme must be tcp, mqtt, ssl, tls or mqtts", b))
		}
	}
	t := m.TLS
	if !tlsUsed && t != (MQTTTLSConfig{}) {
		errs = append(errs, "tls: is set but no broker uses ssl://, tls:// or mqtts://")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, "tls.cert_file and tls.key_file go together (client certificate and its key)")
	}
	if m.BrokerOrder != "" && m.BrokerOrder != mqtt.BrokerSpread && m.BrokerOrder != mqtt.BrokerInOrder {
		errs = append(errs, fmt.Sprintf("broker_order %q: want %s or %s", m.BrokerOrder, mqtt.BrokerSpread, mqtt.BrokerInOrder))
	}
	if m.Username == "" && m.PasswordFile != "" {
		errs = append(errs, "password_file is set but username is not")
	}
	if m.RequireSignature && m.CommandKeyFile == "" {
		errs = append(errs, "require_signature is on but command_key_file is not set")
	}
	for _, a := range []struct {
		key string
		on  bool
	}{{"allow_unlock", m.HomeAssistant.AllowUnlock}, {"allow_lockdown", m.HomeAssistant.AllowLockdown}, {"allow_office_mode", m.HomeAssistant.AllowOfficeMode}} {
		if a.on && m.CommandKeyFile != "" {
			errs = append(errs, "home_assistant."+a.key+" cannot be used with command_key_file: Home Assistant cannot sign its commands")
		}
	}
	if m.OutboxLimit < 0 {
		errs = append(errs, "outbox_limit must not be negative")
	}
	if m.OutboxHighWater < 0 || m.OutboxHighWater >= 1 {
		errs = append(errs, "outbox_high_water is a fraction of outbox_limit between 0 and 1, e.g. 0.5")
	}
	if m.TelemetryInterval < 0 || m.TelemetryInterval > 0 && m.TelemetryInterval < time.Second {
		errs = append(errs, "telemetry_interval must be at least 1s")
	}
	if len(errs) > 0 {
		return errors.New("mqtt: " + strings.Join(errs, "\nmqtt: ")) // one problem a line
	}
	return nil
}

// LinkConfig builds the link's configuration: brokers, ids, topics, TLS,
// credentials and the command key, read from their files (which must be
// mode 0600). The caller adds the link's dependencies (outbox, doors, …).
func (m MQTTConfig) LinkConfig(c *Config) (mqtt.Config, error) {
	if err := m.Validate(); err != nil {
		return mqtt.Config{}, err
	}
	if !m.Enabled() {
		return mqtt.Config{}, errors.New("mqtt: no broker configured")
	}
	site := m.SiteID
	if site == "" {
		site = c.Salto.SiteID
	}
	if site == "" {
		return mqtt.Config{}, errors.New("mqtt: no site id: set mqtt.site_id (or salto.site_id)")
	}
	if c.GatewayID == "" {
		return mqtt.Config{}, errors.New("mqtt: gateway_id is required: it names the gateway's topics")
	}
	lc := mqtt.Config{
		Brokers:           m.URLs(),
		BrokerOrder:       m.BrokerOrder,
		ClientID:          m.ClientID,
		Topics:            mqtt.Topics{Prefix: m.Prefix, Site: site, Gateway: c.GatewayID, Discovery: m.HomeAssistant.DiscoveryPrefix},
		Username:          m.Username,
		OutboxLimit:       m.OutboxLimit,
		HighWater:         m.OutboxHighWater,
		TelemetryInterval: m.TelemetryInterval,
		HomeAssistant: mqtt.HomeAssistant{Enabled: m.HomeAssistant.Enabled, AllowUnlock: m.HomeAssistant.AllowUnlock,
			AllowLockdown: m.HomeAssistant.AllowLockdown, AllowOfficeMode: m.HomeAssistant.AllowOfficeMode},
	}
	if m.PasswordFile != "" {
		pw, err := ReadSecret(c.Resolve(m.PasswordFile), "mqtt.password_file")
		if err != nil {
			return mqtt.Config{}, err
		}
		lc.Password = pw
	}
	if m.CommandKeyFile != "" {
		key, err := ReadSecret(c.Resolve(m.CommandKeyFile), "mqtt.command_key_file")
		if err != nil {
			return mqtt.Config{}, err
		}
		lc.CommandKey = []byte(key)
		if b, err := hex.DecodeString(key); err == nil && len(b) >= 16 {
			lc.CommandKey = b
		}
		if len(lc.CommandKey) < 16 {
			return mqtt.Config{}, errors.New("mqtt.command_key_file: the key is shorter than 16 bytes (use e.g. `openssl rand -hex 32`)")
		}
	}
	tc, err := m.tlsConfig(c)
	if err != nil {
		return mqtt.Config{}, err
	}
	lc.TLS = tc
	if err := lc.Topics.WithDefaults().Validate(); err != nil {
		return mqtt.Config{}, fmt.Errorf("mqtt: %w", err)
	}
	return lc, nil
}

// tlsConfig builds the TLS configuration: the CA bundle, and a client
// certificate re-read at each handshake so a renewed one needs no restart.
func (m MQTTConfig) tlsConfig(c *Config) (*tls.Config, error) {
	t := m.TLS
	if t == (MQTTTLSConfig{}) {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(c.Resolve(t.CAFile))
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt.tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		certPath, keyPath := c.Resolve(t.CertFile), c.Resolve(t.KeyFile)
		load := func() (*tls.Certificate, error) {
			if err := CheckSecretMode(keyPath); err != nil {
				return nil, fmt.Errorf("mqtt.tls.key_file: %w", err)
			}
			pair, err := tls.LoadX509KeyPair(certPath, keyPath)
			if err != nil {
				return nil, fmt.Errorf("mqtt.tls: client certificate: %w", err)
			}
			return &pair, nil
		}
		if _, err := load(); err != nil {
			return nil, err
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return load() }
	}
	return tc, nil
}
