package app

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/tlsconf"
	"github.com/baton-db/baton/internal/tlsconf/testcerts"
	"github.com/baton-db/baton/internal/topology"
)

// seen records the client certificate names a test server was shown.
type seen struct {
	mu    sync.Mutex
	names []string
}

func (s *seen) add(cs *tls.ConnectionState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs.VerifiedChains {
		s.names = append(s.names, c[0].Subject.CommonName)
	}
}

func (s *seen) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.names...)
}

func serverTLS(t *testing.T, certs testcerts.Set) *tls.Config {
	kp, err := tls.LoadX509KeyPair(certs.ServerCert, certs.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{kp}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: certs.Pool}
}

// The Temporal client dials with mutual TLS from temporal.tls: a gRPC server that demands
// a client certificate sees Baton's.
func TestTemporalMutualTLS(t *testing.T) {
	certs, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var s seen
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(serverTLS(t, certs))),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			if p, ok := peer.FromContext(stream.Context()); ok {
				if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
					s.add(&ti.State)
				}
			}
			return status.Error(codes.Unimplemented, "test server")
		}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	cfg := &config.Config{Temporal: config.Temporal{Address: lis.Addr().String(), Namespace: "baton",
		TLS: config.ClientTLS{Enabled: true, Files: tlsconf.Files{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}}}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := Temporal(cfg, log)
	if err == nil {
		c.Close()
	}
	if got := s.get(); len(got) == 0 || got[0] != "baton" {
		t.Fatalf("the server saw client certificates %v (dial error %v), want baton's", got, err)
	}

	// Without a client certificate the handshake fails: the server saw nobody.
	cfg.Temporal.TLS.CertFile, cfg.Temporal.TLS.KeyFile = "", ""
	before := len(s.get())
	if c, err := Temporal(cfg, log); err == nil {
		c.Close()
		t.Fatal("dial without a client certificate succeeded against a server that requires one")
	}
	if len(s.get()) != before {
		t.Fatal("the server accepted a call without a client certificate")
	}
}

// The Consul client uses https with a client certificate from consul.tls, and sends the
// ACL token from the secrets file.
func TestConsulTLSAndToken(t *testing.T) {
	certs, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var s seen
	var tokens []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.add(r.TLS)
		tokens = append(tokens, r.Header.Get("X-Consul-Token"))
		http.NotFound(w, r)
	}))
	srv.TLS = serverTLS(t, certs)
	srv.StartTLS()
	defer srv.Close()

	cfg := &config.Config{Consul: config.Consul{Address: strings.TrimPrefix(srv.URL, "https://"), KVPrefix: "baton/clusters",
		TLS: config.ClientTLS{Enabled: true, Files: tlsconf.Files{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}}},
		Secrets: config.Secrets{ConsulToken: "test-token"}}
	store, err := Topology(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Read(context.Background(), "demo")
	if !errors.Is(err, topology.ErrUnknownCluster) {
		t.Fatalf("read over TLS: %v, want unknown cluster (the test server has no keys)", err)
	}
	if got := s.get(); len(got) == 0 || got[0] != "baton" || tokens[0] != "test-token" {
		t.Fatalf("the server saw certificates %v and tokens %v", got, tokens)
	}
}

// The Temporal client identity names the user and host, and with mutual TLS the client
// certificate's subject: what the history of an approval records beside --as.
func TestIdentityNamesTheClientCertificate(t *testing.T) {
	set, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{}
	if id := Identity(cfg); !strings.Contains(id, "@") || strings.Contains(id, "cert=") {
		t.Errorf("identity without TLS: %q", id)
	}
	cfg.Temporal.TLS.Enabled, cfg.Temporal.TLS.CertFile = true, set.ClientCert
	if id := Identity(cfg); !strings.Contains(id, " cert=CN=baton") {
		t.Errorf("identity with a client certificate: %q; want its subject", id)
	}
}
