package saltoks

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"syscall"
)

// The mistakes installers make when they copy Salto KS addresses and ids
// from documentation or from the Salto KS app, each answered by Salto with an
// error that does not say what is wrong (a 404 for a doubled path, 400 1100
// for a site uid). The config check, portier init and the client share these
// checks; the client also hints at them on the matching answers.

// apiVersion matches an API version path segment such as /v1.2 at the end
// of a URL path.
var apiVersion = regexp.MustCompile(`/v\d+(\.\d+)?/?$`)

// tokenPath is where the client asks the identity server for tokens.
const tokenPath = "/connect/token"

// CheckAPIURL checks the Connect API address: an http(s) URL of the server,
// without the version the client adds to every request.
func CheckAPIURL(s string) error {
	if err := checkHTTPURL(s, "https://connect.my-clay.com"); err != nil {
		return err
	}
	u, _ := url.Parse(s)
	if v := apiVersion.FindString(u.Path); v != "" {
		return fmt.Errorf("%q ends in the API version %s, which the client adds to every request itself: give the server's address, e.g. %s", s, strings.TrimSuffix(v, "/"), trimPath(u, apiVersion.ReplaceAllString(u.Path, "")))
	}
	return nil
}

// CheckIdentityURL checks the identity server address: an http(s) URL of the
// server, without the token endpoint the client adds.
func CheckIdentityURL(s string) error {
	if err := checkHTTPURL(s, "https://identity.eu.my-clay.com"); err != nil {
		return err
	}
	u, _ := url.Parse(s)
	if p := strings.TrimSuffix(u.Path, "/"); strings.HasSuffix(p, tokenPath) {
		return fmt.Errorf("%q ends in %s, which the client adds itself: give the identity server's address, e.g. %s", s, tokenPath, trimPath(u, strings.TrimSuffix(p, tokenPath)))
	}
	return nil
}

func checkHTTPURL(s, example string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("required (e.g. %s)", example)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL such as %s", s, example)
	}
	return nil
}

// trimPath is u with path p, for the corrected address in a message.
func trimPath(u *url.URL, p string) string {
	c := *u
	c.Path, c.RawPath, c.RawQuery, c.Fragment = p, "", "", ""
	return c.String()
}

// siteUID matches a site's human uid, such as DE0000000001 or ES0000012345
// (two letters for the country, then digits), which the Salto KS app shows
// where the API wants the site's UUID.
var siteUID = regexp.MustCompile(`^[A-Za-z]{2}\d{6,}$`)

// IsSiteUID reports whether s looks like a site uid rather than a site id.
func IsSiteUID(s string) bool { return siteUID.MatchString(strings.TrimSpace(s)) }

// SiteUIDHint says where the site's UUID is, for a site uid given as the id.
const SiteUIDHint = "the Salto KS app shows this site uid; the API wants the site's UUID, which the list of sites (GET /v1.2/sites) gives next to each site_uid: `portier init --check` with --salto-site-id set to the uid looks it up"

// ParseSiteID reads a site id: a GUID (ParseGUID), in canonical form. A site
// uid given instead is refused with SiteUIDHint.
func ParseSiteID(s string) (GUID, error) {
	if IsSiteUID(s) {
		return "", fmt.Errorf("%q is the site's uid, not its id: %s", s, SiteUIDHint)
	}
	return ParseGUID(s)
}

// hint explains an error answer that a mistaken address or id typically
// causes, "" when none applies: a 404 from an API address with a path, a
// 400 for a site uid in a site path, a 404 from the token endpoint.
func (c *Client) hint(status int, code, path string) string {
	switch {
	case status == 404 && path == tokenPath:
		return "the identity server has no " + tokenPath + ": salto.identity_url must be the server's address (e.g. https://identity.eu.my-clay.com), the client adds " + tokenPath
	case status == 404 && strings.Trim(c.base.Path, "/") != "":
		return fmt.Sprintf("salto.api_url has the path %s, which every request is put under: the Connect API answers at the server's address (e.g. https://connect.my-clay.com), and the client adds /%s itself", c.base.Path, c.cfg.Version)
	case status == 400 && code == CodeInvalidParameter:
		if site, ok := strings.CutPrefix(path, "/"+c.cfg.Version+"/sites/"); ok {
			site, _, _ = strings.Cut(site, "/")
			if site, err := url.PathUnescape(site); err == nil && IsSiteUID(site) {
				return fmt.Sprintf("salto.site_id %q is the site's uid, not its id: %s", site, SiteUIDHint)
			}
		}
	}
	return ""
}

// netHint explains a request that reached no server, "" when nothing more
// can be said than the error: a host name that does not resolve, a port
// nobody listens on, a certificate the gateway cannot trust (on a gateway
// without a real-time clock, often a clock far off). setting is the config
// key of the address (salto.api_url or salto.identity_url).
func netHint(err error, setting string) string {
	var dns *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var op *net.OpError
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return fmt.Sprintf("the host name %s does not resolve: check %s for a typo, then the gateway's DNS and network (`getent hosts %[1]s`)", dns.Name, setting)
	case errors.As(err, &dns):
		return fmt.Sprintf("the host name %s could not be looked up: check the gateway's network and its DNS server (/etc/resolv.conf)", dns.Name)
	case errors.Is(err, syscall.ECONNREFUSED) && errors.As(err, &op) && op.Addr != nil:
		return fmt.Sprintf("nothing accepts connections at %s: check the host and port in %s, and any firewall or proxy between", op.Addr, setting)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "the server's certificate is not valid at the gateway's time: check the gateway's clock (timedatectl; a Pi without a real-time clock needs NTP)"
	case errors.As(err, &unknownCA):
		return fmt.Sprintf("the server's certificate is signed by an authority this gateway does not trust: install the ca-certificates package, check %s, or look for a proxy that intercepts TLS", setting)
	}
	return ""
}
