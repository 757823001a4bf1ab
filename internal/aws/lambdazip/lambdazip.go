// Package lambdazip builds the bootstrap Lambda's deployment package reproducibly: the same
// source and Go toolchain give the same zip, byte for byte. The zip is named after its SHA-256, so
// the database stack's LambdaBootStrapS3Key names exactly the code `apgstack package` produced.
package lambdazip

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/apgstack/apgstack/internal/atomicfile"
)

// Package is the Go package of the Lambda.
const Package = "github.com/apgstack/apgstack/cmd/bootstrap-lambda"

// module is the module that holds Package.
const module = "github.com/apgstack/apgstack"

// EntryName is the file provided.al2023 runs.
const EntryName = "bootstrap"

// modTime is the fixed modification time in the zip (a timestamp would differ on every build).
var modTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// FileName is the zip's content-addressed file name: bootstrap-lambda-<first 12 hex of sum>.zip.
func FileName(sum string) string {
	if len(sum) > 12 {
		sum = sum[:12]
	}
	return "bootstrap-lambda-" + sum + ".zip"
}

// KeyFor is the S3 key the zip is uploaded under and LambdaBootStrapS3Key points at.
func KeyFor(sum string) string { return "apgstack/" + FileName(sum) }

// Result is a built package.
type Result struct {
	Path   string `json:"path"`   // the zip on disk
	SHA256 string `json:"sha256"` // hex SHA-256 of the zip
	Key    string `json:"key"`    // KeyFor(SHA256)
}

// Build compiles the Lambda for linux/arm64 from the module at moduleDir and writes the zip into
// outDir. With moduleDir empty it finds the source (sources.go): a checkout at or above the
// working directory, else the zip a release build embeds, else the module's own source at the
// version this binary was built from, with the Go toolchain.
func Build(ctx context.Context, moduleDir, outDir string) (Result, error) {
	if moduleDir == "" {
		return buildFromAnySource(ctx, outDir)
	}
	return buildModule(ctx, moduleDir, outDir)
}

// buildModule compiles the Lambda from the module source at moduleDir.
func buildModule(ctx context.Context, moduleDir, outDir string) (Result, error) {
	tmp, err := os.MkdirTemp("", "apgstack-lambdazip-*")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, EntryName)
	// Flags that make the binary depend on the source and toolchain only: no paths, no VCS
	// stamp, no build ID, no C toolchain.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid=", "-o", bin, Package)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "GOFLAGS=-mod=readonly")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return Result{}, fmt.Errorf("go build %s for linux/arm64: %w\n%s", Package, err, strings.TrimSpace(out.String()))
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return Result{}, err
	}
	data, err := Zip(exe)
	if err != nil {
		return Result{}, err
	}
	return writeZip(data, outDir)
}

// writeZip writes a zip under its content-addressed name in outDir.
func writeZip(data []byte, outDir string) (Result, error) {
	sum := sha256.Sum256(data)
	res := Result{SHA256: hex.EncodeToString(sum[:])}
	res.Key = KeyFor(res.SHA256)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Result{}, fmt.Errorf("create output directory: %w", err)
	}
	res.Path = filepath.Join(outDir, FileName(res.SHA256))
	if err := writeAtomic(res.Path, data); err != nil {
		return Result{}, err
	}
	return res, nil
}

// Zip wraps the executable as the single entry "bootstrap", mode 0755, with a fixed time.
func Zip(exe []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: EntryName, Method: zip.Deflate, Modified: modTime}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(exe); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data, atomicfile.Mode(0o644)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// FindModule finds the apgstack source checkout at or above dir: go build needs the source.
func FindModule(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		f, err := os.Open(filepath.Join(d, "go.mod"))
		if err == nil {
			head, _ := io.ReadAll(io.LimitReader(f, 4096))
			f.Close()
			for _, line := range strings.Split(string(head), "\n") {
				if strings.TrimSpace(line) == "module "+module {
					return d, nil
				}
			}
		}
		if d == filepath.Dir(d) {
			return "", errors.New("apgstack package builds the Lambda from source: run it inside a checkout of " + module +
				" (no go.mod of that module in " + abs + " or above)")
		}
	}
}
