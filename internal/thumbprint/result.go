// Package thumbprint computes the live thumbprint of an OpenID Connect identity
// provider the way AWS IAM does: the SHA-1 of the last certificate the JWKS host
// serves in its TLS handshake.
package thumbprint

import (
	"context"
	"crypto/x509"
	"net"
	"net/url"
	"time"
)

// Options tune a Prober. The zero value is usable: 2 handshakes, the system
// root pool, proxies from the environment, no timeout beyond the context.
type Options struct {
	// Handshakes is the number of separate TLS handshakes whose chains are
	// recorded for each host (PROBE_HANDSHAKES); servers may alternate
	// cross-signed chains. 0 means 2. The discovery request's handshake is
	// the first, the TLS 1.2 check (a handshake capped at TLS 1.2) the
	// second: a host gets max(Handshakes, 2) connections in all (Handshakes
	// when the jwks_uri is on another host), one more if it refuses TLS 1.2.
	// Within a Run, a further provider Url of the host reuses the discovery
	// connection when it is idle (a new one only when it is busy).
	Handshakes int
	// Timeout bounds the work of each connection a probe makes once it is
	// its turn: the discovery request (redirects included) and each TLS
	// handshake (PROBE_TIMEOUT). The handshakes of a host run in parallel, so a
	// provider's probe takes at most about twice Timeout of its own work;
	// waiting for its turn (PROBE_CONCURRENCY hosts, MaxConnsPerHost
	// connections to one host) is bounded by the caller's context only.
	// 0 means only the context bounds it.
	Timeout time.Duration
	// Concurrency bounds the distinct hosts a Run has connections open to at
	// once (PROBE_CONCURRENCY); 0 means DefaultConcurrency.
	Concurrency int
	// RootCAs verifies served chains; nil means the system pool (which honours
	// SSL_CERT_FILE and SSL_CERT_DIR).
	RootCAs *x509.CertPool
	// Proxy picks the proxy for a target https URL; nil means HTTPS_PROXY/NO_PROXY
	// from the environment. A nil URL means a direct connection.
	Proxy func(target *url.URL) (*url.URL, error)
	// DialContext opens TCP connections (to the target or the proxy); nil means a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the time chains are verified at; nil means time.Now.
	Now func() time.Time
}

// Result is what one Probe of a provider Url found.
type Result struct {
	// URL is the provider Url as IAM stores it (no scheme).
	URL string `json:"url"`
	// Issuer is "https://" + URL.
	Issuer string `json:"issuer"`
	// JWKSURI is the discovery document's jwks_uri.
	JWKSURI string `json:"jwks_uri"`
	// DiscoveryVerified tells whether the discovery request's certificate verified.
	DiscoveryVerified bool `json:"discovery_verified"`
	// DiscoveryVerifyError says why it did not, when it did not.
	DiscoveryVerifyError string `json:"discovery_verify_error,omitempty"`
	// Hosts are the hosts handshaken with: the jwks_uri host first, then the
	// issuer host when it differs.
	Hosts []HostResult `json:"hosts"`
	// Thumbprints are the distinct chain thumbprints, lowercase hex, jwks_uri host
	// first, in the order seen.
	Thumbprints []string `json:"thumbprints"`
	// PubliclyTrusted is true when every served chain verified against the roots.
	PubliclyTrusted bool `json:"publicly_trusted"`
	// ThumbprintEnforced tells whether AWS checks the thumbprint for this
	// provider: AWS verifies a publicly trusted chain with its own CA library
	// and ignores thumbprints, except when a host requires TLS 1.3. So it is
	// true when a chain is not publicly trusted or a host refused TLS 1.2.
	ThumbprintEnforced bool `json:"thumbprint_enforced"`
}

// HostResult is what the handshakes with one host found.
type HostResult struct {
	// Host is host:port.
	Host string `json:"host"`
	// ServerName is the SNI sent; empty for an IP literal.
	ServerName string `json:"server_name,omitempty"`
	// Handshakes is the number of handshakes whose chains were recorded, at
	// least PROBE_HANDSHAKES: the discovery request's own handshake with
	// this host and the TLS 1.2 check are among them.
	Handshakes int `json:"handshakes"`
	// Chains are the distinct chains, exactly as served, in the order of the
	// handshakes (the discovery request's, the TLS 1.2 check's, the others).
	Chains []Chain `json:"chains"`
	// AcceptsTLS12 tells whether the host completed a handshake capped at TLS 1.2.
	AcceptsTLS12 bool `json:"accepts_tls12"`
	// TLS12Error says how the host refused TLS 1.2 (it requires TLS 1.3).
	TLS12Error string `json:"tls12_error,omitempty"`
}

// Chain is one certificate chain exactly as a server sent it.
type Chain struct {
	// Certificates are the served certificates, leaf first, in the order sent.
	Certificates []Certificate `json:"certificates"`
	// Thumbprint is the lowercase hex SHA-1 of the DER of the last certificate sent.
	Thumbprint string `json:"thumbprint"`
	// Verified tells whether the chain verified for the host name, now, against the roots.
	Verified bool `json:"verified"`
	// VerifyError says why it did not verify.
	VerifyError string `json:"verify_error,omitempty"`
}

// Certificate summarises one served certificate.
type Certificate struct {
	// Subject is the certificate's subject distinguished name.
	Subject string `json:"subject"`
	// CommonName is the subject's common name, when it has one.
	CommonName string `json:"common_name,omitempty"`
	// Issuer is the issuer's distinguished name.
	Issuer string `json:"issuer"`
	// NotAfter is the end of the validity period, in UTC.
	NotAfter time.Time `json:"not_after"`
	// SHA1 is the lowercase hex SHA-1 of the certificate's DER.
	SHA1 string `json:"sha1"`
}
