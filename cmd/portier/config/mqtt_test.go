package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/portier-io/portier/cloud/mqtt"
)

const mqttDoors = "gateway_id: gw1\ndoors:\n  - {id: front, mode: card, salto_locks: [0b5e0000-0000-4000-8000-000000000001]}\n"

func TestMQTTConfigOptional(t *testing.T) {
	for _, y := range []string{mqttDoors, mqttDoors + "mqtt:\n", mqttDoors + "mqtt: {}\n"} {
		cfg, err := Parse([]byte(y), "t.yaml")
		require.NoError(t, err, y)
		assert.False(t, cfg.MQTT.Enabled(), "no broker, no link: %q", y)
	}
}

func TestMQTTConfigValidate(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"mqtt: {username: gw}", "broker is not set"},
		{"mqtt: {broker: \"broker:1883\"}", "want scheme://host:port"},
		{"mqtt: {broker: \"ws://b:80\"}", "scheme must be"},
		{"mqtt: {broker: \"tcp://b:1883\", tls: {ca_file: ca.pem}}", "no broker uses ssl"},
		{"mqtt: {broker: \"ssl://b:8883\", tls: {cert_file: c.pem}}", "go together"},
		{"mqtt: {broker: \"tcp://b:1883\", require_signature: true}", "command_key_file is not set"},
		{"mqtt: {broker: \"tcp://b:1883\", outbox_high_water: 1.5}", "outbox_high_water"},
		{"mqtt: {broker: \"tcp://b:1883\", password_file: pw}", "username is not"},
		{"mqtt: {broker: \"tcp://b:1883\", brokr: x}", "unknown key \"brokr\""},
		{"mqtt: {broker: \"tcp://b:1883\", broker_order: random}", "broker_order \"random\": want spread or in_order"},
		{"mqtt: {broker: \"tcp://b:1883\", command_key_file: k, home_assistant: {enabled: true, allow_unlock: true}}", "cannot sign"},
		{"mqtt: {broker: \"tcp://b:1883\", command_key_file: k, home_assistant: {enabled: true, allow_lockdown: true}}", "home_assistant.allow_lockdown cannot"},
		{"mqtt: {broker: \"tcp://b:1883\", command_key_file: k, home_assistant: {enabled: true, allow_office_mode: true}}", "home_assistant.allow_office_mode cannot"},
		{"mqtt: {broker: \"tcp://gw:s3cret@b:1883\"}", `broker "tcp://gw:xxxxx@b:1883": a user or password in the address would be shown wherever the address is: put the user in mqtt.username and the password in mqtt.password_file`},
	} {
		_, err := Parse([]byte(mqttDoors+tc.yaml+"\n"), "t.yaml")
		require.Error(t, err, tc.yaml)
		assert.Contains(t, err.Error(), tc.want, tc.yaml)
		assert.NotContains(t, err.Error(), "s3cret", "a message never shows a password")
	}
}

func TestMQTTLinkConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), mode))
	}
	write("pw", "s3cret\n", 0o600)
	write("key", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0o600)
	write("ca.pem", testCAPEM(t), 0o644)
	y := mqttDoors + `salto: {site_id: 5f0c1a2b-0000-4000-8000-000000000001}
mqtt:
  broker: ssl://broker.example:8883
  brokers: [ssl://standby.example:8883]
  broker_order: in_order
  username: gw1
  password_file: pw
  tls: {ca_file: ca.pem}
  command_key_file: key
  require_signature: true
  outbox_limit: 5000
  outbox_high_water: 0.25
  telemetry_interval: 30s
  home_assistant: {enabled: true}
`
	path := filepath.Join(dir, "portier.yaml")
	require.NoError(t, os.WriteFile(path, []byte(y), 0o644))
	cfg, err := Parse([]byte(y), path)
	require.NoError(t, err)
	cfg.path = path
	require.True(t, cfg.MQTT.Enabled())

	lc, err := cfg.MQTT.LinkConfig(cfg)
	require.NoError(t, err)
	assert.Equal(t, []string{"ssl://broker.example:8883", "ssl://standby.example:8883"}, lc.Brokers)
	assert.Equal(t, mqtt.BrokerInOrder, lc.BrokerOrder)
	assert.Equal(t, "5f0c1a2b-0000-4000-8000-000000000001", lc.Topics.Site, "the site defaults to salto.site_id")
	assert.Equal(t, "gw1", lc.Topics.Gateway)
	assert.Equal(t, "s3cret", lc.Password)
	assert.Len(t, lc.CommandKey, 32, "a hex key is decoded")
	require.NotNil(t, lc.TLS)
	assert.NotNil(t, lc.TLS.RootCAs)
	assert.False(t, lc.TLS.InsecureSkipVerify)
	assert.Equal(t, 5000, lc.OutboxLimit)
	assert.InDelta(t, 0.25, lc.HighWater, 1e-9)
	assert.True(t, lc.HomeAssistant.Enabled)

	// A secret others can read is refused.
	require.NoError(t, os.Chmod(filepath.Join(dir, "pw"), 0o644))
	_, err = cfg.MQTT.LinkConfig(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "chmod 600")
	require.NoError(t, os.Chmod(filepath.Join(dir, "pw"), 0o600))

	// A short key is refused.
	write("key", "short\n", 0o600)
	_, err = cfg.MQTT.LinkConfig(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "16 bytes")
}

// testCAPEM makes a self-signed CA certificate in PEM.
func testCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestMQTTConfigDocumented: the mqtt: example in docs/mqtt.md is a valid
// section with every key.
func TestMQTTConfigDocumented(t *testing.T) {
	md, err := os.ReadFile("../../../docs/mqtt.md")
	require.NoError(t, err)
	doc := string(md)
	start := strings.Index(doc, "```yaml\nmqtt:")
	require.GreaterOrEqual(t, start, 0, "docs/mqtt.md has the mqtt: example")
	block := doc[start+len("```yaml\n"):]
	block = block[:strings.Index(block, "```")]
	_, err = Parse([]byte(mqttDoors+block), "docs/mqtt.md")
	require.NoError(t, err)
	var keys map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(block), &keys))
	sec := keys["mqtt"].(map[string]any)
	for _, k := range []string{"broker", "brokers", "broker_order", "client_id", "prefix", "site_id", "username", "password_file", "tls", "command_key_file",
		"require_signature", "outbox_limit", "outbox_high_water", "telemetry_interval", "home_assistant"} {
		assert.Contains(t, sec, k)
	}
}
