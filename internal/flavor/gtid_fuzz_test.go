package flavor

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The fuzz targets check both GTID dialects against a brute-force reference: small sets
// (sequence numbers <= 200, a handful of uuids, tags, domains and server ids) expanded
// into explicit sets of transactions. The sets are derived from the fuzz bytes, written
// out in a (deliberately non-canonical) text form and parsed, so the parsers, String,
// Contains and Missing are all exercised. Seeds live in testdata/fuzz/<FuzzName>/.

const fuzzMaxSeq = 200

// ---- MySQL ----

var (
	fuzzUUIDs = []string{tu1, tu2, "00000000-0000-0000-0000-00000000000a"}
	fuzzTags  = []string{"", "blue", "a_1"}
)

type myTxn struct {
	uuid, tag string
	gno       int64
}

type myRef map[myTxn]bool

type myPart struct {
	uuid, tag string // canonical spellings (the reference's keys)
	text      string // as written in the set's text
	lastTag   string // the tag the part's text ends in
}

// mysqlFromBytes turns b, four bytes per interval (at most 16 intervals), into a MySQL
// GTID set text and the transactions it holds.
//
//	b[0]: uuid (low nibble % 3); 0x10 upper-case uuid; 0x20 continue the previous part
//	      when it has the same uuid; 0x40 separate parts with ",\n"
//	b[1]: tag (low nibble % 3); 0x10 upper-case tag
//	b[2]: first sequence number, 1 + b[2]%200
//	b[3]: length: < 128: 1 + b[3]%16; else 1 + 2*(b[3]-128); capped at 200
func mysqlFromBytes(b []byte) (string, myRef) {
	ref := myRef{}
	var parts []myPart
	var seps []string
	for i := 0; i+4 <= len(b) && i < 4*16; i += 4 {
		u, tag := fuzzUUIDs[int(b[i]&0x0f)%len(fuzzUUIDs)], fuzzTags[int(b[i+1]&0x0f)%len(fuzzTags)]
		start := 1 + int64(b[i+2])%fuzzMaxSeq
		n := 1 + int64(b[i+3]%16)
		if b[i+3] >= 128 {
			n = 1 + 2*int64(b[i+3]-128)
		}
		stop := min(start+n, fuzzMaxSeq+1) // half-open
		for g := start; g < stop; g++ {
			ref[myTxn{u, tag, g}] = true
		}
		iv := fmt.Sprint(start)
		if stop-start > 1 {
			iv = fmt.Sprintf("%d-%d", start, stop-1)
		}
		tagText := tag
		if b[i+1]&0x10 != 0 {
			tagText = strings.ToUpper(tag)
		}
		// Continue the previous part (uuid:1-3:tag:5) if it is the same uuid; intervals
		// without a tag cannot follow a tagged one in the same part.
		if last := len(parts) - 1; b[i]&0x20 != 0 && last >= 0 && parts[last].uuid == u && (tag != "" || parts[last].lastTag == "") {
			if tag != parts[last].lastTag {
				parts[last].text += ":" + tagText
				parts[last].lastTag = tag
			}
			parts[last].text += ":" + iv
			continue
		}
		uText := u
		if b[i]&0x10 != 0 {
			uText = strings.ToUpper(u)
		}
		text := uText
		if tag != "" {
			text += ":" + tagText
		}
		parts = append(parts, myPart{uuid: u, tag: tag, text: text + ":" + iv, lastTag: tag})
		sep := ","
		if b[i]&0x40 != 0 {
			sep = ",\n"
		}
		seps = append(seps, sep)
	}
	var sb strings.Builder
	for i, p := range parts {
		if i > 0 {
			sb.WriteString(seps[i])
		}
		sb.WriteString(p.text)
	}
	return sb.String(), ref
}

// expandMySQL lists the transactions of a parsed MySQL set; ok is false if it holds a
// sequence number the fuzz sets cannot (so expanding it could be huge).
func expandMySQL(g GTIDSet) (ref myRef, ok bool) {
	ref = myRef{}
	m := g.(mysqlSet)
	if m.s == nil {
		return ref, true
	}
	for u, tags := range *m.s {
		for tag, ivs := range tags {
			for _, iv := range ivs {
				if iv.Start < 0 || iv.Stop > fuzzMaxSeq+1 {
					return nil, false
				}
				for g := iv.Start; g < iv.Stop; g++ {
					ref[myTxn{u.String(), tag.String(), g}] = true
				}
			}
		}
	}
	return ref, true
}

func (r myRef) minus(o myRef) myRef {
	d := myRef{}
	for t := range r {
		if !o[t] {
			d[t] = true
		}
	}
	return d
}

func (r myRef) String() string {
	ts := make([]string, 0, len(r))
	for t := range r {
		ts = append(ts, fmt.Sprintf("%s:%s:%d", t.uuid, t.tag, t.gno))
	}
	slices.Sort(ts)
	return strings.Join(ts, " ")
}

