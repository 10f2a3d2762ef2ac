package thumbprint

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestParseDiscovery(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		issuer   string
		jwks     string
		jwksHost string
		kind     Kind
	}{
		{name: "minimal", body: `{"issuer":"https://idp","jwks_uri":"https://idp/keys"}`,
			issuer: "https://idp", jwks: "https://idp/keys", jwksHost: "idp:443"},
		{name: "port, upper-case host, other fields", body: ` {"jwks_uri":"https://KEYS.example:8443/k","issuer":"https://idp/x","scopes_supported":["openid"]} `,
			issuer: "https://idp/x", jwks: "https://KEYS.example:8443/k", jwksHost: "keys.example:8443"},
		{name: "IPv6 literal", body: `{"jwks_uri":"https://[::1]/keys"}`, jwks: "https://[::1]/keys", jwksHost: "[::1]:443"},
		{name: "null issuer", body: `{"issuer":null,"jwks_uri":"https://idp/keys"}`, jwks: "https://idp/keys", jwksHost: "idp:443"},
		{name: "empty", body: ``, kind: KindMalformedJSON},
		{name: "null", body: `null`, kind: KindMalformedJSON},
		{name: "string", body: `"https://idp/keys"`, kind: KindMalformedJSON},
		{name: "trailing data", body: `{"jwks_uri":"https://idp/keys"} {}`, kind: KindMalformedJSON},
		{name: "trailing bracket", body: `{"jwks_uri":"https://idp/keys"}]`, kind: KindMalformedJSON},
		{name: "issuer object", body: `{"issuer":{},"jwks_uri":"https://idp/keys"}`, kind: KindMalformedJSON},
		{name: "no jwks_uri", body: `{"issuer":"https://idp"}`, kind: KindBadJWKSURI},
		{name: "null jwks_uri", body: `{"jwks_uri":null}`, kind: KindBadJWKSURI},
		{name: "empty jwks_uri", body: `{"jwks_uri":""}`, kind: KindBadJWKSURI},
		{name: "numeric jwks_uri", body: `{"jwks_uri":443}`, kind: KindBadJWKSURI},
		{name: "http jwks_uri", body: `{"jwks_uri":"http://idp/keys"}`, kind: KindBadJWKSURI},
		{name: "relative jwks_uri", body: `{"jwks_uri":"/keys"}`, kind: KindBadJWKSURI},
		{name: "scheme-relative jwks_uri", body: `{"jwks_uri":"//idp/keys"}`, kind: KindBadJWKSURI},
		{name: "jwks_uri with userinfo", body: `{"jwks_uri":"https://u:p@idp/keys"}`, kind: KindBadJWKSURI},
		{name: "jwks_uri bad port", body: `{"jwks_uri":"https://idp:0/keys"}`, kind: KindBadJWKSURI},
		{name: "jwks_uri empty port", body: `{"jwks_uri":"https://idp:/keys"}`, kind: KindBadJWKSURI},
		{name: "jwks_uri unparsable", body: `{"jwks_uri":"https://idp/%zz"}`, kind: KindBadJWKSURI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := parseDiscovery([]byte(tt.body))
			if tt.kind != "" {
				if kind := kindOf(err); kind != tt.kind {
					t.Fatalf("error %v (kind %q), want kind %q", err, kind, tt.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.issuer != tt.issuer || d.jwksURI != tt.jwks || d.jwksHost != tt.jwksHost {
				t.Errorf("got %+v, want issuer %q jwks_uri %q host %q", d, tt.issuer, tt.jwks, tt.jwksHost)
			}
		})
	}
}

func TestCheckIssuer(t *testing.T) {
	tests := []struct {
		got, want string
		ok        bool
	}{
		{"https://idp/id/ABC", "https://idp/id/ABC", true},
		{"https://idp/id/ABC/", "https://idp/id/ABC", true},
		{"https://idp/id/ABC", "https://idp/id/ABC/", true},
		{"https://idp/id/ABC//", "https://idp/id/ABC", false},
		{"https://idp/id/abc", "https://idp/id/ABC", false},
		{"https://idp:443", "https://idp", false},
		{"", "https://idp", false},
	}
	for _, tt := range tests {
		t.Run(tt.got+" vs "+tt.want, func(t *testing.T) {
			err := checkIssuer(tt.got, tt.want)
			if (err == nil) != tt.ok || (err != nil && kindOf(err) != KindIssuerMismatch) {
				t.Errorf("checkIssuer = %v, want ok %v or an issuer mismatch", err, tt.ok)
			}
		})
	}
}

func TestParseProviderURL(t *testing.T) {
	tests := []struct {
		in                   string
		url, discovery, host string
		bad                  bool
	}{
		{in: "oidc.eks.us-east-1.amazonaws.com/id/ABC", url: "oidc.eks.us-east-1.amazonaws.com/id/ABC",
			discovery: "https://oidc.eks.us-east-1.amazonaws.com/id/ABC/.well-known/openid-configuration", host: "oidc.eks.us-east-1.amazonaws.com:443"},
		{in: "https://token.actions.githubusercontent.com", url: "token.actions.githubusercontent.com",
			discovery: "https://token.actions.githubusercontent.com/.well-known/openid-configuration", host: "token.actions.githubusercontent.com:443"},
		{in: "host:8443/tenant/", url: "host:8443/tenant/", discovery: "https://host:8443/tenant/.well-known/openid-configuration", host: "host:8443"},
		{in: "Https://Host", url: "Host", discovery: "https://Host/.well-known/openid-configuration", host: "host:443"},
		{in: "[::1]:8443", url: "[::1]:8443", discovery: "https://[::1]:8443/.well-known/openid-configuration", host: "[::1]:8443"},
		{in: "", bad: true},
		{in: "   ", bad: true},
		{in: "https://", bad: true},
		{in: "http://host", bad: true},
		{in: "HTTP://host", bad: true},
		{in: "://host", bad: true},
		{in: "//host", bad: true},
		{in: "/path", bad: true},
		{in: "host?x", bad: true},
		{in: "host#x", bad: true},
		{in: "u@host", bad: true},
		{in: "host:", bad: true},
		{in: "host:0", bad: true},
		{in: "host:https", bad: true},
		{in: "ho st", bad: true},
		{in: "host/\x7f", bad: true},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := parseProviderURL(tt.in)
			if tt.bad {
				if kindOf(err) != KindBadURL {
					t.Fatalf("parseProviderURL = %+v, %v; want a bad url error", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.url != tt.url || got.issuer != "https://"+tt.url || got.discoveryURL != tt.discovery || got.host != tt.host {
				t.Errorf("got %+v, want url %q discovery %q host %q", got, tt.url, tt.discovery, tt.host)
			}
		})
	}
}

func kindOf(err error) Kind {
	var ke *kindError
	if errors.As(err, &ke) {
		return ke.kind
	}
	return ""
}

// FuzzParseDiscovery: any document either parses to an absolute https
// jwks_uri with a host:port, or fails as malformed JSON or a bad jwks_uri.
func FuzzParseDiscovery(f *testing.F) {
	f.Add([]byte(`{"issuer":"https://idp","jwks_uri":"https://idp/keys"}`))
	f.Add([]byte(`{"jwks_uri":"https://[::1]:8443/keys"}`))
	f.Add([]byte(`{"jwks_uri":"http://idp/keys"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := parseDiscovery(body)
		if err != nil {
			if k := kindOf(err); k != KindMalformedJSON && k != KindBadJWKSURI {
				t.Fatalf("error %v has kind %q", err, k)
			}
			if len(err.Error()) > 1024 {
				t.Fatalf("message of %d bytes: values must be cut", len(err.Error()))
			}
			return
		}
		if !strings.HasPrefix(strings.TrimLeft(string(body), " \t\r\n"), "{") {
			t.Fatalf("accepted a non-object %q", body)
		}
		u, perr := url.Parse(d.jwksURI)
		if perr != nil || !strings.EqualFold(u.Scheme, "https") || u.Hostname() == "" || u.User != nil {
			t.Fatalf("accepted jwks_uri %q (%v)", d.jwksURI, perr)
		}
		host, port, serr := net.SplitHostPort(d.jwksHost)
		if serr != nil || host != strings.ToLower(u.Hostname()) {
			t.Fatalf("jwks host %q for %q (%v)", d.jwksHost, d.jwksURI, serr)
		}
		if n, aerr := strconv.Atoi(port); aerr != nil || n < 1 || n > 65535 {
			t.Fatalf("jwks host %q has a bad port", d.jwksHost)
		}
	})
}
