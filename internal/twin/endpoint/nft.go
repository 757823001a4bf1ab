package endpoint

// The kernel path: an endpoint as an nftables NAT redirect on the loopback output hook, so a
// client's connection goes straight to PostgreSQL with no user-space copy.
//
// We drive the nft binary with one `nft -f -` script per change rather than a netlink library:
// a script is one atomic transaction (the kernel applies all of it or none), it needs no new
// dependency, its text is what an operator would type to inspect or repair the table by hand
// (`nft list table inet <name>`), and nft's own error messages name the offending line.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Route is where one endpoint's public port sends new connections.
type Route struct {
	Port    int   // the public endpoint port clients connect to
	Targets []int // loopback ports to spread over; empty means no rule (port left to the proxy)
}

// Kernel owns one nftables table. Nothing else in the machine's ruleset is touched.
type Kernel struct {
	Table string // inet table name; TableName derives one per twin
	NFT   string // nft binary; "" means "nft" on PATH (tests point it elsewhere to simulate no nft)
	// Owner is the twin's state directory, written into the table's comment so that a table
	// whose twin was deleted by hand can be recognised and removed (RemoveOrphans).
	Owner string
}

// ForTwin is the kernel path of the twin whose state is in stateDir.
func ForTwin(stateDir string) Kernel {
	return Kernel{Table: TableName(stateDir), Owner: filepath.Clean(stateDir)}
}

// ownerComment is the table comment naming its twin; nft keeps comments to 128 bytes and the
// script quotes it, so a directory that does not fit is left unnamed.
const ownerComment = "apgstack twin "

func (k Kernel) comment() string {
	c := ownerComment + k.Owner
	if k.Owner == "" || len(c) > 120 || strings.ContainsAny(c, "\"\\\n;") {
		return ""
	}
	return c
}

// RemoveOrphans deletes the tables of other twins whose state directory is gone (a twin deleted
// by hand, never brought down): alive says whether a directory still holds a twin. It returns the
// directories whose rules it removed; tables of live twins and tables without an owner's name
// are left alone.
func (k Kernel) RemoveOrphans(ctx context.Context, alive func(stateDir string) bool) ([]string, error) {
	out, err := exec.CommandContext(ctx, k.bin(), "list", "tables", "inet").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("nft list tables: %s: %w", firstLine(out, err), err)
	}
	var removed []string
	for _, l := range strings.Split(string(out), "\n") {
		name, ok := strings.CutPrefix(strings.TrimSpace(l), "table inet ")
		if !ok || name == k.Table || !strings.HasPrefix(name, "apgstack_") || !validTable(name) {
			continue
		}
		body, err := exec.CommandContext(ctx, k.bin(), "list", "table", "inet", name).CombinedOutput()
		if err != nil {
			continue // gone meanwhile
		}
		owner := ""
		for _, bl := range strings.Split(string(body), "\n") {
			if c, ok := strings.CutPrefix(strings.TrimSpace(bl), `comment "`+ownerComment); ok {
				owner = strings.TrimSuffix(c, `"`)
			}
		}
		if owner == "" || alive(owner) {
			continue
		}
		if err := (Kernel{Table: name, NFT: k.NFT}).Remove(ctx); err != nil {
			return removed, err
		}
		removed = append(removed, owner)
	}
	return removed, nil
}

// TableName is the twin's own table, derived from its state directory so two twins on one
// machine never share (or remove) each other's table.
func TableName(stateDir string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(stateDir)))
	return "apgstack_" + hex.EncodeToString(sum[:6])
}

// KernelUnavailable says why the kernel path cannot be used here, or "" when it can.
func (k Kernel) KernelUnavailable(ctx context.Context) string {
	if os.Geteuid() != 0 {
		return "not running as root"
	}
	bin, err := exec.LookPath(k.bin())
	if err != nil {
		return fmt.Sprintf("%s not found (install nftables)", k.bin())
	}
	out, err := exec.CommandContext(ctx, bin, "list", "tables").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("nft does not work here: %s", firstLine(out, err))
	}
	return ""
}

func (k Kernel) bin() string {
	if k.NFT == "" {
		return "nft"
	}
	return k.NFT
}

// Apply replaces the whole table with these routes in one transaction: connections already
// established keep their NAT mapping, new ones follow the new rules.
func (k Kernel) Apply(ctx context.Context, routes []Route) error {
	script, err := k.script(routes)
	if err != nil {
		return err
	}
	return k.run(ctx, script)
}

// Remove deletes the table if it exists (down, and up after a crash left a stale one).
func (k Kernel) Remove(ctx context.Context) error {
	// Declaring the table first makes the delete succeed whether or not it existed.
	return k.run(ctx, fmt.Sprintf("table inet %s {}\ndelete table inet %s\n", k.Table, k.Table))
}

// Exists reports whether the table is present.
func (k Kernel) Exists(ctx context.Context) (bool, error) {
	out, err := exec.CommandContext(ctx, k.bin(), "list", "tables", "inet").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("nft list tables: %s: %w", firstLine(out, err), err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) == "table inet "+k.Table {
			return true, nil
		}
	}
	return false, nil
}

func (k Kernel) script(routes []Route) (string, error) {
	if !validTable(k.Table) {
		return "", fmt.Errorf("nftables table %q: allowed are letters, digits and _ (at most 64)", k.Table)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {}\ndelete table inet %s\n", k.Table, k.Table)
	fmt.Fprintf(&b, "table inet %s {\n", k.Table)
	if c := k.comment(); c != "" {
		fmt.Fprintf(&b, "\tcomment \"%s\"\n", c)
	}
	b.WriteString("\tchain endpoints {\n")
	// Priority -100 is dstnat; output hook because loopback clients' packets never pass prerouting.
	b.WriteString("\t\ttype nat hook output priority -100; policy accept;\n")
	for _, r := range routes {
		if err := validPort("endpoint port", r.Port); err != nil {
			return "", err
		}
		if len(r.Targets) == 0 {
			continue
		}
		to, err := target(r.Targets)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "\t\tip daddr 127.0.0.1 tcp dport %d redirect to %s\n", r.Port, to)
		fmt.Fprintf(&b, "\t\tip6 daddr ::1 tcp dport %d redirect to %s\n", r.Port, to)
	}
	b.WriteString("\t}\n}\n")
	return b.String(), nil
}

// target is one port, or a round-robin spread over several.
func target(ports []int) (string, error) {
	for _, p := range ports {
		if err := validPort("target port", p); err != nil {
			return "", err
		}
	}
	if len(ports) == 1 {
		return fmt.Sprintf(":%d", ports[0]), nil
	}
	elems := make([]string, len(ports))
	for i, p := range ports {
		elems[i] = fmt.Sprintf("%d : %d", i, p)
	}
	return fmt.Sprintf("numgen inc mod %d map { %s }", len(ports), strings.Join(elems, ", ")), nil
}

func validPort(what string, p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("%s %d: allowed is 1-65535", what, p)
	}
	return nil
}

func validTable(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (k Kernel) run(ctx context.Context, script string) error {
	cmd := exec.CommandContext(ctx, k.bin(), "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nftables table %s: %s: %w", k.Table, firstLine(out.Bytes(), err), err)
	}
	return nil
}

func firstLine(out []byte, err error) string {
	s := strings.TrimSpace(string(out))
	if s == "" {
		return err.Error()
	}
	s, _, _ = strings.Cut(s, "\n")
	return s
}
