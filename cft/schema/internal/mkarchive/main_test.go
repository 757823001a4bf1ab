package main

import (
	"encoding/json"
	"testing"
)

// Documentation goes; a property that happens to be called "description" stays.
func TestSlim(t *testing.T) {
	in := `{"typeName":"AWS::X::Y","description":"doc","handlers":{"create":{"permissions":["x:*"]}},
	"sourceUrl":"u","properties":{"description":{"type":"string","description":"doc"},
	"N":{"type":"integer","examples":[1]}},"required":["description"]}`
	out, typeName, err := slim([]byte(in))
	if err != nil || typeName != "AWS::X::Y" {
		t.Fatalf("slim: %v, %q", err, typeName)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := `{"properties":{"N":{"type":"integer"},"description":{"type":"string"}},"required":["description"],"typeName":"AWS::X::Y"}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	if EntryName("AWS::RDS::DBCluster") != "aws/rds/dbcluster.json" || EntryName("bad") != "" {
		t.Error("EntryName")
	}
}
