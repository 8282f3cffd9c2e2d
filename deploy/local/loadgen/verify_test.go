package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestAckedFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.acked"), filepath.Join(dir, "b.acked")
	if err := writeAcked(a, []int64{3, 1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := writeAcked(b, []int64{2, 9}); err != nil { // 2 is in both: counted once
		t.Fatal(err)
	}
	got, err := readAcked([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{3, 1, 2, 9}; !slices.Equal(got, want) {
		t.Fatalf("read %v, want %v", got, want)
	}
	if data, _ := os.ReadFile(a); string(data) != "3\n1\n2\n" {
		t.Fatalf("file holds %q", data)
	}
	// Rewriting replaces the list and leaves no temporary file behind.
	if err := writeAcked(a, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := readAcked([]string{a}); err != nil || len(got) != 0 {
		t.Fatalf("empty list read back as %v, %v", got, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("directory holds %d files, want 2", len(ents))
	}
}

func TestAckedFileErrors(t *testing.T) {
	ids, err := parseAcked("f", strings.NewReader("# comment\n\n 12 \n13\r\n"))
	if err != nil || !slices.Equal(ids, []int64{12, 13}) {
		t.Fatalf("got %v, %v", ids, err)
	}
	if _, err := parseAcked("f", strings.NewReader("1\nx2\n")); err == nil || !strings.Contains(err.Error(), "f line 2") {
		t.Fatalf("bad line: %v", err)
	}
	if _, err := readAcked([]string{filepath.Join(t.TempDir(), "absent")}); err == nil {
		t.Fatal("a missing file must be an error, not an empty list")
	}
	if err := writeAcked(filepath.Join(t.TempDir(), "no", "such", "dir"), []int64{1}); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}

func TestSplitFiles(t *testing.T) {
	if got := splitFiles("a.acked, b.acked,,"); !slices.Equal(got, []string{"a.acked", "b.acked"}) {
		t.Fatalf("got %q", got)
	}
}

func TestParseNodes(t *testing.T) {
	got, err := parseNodes(" 127.0.1.1:3306  127.0.1.2:3306\t127.0.1.3:3306 ")
	if err != nil || !slices.Equal(got, []string{"127.0.1.1:3306", "127.0.1.2:3306", "127.0.1.3:3306"}) {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, bad := range []string{"", "  ", "127.0.1.1", "127.0.1.1:", ":3306", "127.0.1.1:x", "127.0.1.1:70000",
		"127.0.1.1:3306 127.0.1.1:3306"} {
		if got, err := parseNodes(bad); err == nil {
			t.Errorf("parseNodes(%q) = %q, want an error", bad, got)
		}
	}
}

func TestReport(t *testing.T) {
	down := memberResult{Addr: "127.0.1.3:3306", Down: true, Err: errors.New("connection refused")}
	ok := []memberResult{{Addr: "127.0.1.1:3306"}, {Addr: "127.0.1.2:3306"}}

	var out bytes.Buffer
	if err := report(&out, ok, 10, false); err != nil {
		t.Fatal(err)
	}
	if want := "verify: 127.0.1.1:3306: 10 of 10 acked writes found, 0 missing\n" +
		"verify: 127.0.1.2:3306: 10 of 10 acked writes found, 0 missing\n" +
		"verify: all 10 acked writes are on each of the 2 members checked\n"; out.String() != want {
		t.Fatalf("output:\n%s", out.String())
	}

	// A member that misses writes fails, named with its count, whatever allowDown says.
	out.Reset()
	lossy := append(slices.Clone(ok), memberResult{Addr: "127.0.1.3:3306", Missing: []int64{7, 8}})
	err := report(&out, lossy, 10, true)
	if err == nil || !strings.Contains(err.Error(), "127.0.1.3:3306 misses 2 of 10 acked writes") {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(out.String(), "127.0.1.3:3306: 8 of 10 acked writes found, 2 missing (ids 7, 8)") {
		t.Fatalf("output:\n%s", out.String())
	}

	// A member that does not answer fails the check unless allowDown.
	out.Reset()
	withDown := append(slices.Clone(ok), down)
	if err := report(&out, withDown, 10, false); err == nil || !strings.Contains(err.Error(), "127.0.1.3:3306 not checked (did not answer)") {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(out.String(), "127.0.1.3:3306: not checked (did not answer): connection refused") {
		t.Fatalf("output:\n%s", out.String())
	}
	out.Reset()
	if err := report(&out, withDown, 10, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "all 10 acked writes are on each of the 2 members checked (1 did not answer, allowed by --allow-down)") {
		t.Fatalf("output:\n%s", out.String())
	}
	// ...but a check where no member answered proves nothing.
	if err := report(&out, []memberResult{down}, 10, true); err == nil || !strings.Contains(err.Error(), "no member of 1 answered") {
		t.Fatalf("err %v", err)
	}

	// One that answered but could not be checked is never excused.
	failed := append(slices.Clone(ok), memberResult{Addr: "127.0.1.3:3306", Err: errors.New("table missing")})
	if err := report(&out, failed, 10, true); err == nil {
		t.Fatal("a failed check passed with allowDown")
	}
}

func TestSample(t *testing.T) {
	if got := sample([]int64{1, 2, 3, 4, 5, 6}); got != " (ids 1, 2, 3, 4, 5, ...)" {
		t.Fatalf("got %q", got)
	}
}

// verify refuses, before it connects anywhere, when there is nothing to check or no member.
func TestVerifyRefusesEarly(t *testing.T) {
	dir := t.TempDir()
	empty, full := filepath.Join(dir, "empty.acked"), filepath.Join(dir, "full.acked")
	if err := writeAcked(empty, nil); err != nil {
		t.Fatal(err)
	}
	if err := writeAcked(full, []int64{1}); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]string{"MYSQL_NODES": "127.0.0.1:1"}
	for _, c := range []struct {
		env   map[string]string
		files []string
		want  string
	}{
		{nodes, nil, "at least one file"},
		{map[string]string{}, []string{full}, "MYSQL_NODES is empty"},
		{nodes, []string{empty}, "nothing to verify"},
		{nodes, []string{full, filepath.Join(dir, "absent")}, "absent"},
		{map[string]string{"MYSQL_NODES": "127.0.0.1:1", "SECRETS_FILE": filepath.Join(dir, "nosecrets")}, []string{full}, "nosecrets"},
	} {
		if err := verify(c.env, c.files, false); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("verify(%v, %v) = %v, want an error with %q", c.env, c.files, err, c.want)
		}
	}
}
