package sandboxkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CgroupRoot is the cgroup v2 hierarchy, where iptables' cgroup match finds a process.
const CgroupRoot = "/sys/fs/cgroup/unified"

// Iptables runs iptables with args.
func Iptables(args ...string) error {
	if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("iptables %v: %v\n%s", args, err, out)
	}
	return nil
}

// Cut inserts iptables rules (each without its -I) and returns the function that removes
// them (once; later calls do nothing). A rule that cannot be inserted removes the ones
// before it.
func Cut(rules [][]string) (unblock func() error, err error) {
	var done [][]string
	remove := func() error {
		var errs []error
		for _, r := range done {
			errs = append(errs, Iptables(append([]string{"-D"}, r...)...))
		}
		done = nil
		return errors.Join(errs...)
	}
	for _, r := range rules {
		if err := Iptables(append([]string{"-I"}, r...)...); err != nil {
			_ = remove()
			return nil, err
		}
		done = append(done, r)
	}
	return remove, nil
}

// CutProcessFromConsul moves pid into a cgroup of its own (named group) and resets every
// connection it opens to Consul's HTTP port: that process alone loses Consul, every other
// process on the host keeps it. A socket keeps the cgroup it was created in, so its open
// connections to Consul are closed (ss -K) until it has none left (up to 5 s). The
// returned function undoes it.
func CutProcessFromConsul(pid int, group, port string) (unblock func(), err error) {
	dir := filepath.Join(CgroupRoot, group)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup v2 at %s: %v", CgroupRoot, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return nil, fmt.Errorf("move pid %d into %s: %v", pid, dir, err)
	}
	restore := func() {
		_ = os.WriteFile(filepath.Join(CgroupRoot, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
		_ = os.Remove(dir)
	}
	unblockRules, err := Cut([][]string{{"OUTPUT", "-m", "cgroup", "--path", group, "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", "tcp-reset"}})
	if err != nil {
		restore()
		return nil, err
	}
	done := false
	unblock = func() {
		if !done {
			done = true
			_ = unblockRules()
			restore()
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		open, err := ConsulSockets(pid, port)
		if err != nil {
			unblock()
			return nil, err
		}
		if len(open) == 0 {
			return unblock, nil
		}
		if time.Now().After(deadline) {
			unblock()
			return nil, fmt.Errorf("pid %d still holds connections to Consul (ports %v) after 5 s", pid, open)
		}
		for _, sport := range open {
			_ = exec.Command("ss", "-K", "-tn", "sport", "=", ":"+sport, "dport", "=", ":"+port).Run()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ConsulSockets lists the local ports of pid's established connections to port.
func ConsulSockets(pid int, port string) ([]string, error) {
	out, err := exec.Command("ss", "-tnp", "state", "established", "dport", "=", ":"+port).Output()
	if err != nil {
		return nil, fmt.Errorf("ss: %v", err)
	}
	var ports []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) >= 5 && strings.Contains(l, fmt.Sprintf("pid=%d,", pid)) {
			if i := strings.LastIndex(f[2], ":"); i >= 0 {
				ports = append(ports, f[2][i+1:])
			}
		}
	}
	return ports, nil
}
