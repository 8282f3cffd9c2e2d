// Package app wires the pieces that every Baton binary shares: config, logging, and the
// Temporal and Consul clients.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/hashicorp/consul/api"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"

	"github.com/baton-db/baton/internal/catalog"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/telemetry"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/internal/version"
)

// Logger is the process-wide structured logger, on stderr in the config's log.format.
// The MySQL driver's own messages ("unexpected EOF" on every dropped connection) go to it
// at debug level.
func Logger(cfg *config.Config) *slog.Logger {
	l := NewLogger(os.Stderr, cfg.Log.Format)
	_ = mysql.SetLogger(driverLog{l})
	return l
}

// NewLogger logs at info level to w: one JSON object a line with format "json", slog's
// key=value text otherwise.
func NewLogger(w io.Writer, format string) *slog.Logger {
	o := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// LogStarting writes a process's first log line: "baton-<service> starting" with its
// version, then attrs.
func LogStarting(l *slog.Logger, service string, attrs ...any) {
	l.Info("baton-"+service+" starting", append([]any{"version", version.Get().String()}, attrs...)...)
}

type driverLog struct{ l *slog.Logger }

func (d driverLog) Print(v ...any) { d.l.Debug("mysql driver", "msg", fmt.Sprint(v...)) }

// LoadConfig reads the config file named by --config (or BATON_CONFIG) with flags bound.
func LoadConfig(flags *pflag.FlagSet) (*config.Config, error) {
	return load(flags, config.Load)
}

// LoadCLIConfig is LoadConfig for the operator CLI (config.LoadCLI): no secrets.
func LoadCLIConfig(flags *pflag.FlagSet) (*config.Config, error) {
	return load(flags, config.LoadCLI)
}

// LoadAgentConfig is LoadConfig for a heartbeat agent (config.LoadAgent).
func LoadAgentConfig(flags *pflag.FlagSet) (*config.Config, error) {
	return load(flags, config.LoadAgent)
}

func load(flags *pflag.FlagSet, loader func(string, *viper.Viper) (*config.Config, error)) (*config.Config, error) {
	v := viper.New()
	path, _ := flags.GetString("config")
	if path == "" {
		path = os.Getenv("BATON_CONFIG")
	}
	if path == "" {
		return nil, fmt.Errorf("no config: pass --config FILE or set BATON_CONFIG")
	}
	for k, flag := range map[string]string{"temporal.address": "temporal.address", "temporal.namespace": "temporal.namespace",
		"consul.address": "consul.address", "log.format": LogFormatFlag} {
		if f := flags.Lookup(flag); f != nil {
			if err := v.BindPFlag(k, f); err != nil {
				return nil, err
			}
		}
	}
	return loader(path, v)
}

// AddFlags declares the flags every binary understands.
func AddFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "config file (YAML); also BATON_CONFIG")
	fs.String("temporal.address", "", "Temporal frontend host:port (overrides temporal.address)")
	fs.String("temporal.namespace", "", "Temporal namespace (overrides temporal.namespace)")
	fs.String("consul.address", "", "Consul HTTP host:port (overrides consul.address)")
}

// LogFormatFlag overrides log.format in the processes that log (AddLogFlags).
const LogFormatFlag = "log-format"

// AddLogFlags declares --log-format: the worker, the detector and the heartbeat agent.
func AddLogFlags(fs *pflag.FlagSet) {
	fs.String(LogFormatFlag, "", "log lines as text or json (overrides log.format)")
}

// Temporal dials the Temporal frontend, with the given interceptors (tracing).
func Temporal(cfg *config.Config, log *slog.Logger, interceptors ...interceptor.ClientInterceptor) (client.Client, error) {
	return dialTemporal(cfg, log, nil, interceptors...)
}

