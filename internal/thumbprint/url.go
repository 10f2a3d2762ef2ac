package thumbprint

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// wellKnownPath is appended to the issuer to find the discovery document.
const wellKnownPath = "/.well-known/openid-configuration"

// target is a provider Url, checked and split.
type target struct {
	url          string // as IAM stores it: no scheme
	issuer       string // "https://" + url
	discoveryURL string
	host         string // host:port of the issuer, port 443 unless given
}

// parseProviderURL accepts a provider Url with or without "https://" and refuses
// other schemes, userinfo, a query, a fragment and an empty host.
func parseProviderURL(raw string) (target, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return target{}, errorf(KindBadURL, "empty Url")
	}
	if i := strings.Index(s, "://"); i >= 0 {
		if !strings.EqualFold(s[:i], "https") {
			return target{}, errorf(KindBadURL, "scheme %q refused: the Url must be https", s[:i])
		}
		s = s[i+len("://"):]
	}
	if strings.HasPrefix(s, "/") {
		return target{}, errorf(KindBadURL, "no host in %q", raw)
	}
	if strings.Contains(s, "?") {
		return target{}, errorf(KindBadURL, "query refused in %q", raw)
	}
	if strings.Contains(s, "#") {
		return target{}, errorf(KindBadURL, "fragment refused in %q", raw)
	}
	u, err := url.Parse("https://" + s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return target{}, errorf(KindBadURL, "%q: %v", raw, err)
	}
	if u.User != nil {
		return target{}, errorf(KindBadURL, "userinfo refused in %q", raw)
	}
	host, err := hostPort(u)
	if err != nil {
		return target{}, errorf(KindBadURL, "%q: %v", raw, err)
	}
	issuer := "https://" + s
	return target{
		url:          s,
		issuer:       issuer,
		discoveryURL: strings.TrimSuffix(issuer, "/") + wellKnownPath,
		host:         host,
	}, nil
}

// IssuerHost returns the host:port (port 443 unless given) of a provider Url
// as IAM stores it, "https://" optional.
func IssuerHost(providerURL string) (string, error) {
	t, err := parseProviderURL(providerURL)
	if err != nil {
		return "", err
	}
	return t.host, nil
}

// hostPort returns the lowercased host:port of an https URL, port 443 unless given.
func hostPort(u *url.URL) (string, error) {
	name := strings.ToLower(u.Hostname())
	if name == "" {
		return "", fmt.Errorf("no host")
	}
	if !validHost(name) {
		return "", fmt.Errorf("bad host %q", name)
	}
	port := u.Port()
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return "", fmt.Errorf("empty port")
		}
		port = "443"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("bad port %q", port)
	}
	return net.JoinHostPort(name, port), nil
}

// serverName is the SNI for host:port: the host name, or "" for an IP literal.
func serverName(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if net.ParseIP(host) != nil {
		return ""
	}
	return host
}

// hostOnly strips the port of host:port.
func hostOnly(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return host
}

// validHost accepts an IP literal or a name of letters, digits, '-', '_' and '.'.
func validHost(name string) bool {
	if net.ParseIP(name) != nil {
		return true
	}
	if len(name) > 253 {
		return false
	}
	for _, r := range name {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}
