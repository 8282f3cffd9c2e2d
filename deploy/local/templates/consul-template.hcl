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
# Read from the Consul leader, not any server: consul-template's default (max_stale 2s) lets
# a follower answer, and a follower applies the failover's publish only when the leader's
# next message tells it the entry committed. Under the bench's load a planned switchover's
# render came 55-130 ms after the publish with followers answering, 15-68 ms from the leader.
max_stale = "0s"
log_level = "info"
kill_signal = "SIGINT"
wait { min = "0s" max = "0s" }
template {
  source = "${DIR}/haproxy.cfg.ctmpl"
  destination = "${DIR}/haproxy.cfg"
  # A list: consul-template runs it directly, with no sh -c between (a fork on the failover's path).
  command = ["${STATE}/bin/baton-haproxy-reload", "--dir", "${DIR}"]
  command_timeout = "10s"
}
