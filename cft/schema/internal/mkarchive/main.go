// Command mkarchive builds cft/schema/schemas.zip from a directory of CloudFormation resource
// provider schemas laid out as aws/<service>/<type>.json (the layout of
// github.com/aws-cloudformation/rain's internal/aws/cfn/schemas). It drops what validation never
// reads (documentation strings and the handlers' IAM permission lists) to keep the binary small,
// and writes one deflated entry per type, in sorted order with a fixed time, so the same input
// gives the same bytes. scripts/refresh-schemas.sh runs it.
//
// Usage: go run ./cft/schema/internal/mkarchive -src DIR -out cft/schema/schemas.zip
package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	src := flag.String("src", "", "directory holding aws/<service>/<type>.json")
	out := flag.String("out", "", "archive to write")
	flag.Parse()
	if *src == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: mkarchive -src DIR -out FILE.zip")
		os.Exit(2)
	}
	n, err := build(*src, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkarchive:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "mkarchive: %d schemas -> %s\n", n, *out)
}

func build(src, out string) (int, error) {
	var files []string
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".json") {
			rel, err := filepath.Rel(src, path)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	sort.Strings(files)
	if len(files) < 1000 {
		return 0, fmt.Errorf("only %d schemas under %s; refusing (expected well over 1000)", len(files), src)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestCompression)
	})
	for _, name := range files {
		data, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(name)))
		if err != nil {
			return 0, err
		}
		slim, typeName, err := slim(data)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		if want := EntryName(typeName); want != strings.ToLower(name) {
			return 0, fmt.Errorf("%s: type %s would be looked up as %s", name, typeName, want)
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: strings.ToLower(name), Method: zip.Deflate, Modified: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			return 0, err
		}
		if _, err := w.Write(slim); err != nil {
			return 0, err
		}
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return len(files), os.WriteFile(out, buf.Bytes(), 0o644)
}

// EntryName mirrors schema.entryName (kept separate so the generator needs nothing from the
// package it feeds).
func EntryName(typeName string) string {
	parts := strings.Split(typeName, "::")
	if len(parts) != 3 {
		return ""
	}
	return strings.ToLower(parts[0] + "/" + parts[1] + "/" + parts[2] + ".json")
}

// topLevelDropped are top-level keys validation never reads.
var topLevelDropped = []string{"handlers", "sourceUrl", "documentationUrl", "$schema"}

func slim(data []byte) ([]byte, string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, "", err
	}
	typeName, _ := doc["typeName"].(string)
	if typeName == "" {
		return nil, "", fmt.Errorf("no typeName")
	}
	for _, k := range topLevelDropped {
		delete(doc, k)
	}
	stripDocs(doc)
	out, err := json.Marshal(doc)
	return out, typeName, err
}

// stripDocs removes documentation strings. A "description" key whose value is a string is
// documentation; one whose value is an object is a property that happens to be called that.
func stripDocs(v any) {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range []string{"description", "$comment", "title", "examples"} {
			if _, isStr := x[k].(string); isStr || k == "examples" {
				if _, isObj := x[k].(map[string]any); !isObj {
					delete(x, k)
				}
			}
		}
		for _, e := range x {
			stripDocs(e)
		}
	case []any:
		for _, e := range x {
			stripDocs(e)
		}
	}
}
