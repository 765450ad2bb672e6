package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/portier-io/portier/cloud/saltoks"
)

// SaltoConfig is the salto: section: how to reach Salto KS and how often to
// sync. Secrets are never in this file, only paths to files only their owner
// can read. docs/saltoks.md describes every key.
type SaltoConfig struct {
	IdentityURL      string `yaml:"identity_url"` // e.g. https://identity.eu.my-clay.com
	APIURL           string `yaml:"api_url"`      // e.g. https://connect.my-clay.com
	SiteID           string `yaml:"site_id"`      // Salto site UUID
	ClientID         string `yaml:"client_id"`
	ClientSecretFile string `yaml:"client_secret_file"`
	Grant            string `yaml:"grant"` // password (default), refresh_token, client_credentials
	Username         string `yaml:"username"`
	PasswordFile     string `yaml:"password_file"`
	RefreshTokenFile string `yaml:"refresh_token_file"`
	Scope            string `yaml:"scope"` // default user_api.full_access

	SyncInterval   time.Duration `yaml:"sync_interval"`   // default 15m
	SyncJitter     time.Duration `yaml:"sync_jitter"`     // default sync_interval/10
	RequestTimeout time.Duration `yaml:"request_timeout"` // default 30s
	StaleAfter     time.Duration `yaml:"stale_after"`     // 0: keep deciding from an old cache
	PageSize       int           `yaml:"page_size"`       // default 500
	Concurrency    int           `yaml:"concurrency"`     // access groups read side by side, default 32
	// MaxRequestsInFlight bounds the requests to Salto KS open at once,
	// default 16 (docs/saltoks.md: Salto publishes no rate limit).
	MaxRequestsInFlight int `yaml:"max_requests_in_flight"`
}

// Present reports whether the config has a salto: section.
func (s SaltoConfig) Present() bool { return s != SaltoConfig{} }

// validate checks the addresses and the site id that are set, with the
// checks the Salto client makes (the rest is Configured's), and writes the
// site id in canonical form. Each message starts with name and the key.
func (s *SaltoConfig) validate(name string) []string {
	var errs []string
	for _, f := range []struct {
		key, val string
		check    func(string) error
	}{{"identity_url", s.IdentityURL, saltoks.CheckIdentityURL}, {"api_url", s.APIURL, saltoks.CheckAPIURL}} {
		if f.val == "" {
			continue
		}
		if err := f.check(f.val); err != nil {
			errs = append(errs, fmt.Sprintf("%s: salto.%s: %v", name, f.key, err))
		}
	}
	if s.SiteID != "" {
		g, err := saltoks.ParseSiteID(s.SiteID)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: salto.site_id: %v", name, err))
		} else {
			s.SiteID = g.String()
		}
	}
	return errs
}

// Configured says what is missing for talking to Salto, or nil.
func (s SaltoConfig) Configured() error {
	var missing []string
	for _, f := range []struct{ key, val string }{
		{"identity_url", s.IdentityURL}, {"api_url", s.APIURL}, {"site_id", s.SiteID}, {"client_id", s.ClientID},
	} {
		if f.val == "" {
			missing = append(missing, "salto."+f.key)
		}
	}
	switch saltoks.Grant(s.Grant) {
	case "", saltoks.GrantPassword:
		if s.Username == "" {
			missing = append(missing, "salto.username")
		}
		if s.PasswordFile == "" {
			missing = append(missing, "salto.password_file")
		}
	case saltoks.GrantRefreshToken:
		if s.RefreshTokenFile == "" {
			missing = append(missing, "salto.refresh_token_file")
		}
	case saltoks.GrantClientCredentials:
		if s.ClientSecretFile == "" {
			missing = append(missing, "salto.client_secret_file")
		}
	default:
		return fmt.Errorf("salto.grant %q is not password, refresh_token or client_credentials", s.Grant)
	}
	if s.SyncInterval < 0 || s.SyncJitter < 0 || s.RequestTimeout < 0 || s.StaleAfter < 0 || s.PageSize < 0 || s.Concurrency < 0 || s.MaxRequestsInFlight < 0 {
		return errors.New("salto: durations and sizes must not be negative")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the salto: section lacks %s (see docs/saltoks.md)", strings.Join(missing, ", "))
	}
	return nil
}

// secretFiles lists the section's secret files the grant uses, by key.
func (s SaltoConfig) secretFiles() []struct{ key, path string } {
	files := []struct{ key, path string }{{"salto.client_secret_file", s.ClientSecretFile}}
	switch saltoks.Grant(s.Grant) {
	case "", saltoks.GrantPassword:
		files = append(files, struct{ key, path string }{"salto.password_file", s.PasswordFile})
	case saltoks.GrantRefreshToken:
		files = append(files, struct{ key, path string }{"salto.refresh_token_file", s.RefreshTokenFile})
	}
	return files
}
