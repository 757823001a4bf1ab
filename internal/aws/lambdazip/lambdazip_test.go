package lambdazip_test

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/apgstack/apgstack/internal/aws/lambdazip"
)

func TestBuildReproducible(t *testing.T) {
	ctx := context.Background()
	mod, err := lambdazip.FindModule(".")
	if err != nil {
		t.Fatal(err)
	}
	a, err := lambdazip.Build(ctx, mod, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := lambdazip.Build(ctx, mod, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	za, _ := os.ReadFile(a.Path)
	zb, _ := os.ReadFile(b.Path)
	if !bytes.Equal(za, zb) || a.SHA256 != b.SHA256 {
		t.Fatalf("two builds differ: %s vs %s", a.SHA256, b.SHA256)
	}
	if filepath.Base(a.Path) != "bootstrap-lambda-"+a.SHA256[:12]+".zip" || a.Key != "apgstack/bootstrap-lambda-"+a.SHA256[:12]+".zip" {
		t.Errorf("names: path %s key %s", a.Path, a.Key)
	}

	zr, err := zip.NewReader(bytes.NewReader(za), int64(len(za)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" {
		t.Fatalf("zip entries: %v", zr.File)
	}
	f := zr.File[0]
	if f.Mode().Perm() != 0o755 || !f.Mode().IsRegular() {
		t.Errorf("mode %v, want -rwxr-xr-x", f.Mode())
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(exe))
	if err != nil {
		t.Fatalf("bootstrap is not an ELF file: %v", err)
	}
	if ef.Machine != elf.EM_AARCH64 || ef.Class != elf.ELFCLASS64 || ef.Type != elf.ET_EXEC {
		t.Errorf("ELF machine %v class %v type %v, want a 64-bit arm64 executable", ef.Machine, ef.Class, ef.Type)
	}
	if ef.Section(".interp") != nil {
		t.Error("dynamically linked; want static (CGO_ENABLED=0)")
	}
}

func TestZipDeterministic(t *testing.T) {
	a, err := lambdazip.Zip([]byte("exe"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := lambdazip.Zip([]byte("exe"))
	if !bytes.Equal(a, b) {
		t.Error("Zip is not deterministic")
	}
}

func TestKeyFor(t *testing.T) {
	if got := lambdazip.KeyFor("0123456789abcdef0123"); got != "apgstack/bootstrap-lambda-0123456789ab.zip" {
		t.Errorf("KeyFor = %s", got)
	}
}
