package config

import (
	"fmt"
	"strings"

	"github.com/spf13/viper"
)

// Setting is one row of the configuration reference: its key (and leaves that share the
// row), its default and what it means. This table is the one source of the viper defaults,
// the per-cluster defaults and the README's table (a test keeps the README in step).
type Setting struct {
	Key     string
	Also    []string // sibling leaves with the same default and meaning (ca_file, cert_file, ...)
	Default string   // "" is none
	Show    string   // the README's default column, when the raw default reads badly
	Doc     string
}

// ClusterKey prefixes the keys that every cluster has.
const ClusterKey = "clusters.<name>."

// Settings is the configuration reference, in the README's order.
var Settings = []Setting{
	{Key: "secrets_file", Doc: "file with the secrets above"},
	{Key: "temporal.address", Default: "127.0.0.1:7233", Doc: "Temporal frontend"},
	{Key: "temporal.namespace", Default: "baton", Doc: "namespace"},
	{Key: "temporal.task_queue", Default: "baton", Doc: "task queue of the worker"},
	{Key: "consul.address", Default: "127.0.0.1:8500", Doc: "Consul HTTP API"},
	{Key: "consul.kv_prefix", Default: "baton/clusters", Doc: "KV prefix of the topologies"},
	{Key: "mysql.connect_timeout", Default: "1s", Doc: "connect timeout to MySQL"},
	{Key: "mysql.read_timeout", Default: "5s", Doc: "read/write timeout to MySQL (a GTID wait is bounded by `catchup_timeout` instead)"},
	{Key: ClusterKey + "flavor", Default: string(FlavorMariaDB), Doc: "`mariadb` or `mysql`"},
	{Key: ClusterKey + "local_writer", Doc: "the application's local HAProxy writer, verified too"},
	{Key: ClusterKey + "haproxies", Show: "required", Doc: "`[{name, zone, writer}]`: every remote HAProxy"},
	{Key: ClusterKey + "prefer", Also: []string{"must_not"}, Doc: "promotion rules by node name"},
	{Key: ClusterKey + "max_lag", Default: "5s", Doc: "candidate lag limit (`0s` allows none)"},
	{Key: ClusterKey + "long_dml", Default: "10s", Doc: "a DML or write transaction older than this blocks a switchover"},
	{Key: ClusterKey + "catchup_timeout", Default: "30s", Doc: "how long the candidate may take to catch up"},
	{Key: ClusterKey + "unreachable_acker_wait", Default: "5s", Doc: "how long a failover keeps asking a replica that does not answer but may have acknowledged the last commits, before it promotes without it and reports that acknowledged writes may be missing (`0s` promotes at once)"},
	{Key: ClusterKey + "routing_timeout", Default: "15s", Doc: "how long every HAProxy may take to reach the new primary"},
	{Key: ClusterKey + "anti_flap", Default: "5m", Doc: "no automatic failover this long after an unplanned one (`0s` turns it off)"},
	{Key: ClusterKey + "prevent_cross_zone_failover", Default: "false", Doc: "an unplanned failover promotes only a replica in the dead primary's zone; with none qualified there it fails and the detector logs why (Orchestrator's `PreventCrossDataCenterMasterFailover`); `baton failover --force` may cross"},
	{Key: ClusterKey + "max_lag_unplanned", Default: "0s", Doc: "a replica further behind the primary's failure than this is not promoted by an unplanned failover (its heartbeat row's age less the time since the detector found the primary dead, so it includes the detection time; `0s`: no cap); the result's `PassedOver` says so; `baton failover --force` lifts it (`max_lag` applies to switchovers)"},
	{Key: ClusterKey + "durability", Default: string(DurabilitySemiSync), Doc: "who acknowledges a commit: any replica (`semi_sync`), or only a replica in another zone (`cross_zone`)"},
	{Key: ClusterKey + "ack_fallback", Default: string(AckFallbackAsync), Doc: "when no replica acknowledges: `async` (after the server's `rpl_semi_sync_master_timeout` the primary acknowledges alone; the detector records it in `degraded`, `baton status` shows it, `baton_durability_degradations` counts it, and the next failover's result names the window) or `none` (commits wait, with no end, until a replica that may acknowledge is back: nothing is acknowledged without the copy `durability` promises; Baton sets the semi-sync timeout to its maximum; commits waiting 5 s are recorded in `held` and shown by `baton status`; on MariaDB 10.11 a replica whose connection was reset is served about 10 s after it reconnects, and at times not until semi-sync is switched off and on, which `held` then names: see docs/runbook.md §5)"},
	{Key: ClusterKey + "ack_timeout", Default: "10s", Doc: "under `ack_fallback: async`, the semi-sync timeout a node gets when it is made primary (a promotion, an undone switchover, a reopened primary: a fence in its earlier life as primary may have left it waiting for ever) and that the detector gives back to a primary it finds waiting for ever (as `none`, a fence or a lease lapse leaves it); any other timeout a running primary has is left alone"},
	{Key: ClusterKey + "require_approval", Default: string(ApprovalNever), Doc: "`always`, `cross_zone` or `never`"},
	{Key: ClusterKey + "approvers", Doc: "who may `baton approve` (required unless `never`)"},
	{Key: ClusterKey + "approval_timeout", Default: "30m", Doc: "an unapproved switchover ends, unchanged, after this"},
	{Key: ClusterKey + "hooks", Show: "none", Doc: "this cluster's hooks, run after the global `hooks` (same form)"},
	{Key: "hooks", Show: "none", Doc: "`[{name, on, command \\| url, timeout, attempts}]`: commands or webhooks run with the event as JSON at `pre-failover`, `post-failover`, `post-unsuccessful-failover`, `pre-switchover`, `post-switchover`, `durability-degraded`, `durability-restored` (a pre hook vetoes only by exit status 42 or HTTP 409); `timeout` defaults to `10s`, `attempts` to 1 (pre) or 3 (post)"},
	{Key: "mysql.source_addr", Doc: "local address for Baton's MySQL connections"},
	{Key: "mysql.tls.mode", Default: "disabled", Doc: "`required` (encrypted), `verify_ca` (chain checked), `verify_identity` (chain and the dialled host, as an IP or DNS SAN)"},
	{Key: "mysql.tls.ca_file", Also: []string{"cert_file", "key_file", "server_name"}, Doc: "PEM files; a client certificate is presented when both are set (for `REQUIRE X509` users)"},
	{Key: "mysql.replication_tls.enabled", Default: "false", Doc: "`CHANGE MASTER`/`CHANGE REPLICATION SOURCE` with `MASTER_SSL=1` / `SOURCE_SSL=1`"},
	{Key: "mysql.replication_tls.ca_file", Doc: "the CA **on the database hosts**"},
	{Key: "mysql.replication_tls.verify_server_cert", Default: "false", Doc: "whether replicas check the source's certificate"},
	{Key: "temporal.tls.enabled", Default: "false", Doc: "TLS to the Temporal frontend"},
	{Key: "temporal.tls.ca_file", Also: []string{"cert_file", "key_file", "server_name"}, Doc: "its files; mutual TLS when the client pair is set"},
	{Key: "consul.tls.enabled", Default: "false", Doc: "https to Consul"},
	{Key: "consul.tls.ca_file", Also: []string{"cert_file", "key_file", "server_name"}, Doc: "its files; mutual TLS when the client pair is set"},
	{Key: "detector.probe_interval", Default: "500ms", Doc: "how often the detector probes each primary"},
	{Key: "detector.probe_timeout", Default: "400ms", Doc: "a probe slower than this failed"},
	{Key: "detector.failure_threshold", Default: "3", Doc: "failed probes in a row before the replicas are asked"},
	{Key: "detector.confirm_window", Default: "1s", Doc: "how long the replicas get to notice a death before it is called UnreachablePrimary"},
	{Key: "detector.concurrent_handshakes", Default: "32", Doc: "MySQL and TLS handshakes the detector makes at once (its watchers starting, or reconnecting after a stall); a TCP connect to a silent host holds no slot"},
	{Key: "detector.metrics_addr", Doc: "the detector's Prometheus endpoint (detection latency, probe failures, failovers started)"},
	{Key: "telemetry.traces", Default: "none", Doc: "`otlp`: a span per workflow and activity (Temporal's tracing interceptor), from the CLI command that started it"},
	{Key: "telemetry.otlp_endpoint", Default: "127.0.0.1:4317", Doc: "OTLP/gRPC collector"},
	{Key: "telemetry.otlp_tls.enabled", Default: "false", Doc: "TLS to the OTLP collector"},
	{Key: "telemetry.otlp_tls.ca_file", Also: []string{"cert_file", "key_file", "server_name"}, Doc: "its files; mutual TLS when the client pair is set"},
	{Key: "telemetry.prometheus_addr", Doc: "the worker's Prometheus endpoint (failover and step durations)"},
	{Key: "log.format", Default: "text", Doc: "the log of the worker, the detector and the heartbeat agents: `text` (key=value) or `json` (one object a line); their `--log-format` flag overrides it"},
}

