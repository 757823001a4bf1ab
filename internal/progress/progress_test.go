package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestPlainLinesHaveNoEscapes(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(1000, 0)}
	v := New(&buf, Options{Now: c.now})
	v.StackStart("net", "create")
	v.Event(Event{Stack: "net", LogicalID: "VPC", Type: "AWS::EC2::VPC", Status: "CREATE_IN_PROGRESS", Time: c.t})
	c.t = c.t.Add(75 * time.Second)
	v.Tick()
	v.Event(Event{Stack: "net", LogicalID: "VPC", Type: "AWS::EC2::VPC", Status: "CREATE_FAILED", Reason: "quota", Time: c.t})
	v.StackDone("net", "ROLLBACK_COMPLETE")
	v.Close()
	out := buf.String()
	if strings.Contains(out, "\x1b") {
		t.Errorf("escape sequences without a terminal:\n%q", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("lines:\n%s", out)
	}
	if !strings.Contains(lines[2], "CREATE_FAILED") || !strings.HasSuffix(lines[2], "quota") {
		t.Errorf("event line %q", lines[2])
	}
	if lines[3] != "net: ROLLBACK_COMPLETE after 1m15s" {
		t.Errorf("done line %q", lines[3])
	}
}

func TestLiveBlockShowsWhatIsInProgress(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(1000, 0)}
	v := New(&buf, Options{Live: true, Color: true, Now: c.now, MaxRows: 1})
	v.StackStart("db", "create")
	v.Event(Event{Stack: "db", LogicalID: "Cluster", Type: "AWS::RDS::DBCluster", Status: "CREATE_IN_PROGRESS"})
	v.Event(Event{Stack: "db", LogicalID: "Key", Type: "AWS::KMS::Key", Status: "CREATE_IN_PROGRESS"})
	c.t = c.t.Add(3 * time.Minute)
	buf.Reset()
	v.Tick()
	out := buf.String()
	for _, want := range []string{"\x1b[3A\x1b[J", "db: 3m0s elapsed", "Cluster", "3m0s", "and 1 more in progress"} {
		if !strings.Contains(out, want) {
			t.Errorf("live block lacks %q:\n%q", want, out)
		}
	}
	buf.Reset()
	v.Event(Event{Stack: "db", LogicalID: "Cluster", Type: "AWS::RDS::DBCluster", Status: "CREATE_COMPLETE"})
	if out := buf.String(); !strings.Contains(out, "\x1b[32mCREATE_COMPLETE") || strings.Contains(out, "more in progress") {
		t.Errorf("after completion:\n%q", out)
	}
	buf.Reset()
	v.StackDone("db", "CREATE_COMPLETE")
	v.Close()
	if strings.Contains(buf.String(), "elapsed") {
		t.Errorf("block drawn after the stack finished:\n%q", buf.String())
	}
}
