package flavor

import (
	"fmt"
	"sort"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// GTIDSet is what a server has executed, in either dialect.
type GTIDSet interface {
	String() string
	// Contains reports whether every transaction in o is also in the receiver.
	Contains(o GTIDSet) bool
	// Missing describes the transactions of o that the receiver lacks ("" if none).
	Missing(o GTIDSet) string
}

// mysqlSet wraps go-mysql's MySQL GTID set (uuid:interval sets).
type mysqlSet struct{ s *gomysql.MysqlGTIDSet }

func parseMySQLSet(s string) (GTIDSet, error) {
	g, err := gomysql.ParseMysqlGTIDSet(strings.ReplaceAll(s, "\n", ""))
	if err != nil {
		return nil, fmt.Errorf("parse MySQL GTID set %q: %w", s, err)
	}
	return mysqlSet{g.(*gomysql.MysqlGTIDSet)}, nil
}

func (m mysqlSet) String() string { return m.s.String() }
func (m mysqlSet) Contains(o GTIDSet) bool {
	om, ok := o.(mysqlSet)
	return ok && m.s.Contain(om.s)
}
func (m mysqlSet) Missing(o GTIDSet) string {
	if m.Contains(o) {
		return ""
	}
	om, ok := o.(mysqlSet)
	if !ok {
		return o.String()
	}
	// Report, per source uuid, the intervals that are not fully covered.
	var out []string
	for u, tags := range *om.s {
		for tag, ivs := range tags {
			part := gomysql.NewMysqlGTIDSet()
			for _, iv := range ivs {
				for _, gno := range []int64{iv.Start, iv.Stop - 1} {
					part.AddGTIDWithTag(u, tag, gno)
				}
			}
			if !m.s.Contain(&part) {
				one := gomysql.MysqlGTIDSet{u: {tag: ivs}}
				out = append(out, one.String())
			}
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
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
		parts = append(parts, fmt.Sprintf("%d-%d-%d", k[0], k[1], m[k]))
	}
	return strings.Join(parts, ",")
}

func (m mariaState) Contains(o GTIDSet) bool { return m.Missing(o) == "" }

func (m mariaState) Missing(o GTIDSet) string {
	om, ok := o.(mariaState)
	if !ok {
		return o.String()
	}
	var out []string
	for _, k := range om.keys() {
		if have, ok := m[k]; !ok || have < om[k] {
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
