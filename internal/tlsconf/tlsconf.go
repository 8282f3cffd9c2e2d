// Package tlsconf turns the TLS settings of Baton's config (file paths, never key material
// in the config itself) into crypto/tls configurations for MySQL, Consul and Temporal.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Modes of a MySQL connection, named as in MySQL's --ssl-mode.
const (
	Disabled       = "disabled"
	Required       = "required"        // encrypted, the server's certificate is not checked
	VerifyCA       = "verify_ca"       // the certificate chains to ca_file
	VerifyIdentity = "verify_identity" // ...and names the host that was dialled
)

// Files names the PEM files of one TLS client.
type Files struct {
	CAFile   string `mapstructure:"ca_file"`
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName string `mapstructure:"server_name"`
}

// Build returns a client configuration that verifies the server against CAFile (the
// system roots when empty) and presents CertFile/KeyFile when both are set.
func (f Files) Build() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", f.CAFile)
		}
	}
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		kp, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{kp}
	case f.CertFile != "" || f.KeyFile != "":
		return nil, errors.New("cert_file and key_file go together: set both or neither")
	}
	return c, nil
}

// MySQL returns the configuration for mode, nil when disabled. For verify_identity the
// caller sets ServerName per server (mysqladmin does, from the address it dials).
func MySQL(mode string, f Files) (*tls.Config, error) {
	switch mode {
	case "", Disabled:
		return nil, nil
	case Required, VerifyCA, VerifyIdentity:
	default:
		return nil, fmt.Errorf("mode %q is not disabled, required, verify_ca or verify_identity", mode)
	}
	if mode != Required && f.CAFile == "" {
		return nil, fmt.Errorf("mode %s needs ca_file", mode)
	}
	c, err := f.Build()
	if err != nil {
		return nil, err
	}
	switch mode {
	case Required:
		c.InsecureSkipVerify = true
	case VerifyCA:
		c = ChainOnly(c)
	}
	return c, nil
}

// ChainOnly returns c checking only that the server's certificate chains to c's roots,
// for connections through a proxy whose address no certificate names. nil stays nil.
func ChainOnly(c *tls.Config) *tls.Config {
	if c == nil || c.InsecureSkipVerify {
		return c
	}
	c = c.Clone()
	roots := c.RootCAs
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error { return verifyChain(cs, roots) }
	return c
}

func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	return err
}
