package flavor

import (
	"fmt"
	"sort"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// GTIDSet is what a server has executed, in either dialect.
//
// For every pair of sets a, b: a.Contains(b) == (a.Missing(b) == ""). Callers deciding
// whether one set is contained in another should use Lacks, which also handles nil sets.
type GTIDSet interface {
	// String is the set in its dialect's canonical text form; parsing it gives the set back.
	String() string
	// Contains reports whether every transaction in o is also in the receiver. It is true
	// exactly when Missing(o) is "".
	Contains(o GTIDSet) bool
	// Missing describes the transactions of o that the receiver lacks, "" if and only if
	// there are none (then Contains(o) is true). For MySQL it is exactly those transactions,
	// as a canonical GTID set (uuids, tags and intervals sorted); for MariaDB it names, per
	// (domain, server_id) on which the receiver is behind, o's last GTID. A non-empty set
	// of the other dialect is missing as a whole. A nil o is empty.
	Missing(o GTIDSet) string
}

// Lacks describes the transactions of want that have lacks: "" when there are none. It is
// the one function every "is want contained in have" decision should use (errant
// transactions, candidate completeness, rejoin checks...): a nil want lacks nothing, and a
// nil have lacks all of want. Otherwise it is have.Missing(want), so it is "" exactly when
// have.Contains(want).
func Lacks(have, want GTIDSet) string {
	if want == nil {
		return ""
	}
	if have == nil {
		return want.String()
	}
	return have.Missing(want)
}

// mysqlSet wraps go-mysql's MySQL GTID set (uuid[:tag]:interval sets). A nil s is empty.
type mysqlSet struct{ s *gomysql.MysqlGTIDSet }

func parseMySQLSet(s string) (GTIDSet, error) {
	g, err := gomysql.ParseMysqlGTIDSet(strings.ReplaceAll(s, "\n", ""))
	if err != nil {
		return nil, fmt.Errorf("parse MySQL GTID set %q: %w", s, err)
	}
	return mysqlSet{g.(*gomysql.MysqlGTIDSet)}, nil
}

func (m mysqlSet) String() string {
	if m.s == nil {
		return ""
	}
	return m.s.String()
}

func (m mysqlSet) Contains(o GTIDSet) bool { return m.Missing(o) == "" }

// Missing subtracts the receiver from o, per uuid and tag, over go-mysql's sorted
// half-open intervals (go-mysql v1.16 has no set difference), and returns the canonical
// text of what remains.
func (m mysqlSet) Missing(o GTIDSet) string {
	if o == nil {
		return ""
	}
	om, ok := o.(mysqlSet)
	if !ok {
		return o.String() // another dialect: none of it is contained, if any
	}
	if om.s == nil {
		return ""
	}
	var have gomysql.MysqlGTIDSet
	if m.s != nil {
		have = *m.s
	}
	diff := gomysql.NewMysqlGTIDSet()
	for u, tags := range *om.s {
		for tag, ivs := range tags {
			rest := subtractIntervals(normalized(ivs), normalized(have[u][tag]))
			if len(rest) == 0 {
				continue
			}
			if diff[u] == nil {
				diff[u] = map[gomysql.Tag]gomysql.IntervalSlice{}
			}
			diff[u][tag] = rest
		}
	}
	return diff.String()
}

// normalized returns the non-empty intervals of s sorted and merged, without touching s
// (go-mysql's Normalize sorts its receiver in place).
func normalized(s gomysql.IntervalSlice) gomysql.IntervalSlice {
	c := make(gomysql.IntervalSlice, 0, len(s))
	for _, iv := range s {
		if iv.Start < iv.Stop {
			c = append(c, iv)
		}
	}
	return c.Normalize()
}

// subtractIntervals returns a \ b. Both must be sorted, disjoint half-open intervals; so
// is the result.
func subtractIntervals(a, b gomysql.IntervalSlice) gomysql.IntervalSlice {
	var out gomysql.IntervalSlice
	j := 0
	for _, x := range a {
		cur := x.Start // [cur, x.Stop) is what is left of x to examine
		for j < len(b) && b[j].Stop <= cur {
			j++ // b[j] lies wholly before x and every later interval of a
		}
		for k := j; k < len(b) && b[k].Start < x.Stop && cur < x.Stop; k++ {
			if b[k].Start > cur {
				out = append(out, gomysql.Interval{Start: cur, Stop: b[k].Start})
			}
			cur = max(cur, b[k].Stop)
		}
		if cur < x.Stop {
			out = append(out, gomysql.Interval{Start: cur, Stop: x.Stop})
		}
	}
	return out
}

// mariaState is MariaDB's gtid_binlog_state: the last sequence number logged for every
// (domain, server_id) pair. go-mysql parses each GTID; its MariadbGTIDSet keeps only one
// GTID per domain, which would hide a divergent transaction with another server_id.
type mariaState map[[2]uint32]uint64

func parseMariaState(s string) (GTIDSet, error) {
	st := mariaState{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		g, err := gomysql.ParseMariadbGTID(part)
		if err != nil {
			return nil, fmt.Errorf("parse MariaDB GTID %q: %w", part, err)
		}
		k := [2]uint32{g.DomainID, g.ServerID}
		if g.SequenceNumber > st[k] {
			st[k] = g.SequenceNumber
		}
	}
	return st, nil
}

func (m mariaState) keys() [][2]uint32 {
	ks := make([][2]uint32, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if ks[i][0] != ks[j][0] {
			return ks[i][0] < ks[j][0]
		}
		return ks[i][1] < ks[j][1]
	})
	return ks
}

