package lambdazip

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
)

// Where the Lambda's code comes from when no module directory is given. A user who installed
// apgstack without a checkout (`go install`, a release binary) still gets the zip:
//  1. a checkout of the module at or above the working directory (a developer's tree);
//  2. the zip embedded in a release build (built with the apgstack_release tag, see
//     .goreleaser.yaml and mkrelease);
//  3. the module's own source at the version this binary was built from, fetched into the Go
//     module cache and compiled with the Go toolchain (`go install ...@version` users have both).

// ErrNoSource says that none of the sources is available; its text says what to do.
var ErrNoSource = errors.New("the bootstrap Lambda's zip cannot be built here")

func buildFromAnySource(ctx context.Context, outDir string) (Result, error) {
	dir, checkoutErr := FindModule(".")
	if checkoutErr == nil {
		return buildModule(ctx, dir, outDir)
	}
	if data := embeddedZip(); len(data) > 0 {
		return writeZip(data, outDir)
	}
	version, why := buildVersion(debug.ReadBuildInfo())
	if version != "" {
		if _, err := exec.LookPath("go"); err != nil {
			why = "no Go toolchain (go) on the PATH to build version " + version + " from its source"
		} else {
			dir, err := moduleSource(ctx, version)
			if err != nil {
				return Result{}, err
			}
			return buildModule(ctx, dir, outDir)
		}
	}
	return Result{}, fmt.Errorf("%w: no checkout of %s at or above the working directory, this binary embeds no zip (release builds do), and %s. "+
		"Do one of: run apgstack inside a checkout (`git clone https://%s && cd apgstack`); install a release binary; "+
		"or install Go (https://go.dev/dl) and apgstack with `go install %s/cmd/apgstack@latest`",
		ErrNoSource, module, why, module, module)
}

// buildVersion is the module version this binary was built from, or why there is none.
func buildVersion(info *debug.BuildInfo, ok bool) (version, why string) {
	switch {
	case !ok || info == nil:
		return "", "this binary carries no build information"
	case info.Main.Path != module:
		return "", "this binary was not built from the " + module + " module"
	case info.Main.Version == "" || info.Main.Version == "(devel)":
		return "", "this binary was built from a checkout that is not here"
	case strings.HasSuffix(info.Main.Version, "+dirty"):
		return "", "this binary was built from a modified checkout (" + info.Main.Version + ") that is not here"
	}
	return info.Main.Version, ""
}

// moduleSource fetches the module at version into the module cache and returns its directory.
func moduleSource(ctx context.Context, version string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module+"@"+version)
	// Outside any module, so the working directory's go.mod (if any) plays no part.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	var m struct{ Dir, Error string }
	_ = json.Unmarshal(out.Bytes(), &m)
	if err != nil || m.Dir == "" {
		msg := strings.TrimSpace(m.Error + " " + stderr.String())
		return "", fmt.Errorf("%w: fetch the source of %s@%s: %v %s (check the network or GOPROXY, or run apgstack inside a checkout)", ErrNoSource, module, version, err, msg)
	}
	return m.Dir, nil
}