// dialTemporal is Temporal with the SDK's own metrics (nil: none).
func dialTemporal(cfg *config.Config, log *slog.Logger, metrics client.MetricsHandler, interceptors ...interceptor.ClientInterceptor) (client.Client, error) {
	t, err := cfg.Temporal.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("temporal.tls: %w", err)
	}
	c, err := client.Dial(client.Options{
		HostPort:          cfg.Temporal.Address,
		Namespace:         cfg.Temporal.Namespace,
		Logger:            tlog.NewStructuredLogger(log),
		Interceptors:      interceptors,
		MetricsHandler:    metrics,
		ConnectionOptions: client.ConnectionOptions{TLS: t},
		Identity:          Identity(cfg),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", cfg.Temporal.Address, err)
	}
	return c, nil
}

// Client dials Temporal for a short-lived command. With traces configured, what the command
// starts is traced from there (a switchover's trace begins at the operator), and Close
// flushes the spans.
func Client(ctx context.Context, cfg *config.Config, log *slog.Logger) (client.Client, error) {
	if cfg.Telemetry.Traces != "otlp" {
		return Temporal(cfg, log)
	}
	tel, interceptors, err := Telemetry(ctx, cfg, "cli", "", log)
	if err != nil {
		return nil, err
	}
	c, err := Temporal(cfg, log, interceptors...)
	if err != nil {
		return nil, err
	}
	return tracedClient{Client: c, tel: tel}, nil
}

type tracedClient struct {
	client.Client
	tel *telemetry.Telemetry
}

func (c tracedClient) Close() {
	c.Client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.tel.Shutdown(ctx)
}

// Telemetry sets up the process's exporters from the config.
func Telemetry(ctx context.Context, cfg *config.Config, service, prometheusAddr string, log *slog.Logger) (*telemetry.Telemetry, []interceptor.ClientInterceptor, error) {
	var otlpTLS *tls.Config
	if cfg.Telemetry.OTLPTLS.Enabled {
		var err error
		if otlpTLS, err = cfg.Telemetry.OTLPTLS.Config(); err != nil {
			return nil, nil, fmt.Errorf("telemetry.otlp_tls: %w", err)
		}
	}
	t, err := telemetry.Setup(ctx, telemetry.Config{Traces: cfg.Telemetry.Traces, OTLPEndpoint: cfg.Telemetry.OTLPEndpoint,
		OTLPTLS: otlpTLS, PrometheusAddr: prometheusAddr}, service, log)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Telemetry.Traces != "otlp" {
		return t, nil, nil
	}
	i, err := t.Interceptor()
	if err != nil {
		return nil, nil, err
	}
	return t, []interceptor.ClientInterceptor{i}, nil
}

// FleetPrefix is where the detectors share the clusters: beside the clusters' prefix.
func FleetPrefix(cfg *config.Config) string {
	return path.Join(path.Dir(strings.TrimSuffix(cfg.Consul.KVPrefix, "/")), "detectors")
}

// ConsulConns bounds one Consul client's concurrent connections.
const ConsulConns = 32

// Topology returns the Consul-backed topology store.
func Topology(cfg *config.Config) (*topology.Store, error) {
	cc := api.DefaultConfig()
	cc.Address = cfg.Consul.Address
	cc.Token = cfg.Secrets.ConsulToken
	// Consul refuses more than 200 concurrent connections from one address
	// (http_max_conns_per_client): a burst of watchers asking at once must queue instead.
	cc.Transport.MaxConnsPerHost = ConsulConns
	if t := cfg.Consul.TLS; t.Enabled {
		cc.Scheme = "https"
		cc.TLSConfig = api.TLSConfig{Address: t.ServerName, CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile}
	}
	c, err := api.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("consul client for %s: %w", cfg.Consul.Address, err)
	}
	return topology.New(c, cfg.Consul.KVPrefix), nil
}

// Process is what a long-running Baton process (worker, detector) shares: the logger,
// telemetry with Baton's metrics, a Temporal client (traced when configured) and Consul.
type Process struct {
	Log      *slog.Logger
	Metrics  *telemetry.Metrics
	Temporal client.Client
	Topo     *topology.Store
	tel      *telemetry.Telemetry
}

