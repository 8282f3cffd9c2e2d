package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/baton-db/baton/internal/envfile"
	"github.com/baton-db/baton/internal/loadgen"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/tlsconf"
)

// replicationWait is how long a member may take to receive an acked write before it
// counts as missing.
const replicationWait = 10 * time.Second

// writeAcked writes ids to path, one decimal id a line. It writes a temporary file
// next to path and renames it, so a reader never sees half a list.
func writeAcked(path string, ids []int64) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write acked ids: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; cleans up on failure
	w := bufio.NewWriter(tmp)
	for _, id := range ids {
		w.WriteString(strconv.FormatInt(id, 10))
		w.WriteByte('\n')
	}
	err = w.Flush()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write acked ids to %s: %w", path, err)
	}
	return nil
}

// parseAcked reads the ids of one acked-ids file: one decimal id a line; blank lines and
// lines starting with # are skipped. name is the file's name for errors.
func parseAcked(name string, r io.Reader) ([]int64, error) {
	var ids []int64
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %q is not an id", name, n, line)
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return ids, nil
}

// readAcked returns the ids of every file, each id once, in the order first seen.
func readAcked(paths []string) ([]int64, error) {
	var all []int64
	seen := map[int64]bool{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("acked ids: %w", err)
		}
		ids, err := parseAcked(p, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				all = append(all, id)
			}
		}
	}
	return all, nil
}

// splitFiles splits the value of --verify: comma-separated file names.
func splitFiles(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseNodes reads MYSQL_NODES: a space-separated list of host:port.
func parseNodes(s string) ([]string, error) {
	nodes := strings.Fields(s)
	if len(nodes) == 0 {
		return nil, errors.New("MYSQL_NODES is empty or not set in the env file")
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		host, port, err := net.SplitHostPort(n)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("MYSQL_NODES: %q is not host:port", n)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return nil, fmt.Errorf("MYSQL_NODES: %q has no valid port", n)
		}
		if seen[n] {
			return nil, fmt.Errorf("MYSQL_NODES: %s is listed twice", n)
		}
		seen[n] = true
	}
	return nodes, nil
}

// memberResult is the check of one member.
type memberResult struct {
	Addr    string
	Missing []int64 // acked ids the member does not have (after replicationWait)
	Down    bool    // it did not answer (a failed ping); Err says why
	Err     error   // not checked: it did not answer, or the check failed
}

// report prints one line per member and returns an error naming every member that
// misses an acked write, with its count, or was not checked. A member that did not answer
// is excused by allowDown (one that answered but could not be checked never is), but at
// least one member must have been checked.
func report(w io.Writer, results []memberResult, total int, allowDown bool) error {
	var fails []string
	checked := 0
	for _, r := range results {
		if r.Err != nil {
			what := "did not answer"
			if !r.Down {
				what = "check failed"
			}
			fmt.Fprintf(w, "verify: %s: not checked (%s): %v\n", r.Addr, what, r.Err)
			if !r.Down || !allowDown {
				fails = append(fails, fmt.Sprintf("%s not checked (%s)", r.Addr, what))
			}
			continue
		}
		checked++
		fmt.Fprintf(w, "verify: %s: %d of %d acked writes found, %d missing%s\n",
			r.Addr, total-len(r.Missing), total, len(r.Missing), sample(r.Missing))
		if len(r.Missing) > 0 {
			fails = append(fails, fmt.Sprintf("%s misses %d of %d acked writes", r.Addr, len(r.Missing), total))
		}
	}
	if checked == 0 && len(fails) == 0 {
		fails = append(fails, fmt.Sprintf("no member of %d answered", len(results)))
	}
	if len(fails) > 0 {
		return errors.New("verify failed: " + strings.Join(fails, "; "))
	}
	skipped := ""
	if checked < len(results) {
		skipped = fmt.Sprintf(" (%d did not answer, allowed by --allow-down)", len(results)-checked)
	}
	fmt.Fprintf(w, "verify: all %d acked writes are on each of the %d members checked%s\n", total, checked, skipped)
	return nil
}

// sample names the first few missing ids.
func sample(miss []int64) string {
	if len(miss) == 0 {
		return ""
	}
	const most = 5
	s := make([]string, 0, most)
	for _, id := range miss[:min(len(miss), most)] {
		s = append(s, strconv.FormatInt(id, 10))
	}
	more := ""
	if len(miss) > most {
		more = ", ..."
	}
	return " (ids " + strings.Join(s, ", ") + more + ")"
}

// verify checks every acked id in files on every member in the env file's MYSQL_NODES,
// connecting to each directly (not through HAProxy) as Baton's admin user over TLS.
func verify(env map[string]string, files []string, allowDown bool) error {
	if len(files) == 0 {
		return errors.New("--verify needs at least one file")
	}
	nodes, err := parseNodes(env["MYSQL_NODES"])
	if err != nil {
		return err
	}
	ids, err := readAcked(files)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("no acked ids in %s: nothing to verify", strings.Join(files, ", "))
	}
	sec, err := envfile.Read(env["SECRETS_FILE"])
	if err != nil {
		return err
	}
	if sec["MYSQL_ADMIN_USER"] == "" {
		return fmt.Errorf("MYSQL_ADMIN_USER is not set in %s", env["SECRETS_FILE"])
	}
	// The admin user requires a client certificate (REQUIRE X509); each server's
	// certificate names its address.
	t, err := tlsconf.MySQL(tlsconf.VerifyIdentity, tlsconf.Files{
		CAFile: env["MYSQL_TLS_CA"], CertFile: env["MYSQL_TLS_CERT"], KeyFile: env["MYSQL_TLS_KEY"]})
	if err != nil {
		return fmt.Errorf("mysql tls: %w", err)
	}
	opts := mysqladmin.Options{User: sec["MYSQL_ADMIN_USER"], Password: sec["MYSQL_ADMIN_PASSWORD"],
		ConnectTimeout: 2 * time.Second, ReadTimeout: 10 * time.Second, TLS: t}

	fmt.Printf("verify: %d acked writes from %s, on each of %s (directly, up to %s each for replication)\n",
		len(ids), strings.Join(files, ", "), strings.Join(nodes, ", "), replicationWait)
	results := make([]memberResult, len(nodes))
	var wg sync.WaitGroup
	for i, addr := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = checkMember(opts, addr, ids)
		}()
	}
	wg.Wait()
	return report(os.Stdout, results, len(ids), allowDown)
}

func checkMember(opts mysqladmin.Options, addr string, ids []int64) memberResult {
	r := memberResult{Addr: addr}
	db, err := opts.OpenDB(addr)
	if err != nil {
		r.Err = err
		return r
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), replicationWait+30*time.Second)
	defer cancel()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	err = db.PingContext(pctx)
	pcancel()
	if err != nil {
		r.Down, r.Err = true, err
		return r
	}
	r.Missing, r.Err = loadgen.Missing(ctx, db, ids, replicationWait)
	return r
}