func sameMySQL(a, b myRef) bool {
	return len(a) == len(b) && len(a.minus(b)) == 0
}

// checkMySQL parses text, checks it against ref and checks the String round trip.
func checkMySQL(t *testing.T, text string, ref myRef) GTIDSet {
	t.Helper()
	g, err := parseMySQLSet(text)
	if err != nil {
		t.Fatalf("parse %q: %v", text, err)
	}
	got, ok := expandMySQL(g)
	if !ok || !sameMySQL(got, ref) {
		t.Fatalf("parse %q holds %v, want %v", text, got, ref)
	}
	s := g.String()
	g2, err := parseMySQLSet(s)
	if err != nil {
		t.Fatalf("String %q of %q does not parse: %v", s, text, err)
	}
	if got2, ok := expandMySQL(g2); !ok || !sameMySQL(got2, ref) {
		t.Fatalf("String %q of %q holds %v, want %v", s, text, got2, ref)
	}
	if s2 := g2.String(); s2 != s {
		t.Fatalf("String not canonical: %q, then %q", s, s2)
	}
	return g
}

// checkMySQLMissing checks have.Missing(other), Contains and Lacks against the reference.
func checkMySQLMissing(t *testing.T, have, other GTIDSet, haveRef, otherRef myRef) {
	t.Helper()
	want := otherRef.minus(haveRef)
	m := have.Missing(other)
	if (m == "") != (len(want) == 0) {
		t.Fatalf("%s .Missing(%s) = %q, want %v", have, other, m, want)
	}
	if m != "" {
		mg, err := parseMySQLSet(m)
		if err != nil {
			t.Fatalf("%s .Missing(%s) = %q does not parse: %v", have, other, m, err)
		}
		if got, ok := expandMySQL(mg); !ok || !sameMySQL(got, want) {
			t.Fatalf("%s .Missing(%s) = %q, holds %v, want %v", have, other, m, got, want)
		}
		if c := mg.String(); c != m {
			t.Fatalf("%s .Missing(%s) = %q, not canonical (%q)", have, other, m, c)
		}
	}
	if c := have.Contains(other); c != (len(want) == 0) {
		t.Fatalf("%s .Contains(%s) = %v, missing %v", have, other, c, want)
	}
	if l := Lacks(have, other); l != m {
		t.Fatalf("Lacks(%s, %s) = %q, Missing %q", have, other, l, m)
	}
}

func FuzzMySQLSets(f *testing.F) {
	f.Add([]byte{0, 0, 0, 128 + 24, 0x20, 0, 50, 128 + 24, 0x20, 0, 99, 0}, []byte{0, 0, 0, 128 + 49, 0, 0, 99, 0}) // 1-49:51-100 vs 1-100
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0x31, 1, 0, 4, 0x20, 0, 9, 3}, []byte{1, 1, 2, 0})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ta, ra := mysqlFromBytes(a)
		tb, rb := mysqlFromBytes(b)
		ga := checkMySQL(t, ta, ra)
		gb := checkMySQL(t, tb, rb)
		checkMySQLMissing(t, ga, gb, ra, rb)
		checkMySQLMissing(t, gb, ga, rb, ra)
		checkMySQLMissing(t, ga, ga, ra, ra)
	})
}

// ---- MariaDB ----

var (
	fuzzDomains = []uint32{0, 1, 7}
	fuzzServers = []uint32{1, 2, 101, 4294967295}
)

type mariaTxn struct {
	domain, server uint32
	seq            uint64
}

type mariaRef map[mariaTxn]bool

// mariaFromBytes turns b, three bytes per GTID (at most 32 GTIDs), into a
// gtid_binlog_state text and the transactions it stands for: every sequence number up to
// the last of each (domain, server_id).
//
//	b[0]: domain (low nibble % 3); 0x10 separate with ", "; 0x20 with ",\n"
//	b[1]: server id (% 4)
//	b[2]: sequence number, b[2]%201 (0 names no transaction)
func mariaFromBytes(b []byte) (string, mariaRef) {
	ref := mariaRef{}
	var sb strings.Builder
	for i := 0; i+3 <= len(b) && i < 3*32; i += 3 {
		d, s := fuzzDomains[int(b[i]&0x0f)%len(fuzzDomains)], fuzzServers[int(b[i+1])%len(fuzzServers)]
		seq := uint64(b[i+2]) % (fuzzMaxSeq + 1)
		for q := uint64(1); q <= seq; q++ {
			ref[mariaTxn{d, s, q}] = true
		}
		if i > 0 {
			switch {
			case b[i]&0x20 != 0:
				sb.WriteString(",\n")
			case b[i]&0x10 != 0:
				sb.WriteString(", ")
			default:
				sb.WriteString(",")
			}
		}
		fmt.Fprintf(&sb, "%d-%d-%d", d, s, seq)
	}
	return sb.String(), ref
}

