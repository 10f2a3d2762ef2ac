// Package testidp runs local TLS OpenID Connect identity providers with
// generated certificate chains, and peers that misbehave on purpose, for tests
// and demos. It is an ordinary package: functions return errors, never fail a test.
package testidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CA is a certificate authority: a root or an intermediate.
type CA struct {
	Cert *x509.Certificate // the parsed certificate
	DER  []byte            // the certificate as served
	Key  *ecdsa.PrivateKey // the CA's P-256 key
}

// Leaf is a server certificate and its key.
type Leaf struct {
	Cert *x509.Certificate // the parsed certificate
	DER  []byte            // the certificate as served
	Key  crypto.Signer     // the server's key: P-256, or RSA 2048 from RSALeaf
}

// caValidity is how long generated CAs are valid, starting an hour ago.
const caValidity = 10 * 365 * 24 * time.Hour

// NewRoot returns a self-signed root CA named cn.
func NewRoot(cn string) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	tmpl := caTemplate(cn)
	der, cert, err := sign(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("root %q: %w", cn, err)
	}
	return &CA{Cert: cert, DER: der, Key: key}, nil
}

// Intermediate returns an intermediate CA named cn signed by ca.
func (ca *CA) Intermediate(cn string) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	der, cert, err := sign(caTemplate(cn), ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("intermediate %q: %w", cn, err)
	}
	return &CA{Cert: cert, DER: der, Key: key}, nil
}

// IntermediateUntil is Intermediate with a validity that ends at notAfter:
// a CA whose certificate, served last, expires soon.
func (ca *CA) IntermediateUntil(cn string, notAfter time.Time) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	tmpl := caTemplate(cn)
	tmpl.NotAfter = notAfter
	der, cert, err := sign(tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("intermediate %q: %w", cn, err)
	}
	return &CA{Cert: cert, DER: der, Key: key}, nil
}

// CrossSign returns sub's subject and key certified by ca: a cross-signed
// intermediate, so that a leaf under sub has a second chain through ca.
func (ca *CA) CrossSign(sub *CA) (*CA, error) {
	tmpl := caTemplate(sub.Cert.Subject.CommonName)
	tmpl.Subject = sub.Cert.Subject
	tmpl.SubjectKeyId = sub.Cert.SubjectKeyId
	der, cert, err := sign(tmpl, ca.Cert, &sub.Key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("cross-sign %q: %w", sub.Cert.Subject.CommonName, err)
	}
	return &CA{Cert: cert, DER: der, Key: sub.Key}, nil
}

// Leaf returns a server certificate for hosts (DNS names or IP literals) signed
// by ca, valid from notBefore to notAfter.
func (ca *CA) Leaf(hosts []string, notBefore, notAfter time.Time) (*Leaf, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	der, cert, err := sign(leafTemplate(hosts, notBefore, notAfter), ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("leaf %v: %w", hosts, err)
	}
	return &Leaf{Cert: cert, DER: der, Key: key}, nil
}

// RSALeaf is Leaf with an RSA 2048 key, as legacy servers need: RSA key
// exchange and RSA signatures (SHA-1 ones included) require an RSA certificate.
func (ca *CA) RSALeaf(hosts []string, notBefore, notAfter time.Time) (*Leaf, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate RSA key: %w", err)
	}
	tmpl := leafTemplate(hosts, notBefore, notAfter)
	// RSA key exchange encrypts the premaster secret to the certificate's key.
	tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	der, cert, err := sign(tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("RSA leaf %v: %w", hosts, err)
	}
	return &Leaf{Cert: cert, DER: der, Key: key}, nil
}

// KeyPEM returns the leaf's private key as PKCS #8 PEM, as servers load it.
func (l *Leaf) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(l.Key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ChainPEM returns the certificates of a served chain as PEM, in order.
func ChainPEM(c tls.Certificate) []byte {
	var out []byte
	for _, der := range c.Certificate {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return out
}

// SelfSigned returns a server certificate for hosts that signs itself.
func SelfSigned(hosts []string, notBefore, notAfter time.Time) (*Leaf, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	tmpl := leafTemplate(hosts, notBefore, notAfter)
	der, cert, err := sign(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-signed %v: %w", hosts, err)
	}
	return &Leaf{Cert: cert, DER: der, Key: key}, nil
}

// Chain is the chain a server sends: leaf, then cas in the order given (a
// test may leave out, reorder or add the root).
func Chain(leaf *Leaf, cas ...*CA) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{leaf.DER}, PrivateKey: leaf.Key, Leaf: leaf.Cert}
	for _, ca := range cas {
		c.Certificate = append(c.Certificate, ca.DER)
	}
	return c
}

// Thumbprint is the lowercase hex SHA-1 of a certificate's DER.
func Thumbprint(der []byte) string {
	sum := sha1.Sum(der)
	return hex.EncodeToString(sum[:])
}

// PEM returns the CA certificate PEM-encoded, as an SSL_CERT_FILE holds it.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.DER})
}

// Pool returns a certificate pool holding only ca.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return key, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n.Add(n, big.NewInt(1))
}

func caTemplate(cn string) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"testidp"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

func leafTemplate(hosts []string, notBefore, notAfter time.Time) *x509.Certificate {
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if len(hosts) > 0 {
		tmpl.Subject = pkix.Name{CommonName: hosts[0]}
	}
	return tmpl
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, priv crypto.Signer) ([]byte, *x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return der, cert, nil
}
