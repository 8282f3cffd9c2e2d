// Package config loads Baton's configuration: a YAML file, BATON_* environment variables
// and flags, strictly validated. Secrets come from a separate secrets file and stay in the
// worker: they never enter workflow inputs, results or histories.
package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/baton-db/baton/internal/envfile"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/tlsconf"
)

// Config is the whole of Baton's configuration.
type Config struct {
	SecretsFile string                   `mapstructure:"secrets_file"`
	Temporal    Temporal                 `mapstructure:"temporal"`
	Consul      Consul                   `mapstructure:"consul"`
	MySQL       MySQL                    `mapstructure:"mysql"`
	Detector    Detector                 `mapstructure:"detector"`
	Telemetry   Telemetry                `mapstructure:"telemetry"`
	Log         Log                      `mapstructure:"log"`
	Clusters    map[string]ClusterConfig `mapstructure:"clusters"`
	// GlobalHooks run for every cluster, before the cluster's own.
	GlobalHooks []Hook  `mapstructure:"hooks"`
	Secrets     Secrets `mapstructure:"-"`
}

type Temporal struct {
	Address   string    `mapstructure:"address"`
	Namespace string    `mapstructure:"namespace"`
	TaskQueue string    `mapstructure:"task_queue"`
	TLS       ClientTLS `mapstructure:"tls"`
}

// Consul's ACL token is a secret (CONSUL_HTTP_TOKEN in the secrets file), not a setting.
type Consul struct {
	Address  string    `mapstructure:"address"`
	KVPrefix string    `mapstructure:"kv_prefix"`
	TLS      ClientTLS `mapstructure:"tls"`
}

// Warnings lists the settings that work but are unsafe outside a sandbox, each with its fix.
// The worker and detector log them once at startup; `baton config validate` prints them.
func (c *Config) Warnings() []string {
	var w []string
	switch c.MySQL.TLS.Mode {
	case "disabled":
		w = append(w, "mysql.tls.mode is disabled: Baton's MySQL connections, admin password included, travel in clear text; set verify_identity")
	case "required":
		w = append(w, "mysql.tls.mode is required: encrypted, but the server's certificate is not checked, so anyone on the path can pose as it; set verify_ca or verify_identity")
	}
	switch {
	case !c.MySQL.ReplicationTLS.Enabled:
		w = append(w, "mysql.replication_tls.enabled is false: replication, and the replication password, travel in clear text")
	case !c.MySQL.ReplicationTLS.VerifyServerCert:
		w = append(w, "mysql.replication_tls.verify_server_cert is false: replicas do not check their source's certificate")
	}
	if !c.Temporal.TLS.Enabled {
		w = append(w, "temporal.tls.enabled is false: workflow histories and Updates (approvals) travel in clear text")
	}
	if !c.Consul.TLS.Enabled {
		w = append(w, "consul.tls.enabled is false: Baton's Consul token and every topology write travel in clear text")
	}
	if c.Telemetry.Traces == "otlp" && !c.Telemetry.OTLPTLS.Enabled {
		w = append(w, "telemetry.otlp_tls.enabled is false: traces go to "+c.Telemetry.OTLPEndpoint+" in clear text")
	}
	return w
}

// ClientTLS is TLS (mutual when cert_file and key_file are set) to Temporal or Consul.
type ClientTLS struct {
	Enabled       bool `mapstructure:"enabled"`
	tlsconf.Files `mapstructure:",squash"`
}

// MySQLTLS is how Baton's own MySQL connections are encrypted and verified.
type MySQLTLS struct {
	// Mode is disabled, required, verify_ca or verify_identity.
	Mode          string `mapstructure:"mode"`
	tlsconf.Files `mapstructure:",squash"`
}

// ReplicationTLS is what CHANGE MASTER/REPLICATION SOURCE asks of the replication link.
// CAFile is a path on the database hosts.
type ReplicationTLS struct {
	Enabled          bool   `mapstructure:"enabled"`
	CAFile           string `mapstructure:"ca_file"`
	VerifyServerCert bool   `mapstructure:"verify_server_cert"`
}