func expandMaria(g GTIDSet) (ref mariaRef, ok bool) {
	ref = mariaRef{}
	for k, seq := range g.(mariaState) {
		if seq > fuzzMaxSeq {
			return nil, false
		}
		for q := uint64(1); q <= seq; q++ {
			ref[mariaTxn{k[0], k[1], q}] = true
		}
	}
	return ref, true
}

func (r mariaRef) minus(o mariaRef) mariaRef {
	d := mariaRef{}
	for t := range r {
		if !o[t] {
			d[t] = true
		}
	}
	return d
}

func sameMaria(a, b mariaRef) bool {
	return len(a) == len(b) && len(a.minus(b)) == 0
}

// describe is what Missing should say of the transactions d: per (domain, server_id), in
// order, the last of them.
func (r mariaRef) describe() string {
	last := map[[2]uint32]uint64{}
	for t := range r {
		k := [2]uint32{t.domain, t.server}
		last[k] = max(last[k], t.seq)
	}
	keys := make([][2]uint32, 0, len(last))
	for k := range last {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]uint32) int {
		if a[0] != b[0] {
			return int(int64(a[0]) - int64(b[0]))
		}
		return int(int64(a[1]) - int64(b[1]))
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d-%d-%d", k[0], k[1], last[k]))
	}
	return strings.Join(parts, ",")
}

func checkMaria(t *testing.T, text string, ref mariaRef) GTIDSet {
	t.Helper()
	g, err := parseMariaState(text)
	if err != nil {
		t.Fatalf("parse %q: %v", text, err)
	}
	if got, ok := expandMaria(g); !ok || !sameMaria(got, ref) {
		t.Fatalf("parse %q holds %v, want %v", text, got, ref)
	}
	s := g.String()
	g2, err := parseMariaState(s)
	if err != nil {
		t.Fatalf("String %q of %q does not parse: %v", s, text, err)
	}
	if got2, ok := expandMaria(g2); !ok || !sameMaria(got2, ref) {
		t.Fatalf("String %q of %q holds %v, want %v", s, text, got2, ref)
	}
	if s2 := g2.String(); s2 != s {
		t.Fatalf("String not canonical: %q, then %q", s, s2)
	}
	return g
}

func checkMariaMissing(t *testing.T, have, other GTIDSet, haveRef, otherRef mariaRef) {
	t.Helper()
	want := otherRef.minus(haveRef)
	if m := have.Missing(other); m != want.describe() {
		t.Fatalf("%s .Missing(%s) = %q, want %q", have, other, m, want.describe())
	}
	if c := have.Contains(other); c != (len(want) == 0) {
		t.Fatalf("%s .Contains(%s) = %v, missing %v", have, other, c, want)
	}
	if l := Lacks(have, other); l != want.describe() {
		t.Fatalf("Lacks(%s, %s) = %q, want %q", have, other, l, want.describe())
	}
}

func FuzzMariaDBStates(f *testing.F) {
	f.Add([]byte{0, 2, 50, 0, 3, 30}, []byte{0, 2, 50, 0, 3, 31})
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0, 0, 0}, []byte{0x12, 1, 200, 0x21, 2, 3})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ta, ra := mariaFromBytes(a)
		tb, rb := mariaFromBytes(b)
		ga := checkMaria(t, ta, ra)
		gb := checkMaria(t, tb, rb)
		checkMariaMissing(t, ga, gb, ra, rb)
		checkMariaMissing(t, gb, ga, rb, ra)
		checkMariaMissing(t, ga, ga, ra, ra)
	})
}

// ---- raw strings ----

// FuzzParseGTIDs feeds arbitrary text to both parsers: they must not panic, and what
// parses must survive the String round trip: the text of the set parses again, to the
// same set (each contains the other) and to the same text.
func FuzzParseGTIDs(f *testing.F) {
	f.Add(tu1 + ":1-49:51-100")
	f.Add(tu1 + ":1-5:blue:1-2:4-5,\n" + tu2 + ":7")
	f.Add("0-101-50,0-102-30, 1-5-7")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		for _, fl := range []Flavor{MySQL{}, MariaDB{}} {
			g, err := fl.ParseGTIDs(s)
			if err != nil {
				continue
			}
			text := g.String()
			g2, err := fl.ParseGTIDs(text)
			if err != nil {
				t.Fatalf("%s: %q parsed, but its String %q does not: %v", fl.Name(), s, text, err)
			}
			if t2 := g2.String(); t2 != text {
				t.Fatalf("%s: %q: String %q, then %q", fl.Name(), s, text, t2)
			}
			for _, p := range [][2]GTIDSet{{g, g2}, {g2, g}, {g, g}} {
				if m := p[0].Missing(p[1]); m != "" || !p[0].Contains(p[1]) {
					t.Fatalf("%s: %q: round trip %q differs: missing %q", fl.Name(), s, text, m)
				}
			}
		}
	})
}
