package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/apgstack/apgstack/internal/aws/stacks"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Endpoint is how to reach the cluster from outside the VPC: an SSH tunnel through the bastion
// to the cluster (writer) or reader endpoint.
type Endpoint struct {
	Host      string   `json:"host"`
	Port      string   `json:"port"`
	User      string   `json:"user"`
	DBName    string   `json:"dbName"`
	SecretArn string   `json:"secretArn"`
	SSH       []string `json:"ssh"` // the bastion's SSHCommand, as words
}

// EndpointFrom reads the endpoint from the stacks' outputs.
func EndpointFrom(list []StackStatus, reader bool) (Endpoint, error) {
	out := map[string]string{}
	for _, st := range list {
		for _, o := range st.Outputs {
			out[o.Key] = o.Value
		}
	}
	hostKey := stacks.OutputClusterEndpoint
	if reader {
		hostKey = stacks.OutputReaderEndpoint
	}
	var missing []string
	for _, k := range []string{hostKey, stacks.OutputPort, stacks.OutputDBUsername, stacks.OutputDBName, stacks.OutputSSHCommand} {
		if out[k] == "" {
			missing = append(missing, k)
		}
	}
	s := Summarize(list, "")
	if s.SecretArn == "" {
		missing = append(missing, stacks.OutputSecretArn)
	}
	if len(missing) > 0 {
		return Endpoint{}, fmt.Errorf("the stacks have no output %s: are the bastion and database stacks deployed? (apgstack status --target aws)", strings.Join(missing, ", "))
	}
	ssh, err := SplitCommand(out[stacks.OutputSSHCommand])
	if err != nil || len(ssh) < 2 {
		return Endpoint{}, fmt.Errorf("bastion output SSHCommand %q is not a command line: %v", out[stacks.OutputSSHCommand], err)
	}
	return Endpoint{Host: out[hostKey], Port: out[stacks.OutputPort], User: out[stacks.OutputDBUsername], DBName: out[stacks.OutputDBName], SecretArn: s.SecretArn, SSH: ssh}, nil
}

// SplitCommand splits a command line into words: blanks separate them, single and double
// quotes group them, a backslash escapes the next character (outside single quotes).
func SplitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 || escaped {
		return nil, errors.New("unterminated quote or escape")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// MasterCredentials reads the user name and password from the master secret (the JSON that
// Secrets Manager's generated secrets and rotation functions keep).
func (d *Deployer) MasterCredentials(ctx context.Context, secretArn string) (user, password string, err error) {
	out, err := d.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretArn)})
	if err != nil {
		return "", "", fmt.Errorf("read the master secret %s: %w", secretArn, err)
	}
	var v struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	// The secret's text never goes into an error: only whether it parsed.
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v); err != nil || v.Password == "" {
		return "", "", fmt.Errorf("the master secret %s does not hold JSON with a password", secretArn)
	}
	return v.Username, v.Password, nil
}
