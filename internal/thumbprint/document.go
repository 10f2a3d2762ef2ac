package thumbprint

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
)

// maxDocumentSize bounds the discovery document.
const maxDocumentSize = 1 << 20

// discovery is what a probe uses of an OpenID Connect discovery document.
type discovery struct {
	issuer   string
	jwksURI  string
	jwksHost string // host:port of jwks_uri, port 443 unless given
}

// parseDiscovery checks a discovery document: a JSON object with an absolute
// https jwks_uri. The issuer is returned as found; the caller compares it.
func parseDiscovery(body []byte) (discovery, error) {
	var doc struct {
		Issuer  json.RawMessage `json:"issuer"`
		JWKSURI json.RawMessage `json:"jwks_uri"`
	}
	if !json.Valid(body) {
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return discovery{}, errorf(KindMalformedJSON, "discovery document: %v", err)
		}
		return discovery{}, errorf(KindMalformedJSON, "discovery document is not valid JSON")
	}
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); trimmed[0] != '{' {
		return discovery{}, errorf(KindMalformedJSON, "discovery document is not a JSON object")
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return discovery{}, errorf(KindMalformedJSON, "discovery document: %v", err)
	}
	var d discovery
	if len(doc.Issuer) > 0 && string(doc.Issuer) != "null" {
		if err := json.Unmarshal(doc.Issuer, &d.issuer); err != nil {
			return discovery{}, errorf(KindMalformedJSON, "discovery document: issuer is not a string")
		}
	}
	if len(doc.JWKSURI) == 0 || string(doc.JWKSURI) == "null" {
		return discovery{}, errorf(KindBadJWKSURI, "discovery document has no jwks_uri")
	}
	if err := json.Unmarshal(doc.JWKSURI, &d.jwksURI); err != nil {
		return discovery{}, errorf(KindBadJWKSURI, "jwks_uri is not a string")
	}
	host, err := checkJWKSURI(d.jwksURI)
	if err != nil {
		return discovery{}, err
	}
	d.jwksHost = host
	return d, nil
}

// checkJWKSURI requires an absolute https URL with a host and no userinfo.
func checkJWKSURI(raw string) (string, error) {
	if raw == "" {
		return "", errorf(KindBadJWKSURI, "jwks_uri is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", errorf(KindBadJWKSURI, "jwks_uri %s: %v", quote(raw), err)
	}
	if !u.IsAbs() || !strings.EqualFold(u.Scheme, "https") {
		return "", errorf(KindBadJWKSURI, "jwks_uri %s is not an absolute https URL", quote(raw))
	}
	if u.User != nil {
		return "", errorf(KindBadJWKSURI, "jwks_uri %s carries userinfo", quote(raw))
	}
	host, err := hostPort(u)
	if err != nil {
		return "", errorf(KindBadJWKSURI, "jwks_uri %s: %v", quote(raw), err)
	}
	return host, nil
}

// checkIssuer compares the document's issuer with the expected one, ignoring
// one trailing "/" on either side.
func checkIssuer(got, want string) error {
	if strings.TrimSuffix(got, "/") == strings.TrimSuffix(want, "/") {
		return nil
	}
	if got == "" {
		return errorf(KindIssuerMismatch, "the document has no issuer, want %q", want)
	}
	return errorf(KindIssuerMismatch, "the document says issuer %s, want %q", quote(got), want)
}

// quote quotes a value from the document for a message, cut to 200 bytes.
func quote(s string) string {
	const max = 200
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