type MySQL struct {
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`
	ReadTimeout    time.Duration `mapstructure:"read_timeout"`
	// SourceAddr is the local address Baton's MySQL connections come from (optional).
	SourceAddr     string         `mapstructure:"source_addr"`
	TLS            MySQLTLS       `mapstructure:"tls"`
	ReplicationTLS ReplicationTLS `mapstructure:"replication_tls"`
}

// Telemetry chooses the exporters; everything is off by default.
type Telemetry struct {
	Traces         string `mapstructure:"traces"`
	OTLPEndpoint   string `mapstructure:"otlp_endpoint"`
	PrometheusAddr string `mapstructure:"prometheus_addr"`
	// OTLPTLS encrypts (and with a client pair, authenticates) the trace export.
	OTLPTLS ClientTLS `mapstructure:"otlp_tls"`
}

// Log is how the long-running processes log.
type Log struct {
	// Format is text (slog's key=value lines) or json (one object a line).
	Format string `mapstructure:"format"`
}

// Detector tunes the detector.
type Detector struct {
	ProbeInterval    time.Duration `mapstructure:"probe_interval"`
	ProbeTimeout     time.Duration `mapstructure:"probe_timeout"`
	FailureThreshold int           `mapstructure:"failure_threshold"`
	ConfirmWindow    time.Duration `mapstructure:"confirm_window"`
	// ConcurrentHandshakes bounds the connections a detector sets up at once.
	ConcurrentHandshakes int    `mapstructure:"concurrent_handshakes"`
	MetricsAddr          string `mapstructure:"metrics_addr"`
}

// ClusterConfig holds one cluster's policy. Its members live in Consul KV.
type ClusterConfig struct {
	Flavor         Flavor        `mapstructure:"flavor"`
	LocalWriter    string        `mapstructure:"local_writer"`
	HAProxies      []HAProxy     `mapstructure:"haproxies"`
	Prefer         []string      `mapstructure:"prefer"`
	MustNot        []string      `mapstructure:"must_not"`
	MaxLag         time.Duration `mapstructure:"max_lag"`
	LongDML        time.Duration `mapstructure:"long_dml"`
	CatchUpTimeout time.Duration `mapstructure:"catchup_timeout"`
	RoutingTimeout time.Duration `mapstructure:"routing_timeout"`
	// UnreachableAckerWait is how long a failover keeps asking a replica that does not
	// answer but may have acknowledged the last commits (durability policy) before it
	// promotes without it, reporting that acknowledged writes may be missing.
	UnreachableAckerWait time.Duration `mapstructure:"unreachable_acker_wait"`
	// PreventCrossZoneFailover keeps an unplanned failover in the dead primary's zone: with
	// no qualified replica there, none is promoted until a human forces it.
	PreventCrossZoneFailover bool `mapstructure:"prevent_cross_zone_failover"`
	// MaxLagUnplanned is how far behind the primary's failure a replica may be and still be
	// promoted without a human (0: no cap; max_lag applies to switchovers).
	MaxLagUnplanned time.Duration `mapstructure:"max_lag_unplanned"`
	// AntiFlap is how long after any failover no automatic failover starts.
	AntiFlap time.Duration `mapstructure:"anti_flap"`
	// RequireApproval is always, cross_zone or never: when a planned switchover waits for
	// a human's `baton approve` before the demotion.
	RequireApproval Approval      `mapstructure:"require_approval"`
	Approvers       []string      `mapstructure:"approvers"`
	ApprovalTimeout time.Duration `mapstructure:"approval_timeout"`
	// Durability is who acknowledges a commit (semi-sync): any replica (semi_sync) or only
	// a replica in another zone than the primary (cross_zone).
	Durability Durability `mapstructure:"durability"`
	// AckFallback is what the primary does when no replica acknowledges: wait (none: no
	// write is acknowledged without the promised copy) or fall back to asynchronous
	// replication after the server's semi-sync timeout (async: recorded, shown and counted).
	AckFallback AckFallback `mapstructure:"ack_fallback"`
	// AckTimeout is, under ack_fallback async, the semi-sync timeout the detector gives back
	// to a primary it finds waiting for ever (as none, a fence or a lease lapse leaves it).
	AckTimeout time.Duration `mapstructure:"ack_timeout"`
	// Hooks are this cluster's own hooks, run after the global ones.
	Hooks []Hook `mapstructure:"hooks"`
}

// Flavor is the SQL dialect of a cluster's servers.
type Flavor string

// The flavours.
const (
	FlavorMariaDB Flavor = "mariadb"
	FlavorMySQL   Flavor = "mysql"
)

// Approval is when a planned switchover waits for a human's approval.
type Approval string

// The approval policies.
const (
	ApprovalAlways    Approval = "always"
	ApprovalCrossZone Approval = "cross_zone"
	ApprovalNever     Approval = "never"
)

// Durability is who acknowledges a commit.
type Durability string

// The durability policies.
const (
	DurabilitySemiSync  Durability = "semi_sync"
	DurabilityCrossZone Durability = "cross_zone"
)

// AckFallback is what a primary does when no replica acknowledges.
type AckFallback string

// The fallbacks.
const (
	AckFallbackNone  AckFallback = "none"
	AckFallbackAsync AckFallback = "async"
)

// oneOf checks that v is one of the allowed values, naming them if not.
func oneOf[T ~string](key string, v T, allowed ...T) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return fmt.Errorf("%s: %q is not one of %s", key, v, strings.Join(names, ", "))
}

// Acks reports whether a replica in zone replicaZone acknowledges the commits of a primary
// in zone primaryZone under this cluster's durability policy.
func (c ClusterConfig) Acks(primaryZone, replicaZone string) bool {
	return c.Durability != DurabilityCrossZone || replicaZone != primaryZone
}

// HAProxy is one remote (layer 2) HAProxy host.
type HAProxy struct {
	Name   string `mapstructure:"name"`
	Zone   string `mapstructure:"zone"`
	Writer string `mapstructure:"writer"`
	// Reader is the host's reader frontend (optional in the file; `baton cluster add` sets
	// it for the HAProxy templates that render each cluster's frontends from Consul).
	Reader string `mapstructure:"reader"`
}

// Secrets are read from SecretsFile (KEY=VALUE lines) or the environment.
type Secrets struct {
	AdminUser, AdminPassword         string
	ReplUser, ReplPassword           string
	HeartbeatUser, HeartbeatPassword string
	// GuardUser is the agent's account on its own node: it fences (ends sessions, sets
	// read_only) and never writes data, so it is not the heartbeat writer (READ_ONLY ADMIN
	// writes through read_only).
	GuardUser, GuardPassword string
	ConsulToken              string
}

// Values returns every secret value, for redaction checks.
func (s Secrets) Values() []string {
	var out []string
	for _, v := range []string{s.AdminPassword, s.ReplPassword, s.HeartbeatPassword, s.GuardPassword, s.ConsulToken} {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Load reads path (may be empty), then BATON_* environment variables, then the flags
// already bound to v by the caller. Unknown keys are errors.
func Load(path string, v *viper.Viper) (*Config, error) {
	c, err := decode(path, v)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	s, err := LoadSecrets(c.SecretsFile)
	if err != nil {
		return nil, err
	}
	c.Secrets = s
	return c, nil
}

// LoadCLI reads the operator CLI's config: the same file format, where only the temporal
// section is needed. The CLI reaches Consul and the databases through the worker (the
// Inspect and Operate workflows), so it reads no secrets file: a config without
// secrets_file, consul or mysql settings loads, and one that names a secrets file does not
// read it. Clusters, when the file lists them, are validated as the worker would.
// (Only `baton cluster add|list --local`, the bootstrap before any worker runs, connects
// itself: it uses Load.)
func LoadCLI(path string, v *viper.Viper) (*Config, error) {
	c, err := decode(path, v)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(c.validateShared(), c.validateClusters()); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadAgent reads a heartbeat agent's config: the same file format, without clusters,
// whose secrets file holds only the heartbeat user's password and the agent's own Consul
// token. A database host needs nothing more, so an agent refuses the admin or the
// replication password.
func LoadAgent(path string, v *viper.Viper) (*Config, error) {
	c, err := decode(path, v)
	if err != nil {
		return nil, err
	}
	if err := c.validateShared(); err != nil {
		return nil, err
	}
	kv := map[string]string{}
	if c.SecretsFile != "" {
		if kv, err = envfile.Read(c.SecretsFile); err != nil {
			return nil, fmt.Errorf("secrets_file: %w", err)
		}
	}
	for _, k := range []string{"MYSQL_ADMIN_PASSWORD", "MYSQL_REPL_PASSWORD"} {
		if kv[k] != "" || os.Getenv(k) != "" {
			return nil, fmt.Errorf("secrets: %s is set, but a heartbeat agent needs only MYSQL_HEARTBEAT_USER, MYSQL_HEARTBEAT_PASSWORD, MYSQL_GUARD_USER, MYSQL_GUARD_PASSWORD and its own CONSUL_HTTP_TOKEN: remove it from %q and the environment (least privilege: a database host must not hold it)", k, c.SecretsFile)
		}
	}
	get := func(k string) string {
		if v, ok := kv[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	c.Secrets = Secrets{HeartbeatUser: get("MYSQL_HEARTBEAT_USER"), HeartbeatPassword: get("MYSQL_HEARTBEAT_PASSWORD"),
		GuardUser: get("MYSQL_GUARD_USER"), GuardPassword: get("MYSQL_GUARD_PASSWORD"), ConsulToken: get("CONSUL_HTTP_TOKEN")}
	if c.Secrets.HeartbeatUser == "" {
		return nil, fmt.Errorf("secrets: MYSQL_HEARTBEAT_USER must be set in secrets_file %q or the environment", c.SecretsFile)
	}
	return c, nil
}

func decode(path string, v *viper.Viper) (*Config, error) {
	if v == nil {
		v = viper.New()
	}
	setDefaults(v)
	v.SetEnvPrefix("BATON")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("read config %s: %w", path, err)
		}
	}
	setClusterDefaults(v)
	var c Config
	if err := v.UnmarshalExact(&c, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(mapstructure.StringToTimeDurationHookFunc(), mapstructure.StringToSliceHookFunc(","))
	}); err != nil {
		return nil, fmt.Errorf("config %s: %w (check the key names and value types against the README's config reference)", path, err)
	}
	return &c, nil
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidName reports whether s is a safe cluster or node name.
func ValidName(s string) bool { return nameRE.MatchString(s) }

func checkAddr(key, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s: %q is not host:port", key, addr)
	}
	return nil
}

// Validate returns every problem at once, each naming its key.
func (c *Config) Validate() error {
	err := c.validateShared()
	return errors.Join(err, c.validateClusters())
}

// validateShared checks what every binary uses: Temporal, Consul, MySQL, detector, telemetry.
func (c *Config) validateShared() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if err := checkAddr("temporal.address", c.Temporal.Address); err != nil {
		errs = append(errs, err)
	}
	if c.Temporal.Namespace == "" {
		add("temporal.namespace: must not be empty")
	}
	if c.Temporal.TaskQueue == "" {
		add("temporal.task_queue: must not be empty")
	}
	if err := checkAddr("consul.address", c.Consul.Address); err != nil {
		errs = append(errs, err)
	}
	if c.MySQL.ConnectTimeout <= 0 {
		add("mysql.connect_timeout: must be positive, got %s", c.MySQL.ConnectTimeout)
	}
	if c.MySQL.ReadTimeout <= 0 {
		add("mysql.read_timeout: must be positive, got %s", c.MySQL.ReadTimeout)
	}
	if c.MySQL.SourceAddr != "" && net.ParseIP(c.MySQL.SourceAddr) == nil {
		add("mysql.source_addr: %q is not an IP address", c.MySQL.SourceAddr)
	}
	if _, err := tlsconf.MySQL(c.MySQL.TLS.Mode, c.MySQL.TLS.Files); err != nil {
		add("mysql.tls: %v", err)
	}
	if r := c.MySQL.ReplicationTLS; !r.Enabled && (r.CAFile != "" || r.VerifyServerCert) {
		add("mysql.replication_tls: ca_file and verify_server_cert need enabled: true")
	}
	if r := c.MySQL.ReplicationTLS; r.VerifyServerCert && r.CAFile == "" {
		add("mysql.replication_tls.verify_server_cert: needs ca_file (a path on the database hosts)")
	}
	for key, t := range map[string]ClientTLS{"consul.tls": c.Consul.TLS, "temporal.tls": c.Temporal.TLS} {
		if _, err := t.Config(); err != nil {
			add("%s: %v", key, err)
		}
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add("log.format: %q is neither text nor json", c.Log.Format)
	}
	if c.Detector.ProbeInterval <= 0 {
		add("detector.probe_interval: must be positive, got %s", c.Detector.ProbeInterval)
	}
	if c.Detector.ProbeTimeout <= 0 {
		add("detector.probe_timeout: must be positive, got %s", c.Detector.ProbeTimeout)
	}
	if c.Detector.FailureThreshold < 1 {
		add("detector.failure_threshold: must be at least 1, got %d", c.Detector.FailureThreshold)
	}
	if c.Detector.ConfirmWindow < 0 {
		add("detector.confirm_window: must not be negative, got %s", c.Detector.ConfirmWindow)
	}
	if c.Detector.ConcurrentHandshakes < 1 {
		add("detector.concurrent_handshakes: must be at least 1, got %d", c.Detector.ConcurrentHandshakes)
	}
	if c.Detector.MetricsAddr != "" {
		if err := checkAddr("detector.metrics_addr", c.Detector.MetricsAddr); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Telemetry.Traces != "none" && c.Telemetry.Traces != "otlp" {
		add("telemetry.traces: %q is not none or otlp", c.Telemetry.Traces)
	}
	if c.Telemetry.PrometheusAddr != "" {
		if err := checkAddr("telemetry.prometheus_addr", c.Telemetry.PrometheusAddr); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validateClusters checks every cluster's settings.
func (c *Config) validateClusters() error {
	var errs []error
	names := make([]string, 0, len(c.Clusters))
	for n := range c.Clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	errs = append(errs, validateHooks("hooks", c.GlobalHooks, map[string]bool{})...)
	for _, n := range names {
		errs = append(errs, validateCluster(n, c.Clusters[n])...)
		global := map[string]bool{}
		for _, h := range c.GlobalHooks {
			global[h.Name] = true
		}
		errs = append(errs, validateHooks("clusters."+n+".hooks", c.Clusters[n].Hooks, global)...)
	}
	sortErrs(errs)
	return errors.Join(errs...)
}

// validateCluster checks one cluster's settings and returns every problem.
func validateCluster(n string, cc ClusterConfig) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	k := "clusters." + n
	if !ValidName(n) {
		add("%s: cluster name must match %s", k, nameRE)
	}
	if err := oneOf(k+".flavor", cc.Flavor, FlavorMariaDB, FlavorMySQL); err != nil {
		errs = append(errs, err)
	}
	if cc.LocalWriter != "" {
		if err := checkAddr(k+".local_writer", cc.LocalWriter); err != nil {
			errs = append(errs, err)
		}
	}
	if len(cc.HAProxies) == 0 {
		add("%s.haproxies: at least one remote HAProxy is needed to verify routing", k)
	}
	for i, h := range cc.HAProxies {
		if !ValidName(h.Name) {
			add("%s.haproxies[%d].name: %q must match %s", k, i, h.Name, nameRE)
		}
		if err := checkAddr(fmt.Sprintf("%s.haproxies[%d].writer", k, i), h.Writer); err != nil {
			errs = append(errs, err)
		}
		if h.Reader != "" {
			if err := checkAddr(fmt.Sprintf("%s.haproxies[%d].reader", k, i), h.Reader); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for key, d := range map[string]time.Duration{"max_lag": cc.MaxLag, "max_lag_unplanned": cc.MaxLagUnplanned, "long_dml": cc.LongDML, "anti_flap": cc.AntiFlap, "unreachable_acker_wait": cc.UnreachableAckerWait, "ack_timeout": cc.AckTimeout} {
		if d < 0 {
			add("%s.%s: must not be negative, got %s", k, key, d)
		}
	}
	for key, d := range map[string]time.Duration{"catchup_timeout": cc.CatchUpTimeout, "routing_timeout": cc.RoutingTimeout,
		"approval_timeout": cc.ApprovalTimeout} {
		if d <= 0 {
			add("%s.%s: must be positive, got %s", k, key, d)
		}
	}
	if err := oneOf(k+".require_approval", cc.RequireApproval, ApprovalAlways, ApprovalCrossZone, ApprovalNever); err != nil {
		errs = append(errs, err)
	} else if cc.RequireApproval != ApprovalNever && len(cc.Approvers) == 0 {
		add("%s.approvers: require_approval is %s, so list who may approve", k, cc.RequireApproval)
	}
	if err := oneOf(k+".ack_fallback", cc.AckFallback, AckFallbackNone, AckFallbackAsync); err != nil {
		errs = append(errs, err)
	}
	if err := oneOf(k+".durability", cc.Durability, DurabilitySemiSync, DurabilityCrossZone); err != nil {
		errs = append(errs, err)
	}
	for _, h := range append(append([]string{}, cc.Prefer...), cc.MustNot...) {
		if !ValidName(h) {
			add("%s: prefer/must_not entry %q is not a valid node name", k, h)
		}
	}
	return errs
}

func sortErrs(errs []error) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
}

// MySQLOptions returns the connection settings for user: timeouts, source address and TLS.
func (c *Config) MySQLOptions(user, password string) (mysqladmin.Options, error) {
	t, err := tlsconf.MySQL(c.MySQL.TLS.Mode, c.MySQL.TLS.Files)
	if err != nil {
		return mysqladmin.Options{}, fmt.Errorf("mysql.tls: %w", err)
	}
	return mysqladmin.Options{User: user, Password: password, ConnectTimeout: c.MySQL.ConnectTimeout,
		ReadTimeout: c.MySQL.ReadTimeout, SourceAddr: c.MySQL.SourceAddr, TLS: t}, nil
}

// ReplicationSource is host:port as a replication source, with Baton's replication
// credentials and TLS settings.
func (c *Config) ReplicationSource(host string, port int) flavor.Source {
	t := c.MySQL.ReplicationTLS
	return flavor.Source{Host: host, Port: port, User: c.Secrets.ReplUser, Password: c.Secrets.ReplPassword,
		HeartbeatPeriod: 0.5, SSL: t.Enabled, SSLCA: t.CAFile, SSLVerifyServerCert: t.VerifyServerCert}
}

// Config returns the TLS configuration, nil when TLS is off.
func (t ClientTLS) Config() (*tls.Config, error) {
	if !t.Enabled {
		if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" {
			return nil, fmt.Errorf("ca_file/cert_file/key_file are set but enabled is false")
		}
		return nil, nil
	}
	return t.Build()
}

// Cluster returns the named cluster's config or an error that lists the known ones.
func (c *Config) Cluster(name string) (ClusterConfig, error) {
	cc, ok := c.Clusters[name]
	if !ok {
		known := make([]string, 0, len(c.Clusters))
		for n := range c.Clusters {
			known = append(known, n)
		}
		sort.Strings(known)
		return cc, fmt.Errorf("unknown cluster %q: configured clusters are %s; add it under clusters: in the config", name, strings.Join(known, ", "))
	}
	return cc, nil
}

// LoadSecrets reads KEY=VALUE lines from path; the environment fills what the file lacks.
func LoadSecrets(path string) (Secrets, error) {
	kv := map[string]string{}
	if path != "" {
		var err error
		if kv, err = envfile.Read(path); err != nil {
			return Secrets{}, fmt.Errorf("secrets_file: %w", err)
		}
	}
	get := func(k string) string {
		if v, ok := kv[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	s := Secrets{
		AdminUser: get("MYSQL_ADMIN_USER"), AdminPassword: get("MYSQL_ADMIN_PASSWORD"),
		ReplUser: get("MYSQL_REPL_USER"), ReplPassword: get("MYSQL_REPL_PASSWORD"),
		HeartbeatUser: get("MYSQL_HEARTBEAT_USER"), HeartbeatPassword: get("MYSQL_HEARTBEAT_PASSWORD"),
		ConsulToken: get("CONSUL_HTTP_TOKEN"),
	}
	if s.AdminUser == "" || s.ReplUser == "" {
		return s, fmt.Errorf("secrets: MYSQL_ADMIN_USER and MYSQL_REPL_USER must be set in secrets_file %q or the environment", path)
	}
	return s, nil
}
