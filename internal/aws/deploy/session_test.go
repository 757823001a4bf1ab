package deploy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// isolate removes every source of AWS credentials and configuration from the environment, and
// turns the instance metadata service off so that nothing can wait on it.
func isolate(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func TestNoCredentialsNamesWhatIsMissing(t *testing.T) {
	isolate(t)
	_, err := Load(context.Background(), Options{Region: "eu-west-1"})
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want AuthError", err)
	}
	for _, want := range []string{"no AWS credentials found", "AWS_ACCESS_KEY_ID", "--profile", "aws sso login"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
}

func TestNoRegionNamesWhereToSetIt(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake")
	_, err := Load(context.Background(), Options{})
	if !errors.Is(err, ErrNoRegion) || !strings.Contains(err.Error(), "target.aws.region") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnknownProfileIsNamed(t *testing.T) {
	isolate(t)
	_, err := Load(context.Background(), Options{Region: "eu-west-1", Profile: "nosuch"})
	var ae *AuthError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), `AWS profile "nosuch"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestProfileFromSharedFiles(t *testing.T) {
	isolate(t)
	cfgFile := os.Getenv("AWS_CONFIG_FILE")
	if err := os.WriteFile(cfgFile, []byte("[profile team]\nregion = eu-central-1\naws_access_key_id = AKIDFAKE\naws_secret_access_key = fake\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(context.Background(), Options{Profile: "team"})
	if err != nil || cfg.Region != "eu-central-1" {
		t.Fatalf("cfg region %q, err %v", cfg.Region, err)
	}
	// A flag's Region wins over the profile's.
	cfg, err = Load(context.Background(), Options{Profile: "team", Region: "us-east-2"})
	if err != nil || cfg.Region != "us-east-2" {
		t.Fatalf("cfg region %q, err %v", cfg.Region, err)
	}
}