// keys returns the full keys of a setting.
func (s Setting) keys() []string {
	out := []string{s.Key}
	base := s.Key[:strings.LastIndex(s.Key, ".")+1]
	for _, a := range s.Also {
		out = append(out, base+a)
	}
	return out
}

// hasDefault tells settings whose absence means a default from those that are lists or
// required (haproxies, prefer, approvers) and have none.
func (s Setting) hasDefault() bool { return s.Show == "" && !strings.HasSuffix(s.Key, "haproxies") }

// setDefaults gives viper every global default (so BATON_* variables reach every key), and
// every configured cluster its defaults. A key the file sets keeps its value, zero included.
func setDefaults(v *viper.Viper) {
	for _, s := range Settings {
		if strings.HasPrefix(s.Key, ClusterKey) || !s.hasDefault() {
			continue
		}
		for _, k := range s.keys() {
			v.SetDefault(k, s.Default)
		}
	}
}

func setClusterDefaults(v *viper.Viper) {
	for name := range v.GetStringMap("clusters") {
		for _, s := range Settings {
			if !strings.HasPrefix(s.Key, ClusterKey) || s.Default == "" {
				continue
			}
			k := "clusters." + name + "." + strings.TrimPrefix(s.Key, ClusterKey)
			if !v.IsSet(k) {
				v.Set(k, s.Default)
			}
		}
	}
}

// MarkdownTable is the README's configuration table.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| key | default | meaning |\n|---|---|---|\n")
	for _, s := range Settings {
		key := "`" + s.Key + "`"
		for _, a := range s.Also {
			key += ", `" + a + "`"
		}
		def := s.Show
		switch {
		case def != "":
		case s.Default == "":
			def = "none"
		default:
			def = "`" + s.Default + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", key, def, s.Doc)
	}
	return b.String()
}
