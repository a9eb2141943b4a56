package entrasim

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
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names written into Options.Dir.
const (
	CAFileName         = "ca.pem"
	CertClientFileName = "cert-client.pem"
)

// certValidity is long enough for a standalone simulator left running for a while; the
// keys are generated per run, so there is nothing to rotate.
const certValidity = 365 * 24 * time.Hour

// pki holds every key the simulator owns: its CA and TLS certificate, the key that signs
// tokens, and the certificate credential of CertClientID.
type pki struct {
	caCert  *x509.Certificate
	caPEM   []byte
	tlsCert tls.Certificate

	signKey  *rsa.PrivateKey
	signCert *x509.Certificate
	signKID  string // base64url SHA-1 thumbprint, as Entra's kid and x5t

	clientCert *x509.Certificate
	clientPEM  []byte // certificate then PKCS#8 key, the shape --client-certificate takes
}

func newPKI() (*pki, error) {
	now := time.Now()
	p := &pki{}

	// ECDSA for the CA and TLS keeps start-up fast; the token and client keys must be RSA
	// (RS256 tokens, and MSAL signs client assertions with PS256).
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ca key: %w", err)
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "entrasim test CA", Organization: []string{"entrasim"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	p.caCert, err = createCert(caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("create ca certificate: %w", err)
	}
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.caCert.Raw})

	tlsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate tls key: %w", err)
	}
	leaf, err := createCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(certValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    []string{"localhost"},
	}, p.caCert, tlsKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("create tls certificate: %w", err)
	}
	p.tlsCert = tls.Certificate{Certificate: [][]byte{leaf.Raw, p.caCert.Raw}, PrivateKey: tlsKey, Leaf: leaf}

	p.signKey, p.signCert, err = selfSignedRSA("entrasim token signing", now)
	if err != nil {
		return nil, fmt.Errorf("create token signing key: %w", err)
	}
	p.signKID = thumbprintSHA1(p.signCert)

	clientKey, clientCert, err := selfSignedRSA("entrasim client "+CertClientID, now)
	if err != nil {
		return nil, fmt.Errorf("create client certificate: %w", err)
	}
	p.clientCert = clientCert
	keyDER, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		return nil, fmt.Errorf("encode client key: %w", err)
	}
	p.clientPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clientCert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	return p, nil
}

func selfSignedRSA(cn string, now time.Time) (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(certValidity),
		KeyUsage:  x509.KeyUsageDigitalSignature,
	}
	cert, err := createCert(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

func createCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// thumbprintSHA1 is the x5t of a certificate, which Entra also uses as the key id.
func thumbprintSHA1(c *x509.Certificate) string {
	sum := sha1.Sum(c.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// writeFiles puts the CA and the client credential where child processes can read them.
// The client PEM holds a private key, so it is private to the user.
func (p *pki) writeFiles(dir string) (caFile, clientFile string, err error) {
	caFile = filepath.Join(dir, CAFileName)
	if err := os.WriteFile(caFile, p.caPEM, 0o644); err != nil {
		return "", "", fmt.Errorf("write ca: %w", err)
	}
	clientFile = filepath.Join(dir, CertClientFileName)
	if err := os.WriteFile(clientFile, p.clientPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("write client certificate: %w", err)
	}
	// WriteFile keeps the mode of an existing file; a key must not stay readable by others.
	if err := os.Chmod(clientFile, 0o600); err != nil {
		return "", "", fmt.Errorf("write client certificate: %w", err)
	}
	return caFile, clientFile, nil
}