func (m mariaState) String() string {
	var parts []string
	for _, k := range m.keys() {
		if m[k] != 0 { // names no transaction, and would not parse back
			parts = append(parts, fmt.Sprintf("%d-%d-%d", k[0], k[1], m[k]))
		}
	}
	return strings.Join(parts, ",")
}

func (m mariaState) Contains(o GTIDSet) bool { return m.Missing(o) == "" }

// Missing lists, per (domain, server_id), o's last GTID where the receiver's is lower or
// absent: a state stands for every sequence number up to the last one of each pair, so
// the receiver lacks the transactions after its own last one. A sequence number of 0
// names no transaction.
func (m mariaState) Missing(o GTIDSet) string {
	if o == nil {
		return ""
	}
	om, ok := o.(mariaState)
	if !ok {
		return o.String() // another dialect: none of it is contained, if any
	}
	var out []string
	for _, k := range om.keys() {
		if m[k] < om[k] {
			out = append(out, fmt.Sprintf("%d-%d-%d", k[0], k[1], om[k]))
		}
	}
	return strings.Join(out, ",")
}

// mariaPos turns a binlog state into a position for MASTER_GTID_WAIT: per domain, the
// GTID with the highest sequence number (strict mode keeps them monotonic per domain).
func mariaPos(state string) string {
	st, err := parseMariaState(state)
	if err != nil {
		return state
	}
	best := map[uint32][2]uint64{}
	for k, seq := range st.(mariaState) {
		if b, ok := best[k[0]]; !ok || seq > b[1] {
			best[k[0]] = [2]uint64{uint64(k[1]), seq}
		}
	}
	doms := make([]uint32, 0, len(best))
	for d := range best {
		doms = append(doms, d)
	}
	sort.Slice(doms, func(i, j int) bool { return doms[i] < doms[j] })
	var parts []string
	for _, d := range doms {
		parts = append(parts, fmt.Sprintf("%d-%d-%d", d, best[d][0], best[d][1]))
	}
	return strings.Join(parts, ",")
}

// MissingOwn describes the transactions of other that were logged with serverID (the node
// was their origin) and that have lacks. A replica skips events that carry its own server
// ID, so replication never brings these back: a crashed primary whose recovery truncated
// transactions a replica had already received stays without them. MariaDB states only;
// "" otherwise.
func MissingOwn(have, other GTIDSet, serverID uint32) string {
	h, ok1 := have.(mariaState)
	o, ok2 := other.(mariaState)
	if !ok1 || !ok2 {
		return ""
	}
	var out []string
	for _, k := range o.keys() {
		if k[1] == serverID && h[k] < o[k] {
			out = append(out, fmt.Sprintf("%d-%d-%d", k[0], k[1], o[k]))
		}
	}
	return strings.Join(out, ",")
}

// Union is every transaction of a and of b (what a replica holds: what it executed and
// what it received but has not applied yet). A nil side is empty; sets of two flavours
// cannot be joined, and the result is then a alone.
func Union(a, b GTIDSet) GTIDSet {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	switch x := a.(type) {
	case mariaState:
		y, ok := b.(mariaState)
		if !ok {
			return a
		}
		out := mariaState{}
		for k, v := range x {
			out[k] = v
		}
		for k, v := range y {
			out[k] = max(out[k], v)
		}
		return out
	case mysqlSet:
		if _, ok := b.(mysqlSet); !ok {
			return a
		}
		u, err := parseMySQLSet(strings.Trim(x.String()+","+b.String(), ","))
		if err != nil {
			return a
		}
		return u
	}
	return a
}
