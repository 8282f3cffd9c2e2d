package tlsconf

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baton-db/baton/internal/tlsconf/testcerts"
)

// handshake dials a TLS server for 127.0.0.1 (client certificate required) at addr with c.
func handshake(t *testing.T, certs testcerts.Set, c *tls.Config, serverName string) error {
	t.Helper()
	kp, err := tls.LoadX509KeyPair(certs.ServerCert, certs.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{kp},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: certs.Pool})
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		if conn, err := lis.Accept(); err == nil {
			_ = conn.(*tls.Conn).Handshake()
			_, _ = conn.Write([]byte("x"))
			conn.Close()
		}
	}()
	if c != nil {
		c = c.Clone()
		if c.ServerName == "" {
			c.ServerName = serverName
		}
	}
	conn, err := tls.Dial("tcp", lis.Addr().String(), c)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Read(make([]byte, 1)) // TLS 1.3: a refused client certificate shows here
	return err
}

func TestMySQLModes(t *testing.T) {
	certs, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	files := Files{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}
	for _, c := range []struct {
		mode, serverName string
		ok               bool
	}{
		{VerifyIdentity, "127.0.0.1", true},
		{VerifyIdentity, "127.0.0.2", false}, // the certificate names another host
		{VerifyCA, "127.0.0.2", true},        // the name is not checked, the chain is
		{Required, "anything", true},
	} {
		cfg, err := MySQL(c.mode, files)
		if err != nil {
			t.Fatal(err)
		}
		err = handshake(t, certs, cfg, c.serverName)
		if (err == nil) != c.ok {
			t.Errorf("mode %s, server name %s: %v, want ok=%v", c.mode, c.serverName, err, c.ok)
		}
	}
	// verify_ca still refuses a server from another CA.
	other, _ := testcerts.Write(t.TempDir())
	cfg, _ := MySQL(VerifyCA, Files{CAFile: other.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey})
	if err := handshake(t, certs, cfg, "127.0.0.1"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("verify_ca with the wrong CA: %v", err)
	}
	// Without a client certificate a server that requires one refuses.
	cfg, _ = MySQL(VerifyIdentity, Files{CAFile: certs.CA})
	if err := handshake(t, certs, cfg, "127.0.0.1"); err == nil {
		t.Error("no client certificate, and the handshake succeeded")
	}
	if c, err := MySQL(Disabled, Files{}); c != nil || err != nil {
		t.Errorf("disabled: %v %v", c, err)
	}
}

func TestBadSettings(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for _, c := range []struct {
		mode  string
		files Files
		want  string
	}{
		{"verify-full", Files{}, "is not disabled, required, verify_ca or verify_identity"},
		{VerifyCA, Files{}, "needs ca_file"},
		{VerifyIdentity, Files{CAFile: filepath.Join(dir, "missing.pem")}, "no such file"},
		{VerifyIdentity, Files{CAFile: notPEM}, "no PEM certificate"},
		{Required, Files{CertFile: notPEM}, "set both or neither"},
		{Required, Files{CertFile: notPEM, KeyFile: notPEM}, "cert_file/key_file"},
	} {
		_, err := MySQL(c.mode, c.files)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("mode %q %+v: %v, want %q", c.mode, c.files, err, c.want)
		}
	}
	if ChainOnly(nil) != nil {
		t.Error("ChainOnly(nil) is not nil")
	}
}
