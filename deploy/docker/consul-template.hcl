# consul-template on a remote HAProxy host, as on the sandbox's
# (deploy/local/templates/consul-template.hcl). The host's own Consul agent is given by
# -consul-addr; haproxy.cfg.ctmpl is haproxy-global.cfg followed by haproxy-remote.cfg.ctmpl.
consul {
  # Keep retrying a lost Consul every second at most: the default backs off to a minute
  # and exits after 12 tries.
  retry {
    enabled = true
    attempts = 0
    backoff = "100ms"
    max_backoff = "1s"
  }
}
log_level = "info"
kill_signal = "SIGINT"
# The host's Consul agent checks that this process is alive by this file.
pid_file = "/var/lib/haproxy/consul-template.pid"
wait {
  min = "0s"
  max = "0s"
}
template {
  source = "/var/lib/haproxy/haproxy.cfg.ctmpl"
  destination = "/var/lib/haproxy/haproxy.cfg"
  command = "baton-haproxy-reload --dir /var/lib/haproxy"
  command_timeout = "10s"
}
