// Package userdata renders the bastion's user-data script from an embedded bash template.
//
// The script is rendered in one of two forms from the same template:
//   - Script: every value literal — what the instance runs, and what the tests give to bash -n
//     and shellcheck;
//   - SubBody: the body of an Fn::Sub, values given as ${Name} references to parameters,
//     resources or pseudo parameters, and every other "${" of the shell escaped as "${!" so that
//     CloudFormation gives it back unchanged. Substituting the references with values yields
//     exactly what Script renders for those values.
package userdata

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"text/template"
)

//go:embed bastion.sh.tmpl
var bastionTemplate string

//go:embed history.sh
var historyProfile string

//go:embed psqlrc
var psqlrc string

//go:embed banner.txt
var defaultBanner string

// PsqlPackages are the Amazon Linux 2023 packages of the PostgreSQL client, newest first: the
// bootstrap installs the first the repositories carry. The newest client talks to every server
// version Aurora offers.
var PsqlPackages = []string{"postgresql17", "postgresql16", "postgresql15"}

// HistoryLog is where rsyslog writes the shell history that history.sh sends to syslog.
const HistoryLog = "/var/log/bastion/bastion.log"

var tmpl = template.Must(template.New("bastion.sh").Option("missingkey=error").Parse(bastionTemplate))

// Bastion holds the values the script needs. In Script they are literal values; in SubBody each
// is the name a ${...} refers to (a parameter, "Res.Attr", a pseudo parameter or a Sub variable).
type Bastion struct {
	StackName       string // AWS::StackName: cfn-signal, metric namespace
	Region          string // AWS::Region
	SignalResource  string // the logical id of the Auto Scaling group that waits for the signal
	LogGroup        string // the CloudWatch Logs group the agent ships to
	EIPAllocationID string // the Elastic IP's allocation id
	EnableBanner    string // "true" or "false"
	BannerLocation  string // "default" or s3://bucket/key
	// The sshd_config lines of the forwarding switches (SSHDLine). Whole lines rather than yes/no:
	// a YAML 1.1 reader, as CloudFormation's, takes a bare yes or no for a boolean.
	TCPForwardingLine   string
	X11ForwardingLine   string
	EnableX11Forwarding string // "true" or "false": xauth is installed for X11 forwarding
	AltInitScript       string // "" or an http(s) URL of a script to run last
}

// fields lists the string fields of Bastion in order.
func (b Bastion) fields() []reflect.StructField {
	t := reflect.TypeOf(b)
	out := make([]reflect.StructField, t.NumField())
	for i := range out {
		out[i] = t.Field(i)
	}
	return out
}

// Script renders the script with literal values. Values go into single-quoted shell strings and
// quoted here-documents, so none may hold a quote or a line break.
func Script(v Bastion) (string, error) {
	rv := reflect.ValueOf(v)
	for i, f := range v.fields() {
		s := rv.Field(i).String()
		if strings.ContainsAny(s, "'\n\r") {
			return "", fmt.Errorf("user data value %s %q: quotes and line breaks are not allowed", f.Name, s)
		}
	}
	return render(v)
}

// SubBody renders the Fn::Sub body. refs names, for each field, what its ${...} refers to.
func SubBody(refs Bastion) (string, error) {
	// Render with unique tokens, escape the shell's own "${", then put the references in.
	tokens := Bastion{}
	tv := reflect.ValueOf(&tokens).Elem()
	rv := reflect.ValueOf(refs)
	var pairs []string
	for i, f := range refs.fields() {
		ref := rv.Field(i).String()
		if ref == "" || strings.ContainsAny(ref, "${}!' \n") {
			return "", fmt.Errorf("user data reference for %s: %q is not a Sub name", f.Name, ref)
		}
		tok := fmt.Sprintf("@@APGSTACK_%s@@", strings.ToUpper(f.Name))
		tv.Field(i).SetString(tok)
		pairs = append(pairs, tok, "${"+ref+"}")
	}
	out, err := render(tokens)
	if err != nil {
		return "", err
	}
	if err := checkNoNestedExpansion(out); err != nil {
		return "", err
	}
	out = strings.ReplaceAll(out, "${", "${!")
	return strings.NewReplacer(pairs...).Replace(out), nil
}

