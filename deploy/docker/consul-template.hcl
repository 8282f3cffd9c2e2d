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
# Read from the Consul leader, not any server: consul-template's default (max_stale 2s) lets
# a follower answer, and a follower applies the failover's publish only when the leader's
# next message tells it the entry committed. Under the bench's load a planned switchover's
# render came 55-130 ms after the publish with followers answering, 15-68 ms from the leader.
max_stale = "0s"
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
  # A list: consul-template runs it directly, with no sh -c between.
  command = ["baton-haproxy-reload", "--dir", "/var/lib/haproxy"]
  command_timeout = "10s"
}
