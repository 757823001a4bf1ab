package apgstack

import (
	"errors"
	"strings"
	"testing"
)

// Every structural problem of a file at once, each with its field path, line and what was meant.
func TestConfigurationErrorsNameFieldLineAndSuggestion(t *testing.T) {
	data := "database:\n  prot: 5\n  port: \"abc\"\n  logsRetentionInDays: 5555.5\nbastion:\n  enableBanner: maybe\ntarget:\n  local:\n    alarmThresholds:\n      CPUUtilization: high\n"
	cfg := Default()
	err := Parse([]byte(data), &cfg)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) != 5 {
		t.Fatalf("Parse = %v, want 5 field errors", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"database.prot (line 2)", "did you mean database.port?",
		"database.port (line 3)", `"abc"`, "a whole number",
		"database.logsRetentionInDays (line 4)", `"5555.5"`,
		"bastion.enableBanner (line 6)", "true or false",
		"target.local.alarmThresholds.CPUUtilization (line 10)", "a number",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "apgstack.Database") || strings.Contains(msg, "unmarshal") {
		t.Errorf("the message names Go internals:\n%s", msg)
	}
	if err := cfg.Set("database.prot", "6000"); err == nil || !strings.Contains(err.Error(), "did you mean database.port?") || strings.Contains(err.Error(), "bastion.banner") {
		t.Errorf("Set of a misspelt field: %v", err)
	}
	if err := Parse([]byte("database:\n  port: 6000\n"), &cfg); err != nil || cfg.Database.Port != 6000 {
		t.Errorf("a good file: %v, port %d", err, cfg.Database.Port)
	}
}

// A value over AWS's tag value limit is refused with the limit named, and is not printed whole.
func TestTagValuesFitAWS(t *testing.T) {
	cfg := Default()
	cfg.Environment.Application = strings.Repeat("a", 2<<20)
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "environment.application") || !strings.Contains(err.Error(), "256 characters at most") {
		t.Fatalf("Validate = %v", err)
	}
	if len(err.Error()) > 2000 {
		t.Errorf("the error prints the whole value (%d bytes)", len(err.Error()))
	}
}
