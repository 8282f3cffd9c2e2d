package flavor

import "testing"

const (
	tu1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	tu2 = "4e11fa47-71ca-11e1-9e33-c80aa9429563"
)

func mustMySQL(t *testing.T, s string) GTIDSet {
	t.Helper()
	g, err := MySQL{}.ParseGTIDs(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func mustMaria(t *testing.T, s string) GTIDSet {
	t.Helper()
	g, err := MariaDB{}.ParseGTIDs(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// Issue 23 item 4: a transaction missing inside a range (a gap) must be reported, not
// only transactions beyond an interval's endpoints.
func TestMySQLMissingGap(t *testing.T) {
	cases := []struct{ have, other, missing string }{
		// The gap: transaction 50 is missing inside 1-100.
		{tu1 + ":1-49:51-100", tu1 + ":1-100", tu1 + ":50"},
		// Several gaps and a tail.
		{tu1 + ":1-9:12-19:21-30", tu1 + ":1-35", tu1 + ":10-11:20:31-35"},
		// A gap in one uuid, another uuid complete.
		{tu1 + ":1-10," + tu2 + ":1-4:6-9", tu1 + ":1-10," + tu2 + ":1-9", tu2 + ":5"},
		// Tagged GTIDs (MySQL 8.4): a gap in a tagged range, and a tag the receiver lacks.
		{tu1 + ":1-5:blue:1-2:4-5", tu1 + ":1-5:blue:1-5", tu1 + ":blue:3"},
		{tu1 + ":1-5", tu1 + ":1-5:blue:1-5", tu1 + ":blue:1-5"},
		{tu1 + ":blue:1-5", tu1 + ":1-5:blue:1-5", tu1 + ":1-5"},
		// Exactly the missing transactions, not the whole interval that contains them.
		{tu1 + ":1-90", tu1 + ":1-101", tu1 + ":91-101"},
		// Nothing missing.
		{tu1 + ":1-100", tu1 + ":1-49:51-100", ""},
		{tu1 + ":1-100:blue:1-3", tu1 + ":blue:2", ""},
		{tu1 + ":1-100", "", ""},
		{"", "", ""},
		{"", tu1 + ":7", tu1 + ":7"},
	}
	for _, c := range cases {
		have, other := mustMySQL(t, c.have), mustMySQL(t, c.other)
		if got := have.Missing(other); got != c.missing {
			t.Errorf("have %q, other %q: Missing = %q, want %q", c.have, c.other, got, c.missing)
		}
		if got := have.Contains(other); got != (c.missing == "") {
			t.Errorf("have %q, other %q: Contains = %v, want %v", c.have, c.other, got, c.missing == "")
		}
	}
}

func TestMariaDBMissingAgreesWithContains(t *testing.T) {
	cases := []struct{ have, other, missing string }{
		{"0-101-50,0-102-30", "0-101-45", ""},
		{"0-101-50", "0-101-50,0-102-1", "0-102-1"},
		{"0-101-50,1-101-3", "0-101-51,1-101-4,2-9-1", "0-101-51,1-101-4,2-9-1"},
		{"", "0-101-0", ""}, // sequence number 0 names no transaction
		{"", "", ""},
		{"0-101-7", "", ""},
	}
	for _, c := range cases {
		have, other := mustMaria(t, c.have), mustMaria(t, c.other)
		if got := have.Missing(other); got != c.missing {
			t.Errorf("have %q, other %q: Missing = %q, want %q", c.have, c.other, got, c.missing)
		}
		if got := have.Contains(other); got != (c.missing == "") {
			t.Errorf("have %q, other %q: Contains = %v, want %v", c.have, c.other, got, c.missing == "")
		}
	}
	// A state with an explicit 0 (not produced by parsing) still agrees with itself.
	z := mariaState{{0, 1}: 0, {0, 2}: 5}
	if s := z.String(); s != "0-2-5" {
		t.Errorf("String = %q", s)
	}
	if m := (mariaState{}).Missing(z); m != "0-2-5" || (mariaState{}).Contains(z) {
		t.Errorf("Missing = %q", m)
	}
}

func TestLacks(t *testing.T) {
	my := mustMySQL(t, tu1+":1-49:51-100")
	all := mustMySQL(t, tu1+":1-100")
	maria := mustMaria(t, "0-1-5")
	cases := []struct {
		name       string
		have, want GTIDSet
		lacks      string
	}{
		{"gap", my, all, tu1 + ":50"},
		{"contained", all, my, ""},
		{"nil want", my, nil, ""},
		{"nil both", nil, nil, ""},
		{"nil have", nil, my, my.String()},
		{"nil have, empty want", nil, mustMySQL(t, ""), ""},
		{"zero mysqlSet have", mysqlSet{}, all, all.String()},
		{"zero mysqlSet want", all, mysqlSet{}, ""},
		{"nil mariaState have", mariaState(nil), maria, "0-1-5"},
		{"other dialect", my, maria, "0-1-5"},
		{"other dialect, reverse", maria, my, my.String()},
		{"other dialect, empty", maria, mustMySQL(t, ""), ""},
		{"other dialect, empty, reverse", my, mustMaria(t, ""), ""},
	}
	for _, c := range cases {
		if got := Lacks(c.have, c.want); got != c.lacks {
			t.Errorf("%s: Lacks = %q, want %q", c.name, got, c.lacks)
		}
		if c.have != nil && c.have.Contains(c.want) != (c.lacks == "") {
			t.Errorf("%s: Contains disagrees with Missing", c.name)
		}
	}
}

func TestUnion(t *testing.T) {
	m := func(s string) GTIDSet {
		g, err := MariaDB{}.ParseGTIDs(s)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	y := func(s string) GTIDSet {
		g, err := MySQL{}.ParseGTIDs(s)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	u := "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	cases := []struct {
		a, b GTIDSet
		want string
	}{
		{m("0-1-10,0-2-5"), m("0-1-12,1-3-4"), "0-1-12,0-2-5,1-3-4"},
		{m("0-1-10"), nil, "0-1-10"},
		{nil, m("0-1-10"), "0-1-10"},
		{y(u + ":1-10"), y(u + ":12-20"), u + ":1-10:12-20"},
		{y(u + ":1-10"), y(u + ":5-20"), u + ":1-20"},
		{y(u + ":1-10"), y(""), u + ":1-10"},
	}
	for _, c := range cases {
		got := Union(c.a, c.b)
		if got.String() != c.want {
			t.Errorf("Union(%v, %v) = %s, want %s", c.a, c.b, got, c.want)
		}
		for _, part := range []GTIDSet{c.a, c.b} {
			if part != nil && Lacks(got, part) != "" {
				t.Errorf("Union(%v, %v) lacks %s of %v", c.a, c.b, Lacks(got, part), part)
			}
		}
	}
}
