// Command baton-haproxy-reload is consul-template's command on a remote HAProxy host: it is on
// every failover's critical path, so it talks to HAProxy's runtime API itself instead of
// through shell tools.
//
// Right after consul-template renders a new haproxy.cfg it
//  1. switches the running writer server to the new primary through the runtime API: the new
//     address, the old primary's sessions ended (their clients reconnect to the new one), and
//     the server marked up at once, since Baton published it only after promoting it;
//  2. saves the servers' state and asks the master to reload, and returns only once the
//     running worker serves exactly the new file's servers. HAProxy 2.6 reloads
//     asynchronously and drops a reload that reaches its master while it re-executes, so a
//     reload not taken up within 2 s is sent again (three tries).
//
// A file that does not load, or a master that never reloads, exits non-zero: that stops
// consul-template, whose Consul check then fails Baton's pre-checks.
//
//	baton-haproxy-reload --dir DIR   (DIR holds haproxy.cfg, admin.sock, master.sock, server-state)
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	dir := flag.String("dir", "", "the HAProxy instance's directory")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: baton-haproxy-reload --dir DIR")
		os.Exit(2)
	}
	if err := run(*dir); err != nil {
		fmt.Fprintf(os.Stderr, "haproxy %s: %v\n", filepath.Base(*dir), err)
		os.Exit(1)
	}
}

func run(dir string) error {
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return err
	}
	want := parseServers(string(b))
	h := runtime{admin: filepath.Join(dir, "admin.sock"), master: filepath.Join(dir, "master.sock")}
	state, err := h.cmd(h.admin, "show servers state")
	if err != nil { // HAProxy is not running here: only check the file
		return check(cfgPath)
	}
	if err := h.switchWriter(want, parseState(state)); err != nil {
		fmt.Fprintf(os.Stderr, "runtime switch of the writer: %v (the reload still follows)\n", err)
	}
	if state, err = h.cmd(h.admin, "show servers state"); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "server-state"), []byte(state), 0o644)
	}
	for try := 1; try <= 3; try++ {
		if err := h.reload(); err != nil {
			return err
		}
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if s, err := h.cmd(h.admin, "show servers state"); err == nil && sameServers(parseState(s), want) {
				return nil
			}
		}
		if err := check(cfgPath); err != nil {
			return fmt.Errorf("the new configuration does not load; the old workers keep running: %w", err)
		}
		fmt.Fprintf(os.Stderr, "reload %d did not take effect within 2s; sending it again\n", try)
	}
	return errors.New("the master did not reload after 3 tries; restart HAProxy on this host")
}

// server is one server line: its backend, name and address (ip:port).
type server struct{ backend, name, addr string }

// parseServers reads the backends' server lines of a configuration file.
func parseServers(cfg string) []server {
	var out []server
	backend := ""
	for _, line := range strings.Split(cfg, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && (f[0] == "backend" || f[0] == "listen" || f[0] == "frontend"):
			backend = map[bool]string{true: f[1], false: ""}[f[0] != "frontend"]
		case len(f) >= 3 && f[0] == "server" && backend != "":
			out = append(out, server{backend: backend, name: f[1], addr: f[2]})
		}
	}
	return out
}

// parseState reads "show servers state": be_id be_name srv_id srv_name srv_addr ... srv_port (19th).
func parseState(s string) []server {
	var out []server
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 19 || strings.HasPrefix(f[0], "#") {
			continue
		}
		out = append(out, server{backend: f[1], name: f[3], addr: net.JoinHostPort(f[4], f[18])})
	}
	return out
}

func sameServers(running, want []server) bool {
	key := func(s []server) []string {
		var k []string
		for _, x := range s {
			k = append(k, x.backend+"/"+x.name)
		}
		slices.Sort(k)
		return k
	}
	return (len(running) > 0 || len(want) == 0) && slices.Equal(key(running), key(want))
}

func only(s []server, backend string) []server {
	var out []server
	for _, x := range s {
		if x.backend == backend {
			out = append(out, x)
		}
	}
	return out
}

type runtime struct{ admin, master string }

// switchWriter points each one-server writer backend (writer, writer_<cluster>) at the new
// file's primary, if it moved.
func (h runtime) switchWriter(want, running []server) error {
	var errs []error
	for _, b := range writerBackends(want) {
		errs = append(errs, h.switchOne(b, only(want, b), only(running, b)))
	}
	return errors.Join(errs...)
}

// writerBackends names the writer backends of a file, one per cluster.
func writerBackends(s []server) []string {
	var out []string
	for _, x := range s {
		if (x.backend == "writer" || strings.HasPrefix(x.backend, "writer_")) && !slices.Contains(out, x.backend) {
			out = append(out, x.backend)
		}
	}
	return out
}

func (h runtime) switchOne(backend string, w, r []server) error {
	if len(w) != 1 || len(r) != 1 || w[0].addr == r[0].addr {
		return nil
	}
	ip, port, err := net.SplitHostPort(w[0].addr)
	if err != nil {
		return err
	}
	srv := backend + "/" + r[0].name
	for _, c := range []string{
		fmt.Sprintf("set server %s addr %s port %s", srv, ip, port),
		"shutdown sessions server " + srv,
		"set server " + srv + " health up",
	} {
		out, err := h.cmd(h.admin, c)
		if err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
		if o := strings.TrimSpace(out); o != "" && !strings.Contains(o, "changed from") {
			return fmt.Errorf("%s: %s", c, o)
		}
	}
	return nil
}

// reload asks the master to reload; its socket refuses connections while it re-executes.
func (h runtime) reload() error {
	var err error
	for range 50 {
		if _, err = h.cmd(h.master, "reload"); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the master socket refused the reload: %w", err)
}

// cmd sends one command to a CLI socket and returns the whole answer.
func (h runtime) cmd(sock, c string) (string, error) {
	conn, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(c + "\n")); err != nil {
		return "", err
	}
	b, err := io.ReadAll(bufio.NewReader(conn))
	return string(b), err
}

// check runs haproxy's own configuration check and returns its complaint.
func check(cfg string) error {
	out, err := exec.Command("haproxy", "-c", "-q", "-f", cfg).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
