consul {
  address = "${CONSUL_ADDR}"
  token = "${TOKEN}"
  # Keep retrying a lost Consul every second at most: the default backs off to a minute
  # (routing would lag a failover by that much after a Consul blip) and exits after 12 tries.
  retry {
    enabled = true
    attempts = 0
    backoff = "100ms"
    max_backoff = "1s"
  }
}
log_level = "info"
kill_signal = "SIGINT"
wait { min = "0s" max = "0s" }
template {
  source = "${DIR}/haproxy.cfg.ctmpl"
  destination = "${DIR}/haproxy.cfg"
  command = "${STATE}/bin/baton-haproxy-reload --dir ${DIR}"
  command_timeout = "10s"
}