// checkNoNestedExpansion refuses "${a[${i}]}": Fn::Sub ends a literal at the first "}", so a
// nested expansion would not come back intact.
func checkNoNestedExpansion(s string) error {
	for rest := s; ; {
		i := strings.Index(rest, "${")
		if i < 0 {
			return nil
		}
		rest = rest[i+2:]
		end := strings.Index(rest, "}")
		if end < 0 {
			return fmt.Errorf("user data: unterminated ${ near %q", head(rest))
		}
		if strings.Contains(rest[:end], "${") {
			return fmt.Errorf("user data: nested ${...} near %q cannot pass through Fn::Sub", head(rest))
		}
	}
}

func head(s string) string {
	if len(s) > 40 {
		return s[:40]
	}
	return s
}

func render(v Bastion) (string, error) {
	agent, err := AgentConfig(v.LogGroup, MetricNamespace(v.StackName))
	if err != nil {
		return "", err
	}
	data := map[string]string{
		"PsqlPackages":   strings.Join(PsqlPackages, " "),
		"HistoryProfile": strings.TrimRight(historyProfile, "\n"),
		"Psqlrc":         strings.TrimRight(psqlrc, "\n"),
		"DefaultBanner":  strings.TrimRight(defaultBanner, "\n"),
		"AgentConfig":    agent,
	}
	rv := reflect.ValueOf(v)
	for i, f := range v.fields() {
		data[f.Name] = rv.Field(i).String()
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return "", fmt.Errorf("render bastion user data: %w", err)
	}
	return buf.String(), nil
}

// SSHDLine is the sshd_config line that switches keyword on or off.
func SSHDLine(keyword string, on bool) string {
	if on {
		return keyword + " yes"
	}
	return keyword + " no"
}

// MetricNamespace is the namespace of the original SSHCommandCount metric, which the agent's
// metrics share so that one dashboard shows both.
func MetricNamespace(stackName string) string { return "AWSQuickStart/" + stackName }

// LogFiles are the files the CloudWatch agent ships, with their stream suffixes.
var LogFiles = []struct{ Path, Stream string }{
	{"/var/log/audit/audit.log", "audit.log"},
	{"/var/log/secure", "secure"},
	{HistoryLog, "bastion.log"},
	{"/var/log/apgstack-bastion-bootstrap.log", "bootstrap.log"},
}

// AgentConfig is the CloudWatch agent's configuration: the log files above into the log group,
// memory and root-disk use into the namespace.
func AgentConfig(logGroup, namespace string) (string, error) {
	type file struct {
		FilePath      string `json:"file_path"`
		LogGroupName  string `json:"log_group_name"`
		LogStreamName string `json:"log_stream_name"`
	}
	files := make([]file, len(LogFiles))
	for i, f := range LogFiles {
		files[i] = file{f.Path, logGroup, "{instance_id}/" + f.Stream}
	}
	cfg := map[string]any{
		// root: audit.log and secure are readable by root only.
		"agent": map[string]any{"run_as_user": "root", "metrics_collection_interval": 60},
		"logs":  map[string]any{"logs_collected": map[string]any{"files": map[string]any{"collect_list": files}}},
		"metrics": map[string]any{
			"namespace":         namespace,
			"append_dimensions": map[string]string{"InstanceId": "${aws:InstanceId}"},
			"metrics_collected": map[string]any{
				"mem":  map[string]any{"measurement": []string{"mem_used_percent"}},
				"disk": map[string]any{"measurement": []string{"used_percent"}, "resources": []string{"/"}, "drop_device": true},
			},
		},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", fmt.Errorf("cloudwatch agent configuration: %w", err)
	}
	return string(b), nil
}