// Start sets the process up; prometheusAddr is its metrics endpoint ("" for none).
func Start(ctx context.Context, cfg *config.Config, service, prometheusAddr string) (*Process, error) {
	p := &Process{Log: Logger(cfg)}
	LogStarting(p.Log, service)
	for _, w := range cfg.Warnings() {
		p.Log.Warn("unsafe setting: " + w)
	}
	tel, interceptors, err := Telemetry(ctx, cfg, service, prometheusAddr, p.Log)
	if err != nil {
		return nil, err
	}
	p.tel = tel
	if p.Metrics, err = telemetry.NewMetrics(tel.Meter); err != nil {
		p.Close()
		return nil, err
	}
	// The SDK's own metrics (temporal_workflow_failed_total, temporal_activity_execution_failed_total,
	// the task latencies, ...) beside Baton's, on the same /metrics.
	var sdkMetrics client.MetricsHandler
	if prometheusAddr != "" {
		log := p.Log
		sdkMetrics = opentelemetry.NewMetricsHandler(opentelemetry.MetricsHandlerOptions{Meter: tel.Meter.Meter("temporal-sdk-go"),
			UseMonotonicCounters: true, OnError: func(err error) { log.Warn("temporal SDK metric", "error", err) }})
	}
	if p.Temporal, err = dialTemporal(cfg, p.Log, sdkMetrics, interceptors...); err != nil {
		p.Close()
		return nil, err
	}
	if p.Topo, err = Topology(cfg); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// ReadyWhen makes /readyz pass while Temporal and Consul answer and every extra check
// passes.
func (p *Process) ReadyWhen(extra ...func(context.Context) error) {
	if p.tel == nil {
		return
	}
	p.tel.SetReady(func(ctx context.Context) error {
		if _, err := p.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			return fmt.Errorf("temporal: %w", err)
		}
		if leader, err := p.Topo.Client().Status().LeaderWithQueryOptions((&api.QueryOptions{}).WithContext(ctx)); err != nil || leader == "" {
			return fmt.Errorf("consul: no leader (%v)", err)
		}
		for _, check := range extra {
			if err := check(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}

// Meter is the process's meter provider (a no-op one without a metrics address).
func (p *Process) Meter() metric.MeterProvider {
	if p.tel == nil {
		return noop.NewMeterProvider()
	}
	return p.tel.Meter
}

// Close flushes telemetry and closes the Temporal client.
func (p *Process) Close() {
	if p.Temporal != nil {
		p.Temporal.Close()
	}
	if p.tel != nil {
		_ = p.tel.Shutdown(context.Background())
	}
}

// Catalog enters the config file's clusters that Consul has but the catalog lacks
// (catalog.Bootstrap), then follows the catalog: the live list of clusters and settings.
func (p *Process) Catalog(ctx context.Context, cfg *config.Config, who string) *catalog.Catalog {
	if entered, err := catalog.Bootstrap(ctx, p.Topo, cfg, who); err != nil {
		p.Log.Warn("cannot enter the config file's clusters in the catalog; the catalog's list is used as it is", "error", err)
	} else if len(entered) > 0 {
		p.Log.Info("entered the config file's clusters in the catalog", "clusters", entered)
	}
	return catalog.Watch(ctx, p.Topo, cfg, p.Log)
}

// Identity is this process's Temporal client identity, which Temporal records in the
// history events it causes (an approval's Update, a start): the OS user, host and pid, and
// with mutual TLS the client certificate's subject, which the Temporal frontend verified.
// (Temporal takes the identity string from the client; a server-side authorizer is what
// makes it binding.)
func Identity(cfg *config.Config) string {
	host, _ := os.Hostname()
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	id := fmt.Sprintf("%s@%s:%d", who, host, os.Getpid())
	if f := cfg.Temporal.TLS.CertFile; cfg.Temporal.TLS.Enabled && f != "" {
		if cn := certSubject(f); cn != "" {
			id += " cert=" + cn
		}
	}
	return id
}

// certSubject is the subject of the first certificate in a PEM file ("" if none).
func certSubject(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return ""
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return ""
	}
	return c.Subject.String()
}
