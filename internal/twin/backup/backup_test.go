package backup

import (
	"context"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/runas"
	"github.com/apgstack/apgstack/internal/testkit/golden"
	"github.com/apgstack/apgstack/internal/testkit/pgtest"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/postgres"
)

// baseDir is a directory the server account can reach (t.TempDir is 0700 root's).
func baseDir(t *testing.T) string {
	t.Helper()
	return pgtest.ReachableDir(t, "backup")
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// server is a real PostgreSQL server reached over its unix socket with peer authentication, as
// the supervisor runs them.
type server struct {
	*instance.Instance
}

func newInstance(t *testing.T, dir, name string) *instance.Instance {
	t.Helper()
	bin, _, err := instance.FindBinaries(context.Background(), 15, false)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := runas.Resolve("")
	if err != nil {
		t.Fatal(err)
	}
	i := &instance.Instance{Name: name, Dir: filepath.Join(dir, name), Port: freePort(t), Bin: bin, Acct: acct}
	if err := i.Prepare(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = i.Stop(ctx)
	})
	return i
}

// configure writes a minimal postgresql.conf (archiving through archiveCommand when given),
// pg_hba.conf and pg_ident.conf into i's data directory.
func configure(t *testing.T, i *instance.Instance, archiveCommand string) {
	t.Helper()
	conf := []string{
		"listen_addresses = ''",
		"port = " + strconv.Itoa(i.Port),
		"unix_socket_directories = " + postgres.Quote(i.SocketDir()),
		"wal_level = replica",
		"max_wal_senders = 4",
		"fsync = off",
		"shared_buffers = '32MB'",
	}
	if archiveCommand != "" {
		conf = append(conf, "archive_mode = on", "archive_command = "+postgres.Quote(archiveCommand))
	}
	users := []string{i.Acct.Name}
	if u, err := user.Current(); err == nil {
		users = append(users, u.Username)
	}
	for name, data := range map[string]string{
		"postgresql.conf": strings.Join(conf, "\n") + "\n",
		"pg_hba.conf":     postgres.HBA(false),
		"pg_ident.conf":   postgres.Ident(users),
	} {
		if err := i.WriteFile(name, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
}

func start(t *testing.T, i *instance.Instance) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := i.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

func sqlExec(t *testing.T, i *instance.Instance, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := i.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func ids(t *testing.T, i *instance.Instance) []int {
	t.Helper()
	ctx := context.Background()
	conn, err := i.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT id FROM t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitPromoted waits until a restored server has finished recovery.
func waitPromoted(t *testing.T, i *instance.Instance) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		h, err := i.Health(ctx)
		if err == nil && !h.InRecovery {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not finish recovery: %v", i.Name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRenderGolden(t *testing.T) {
	cfg := Config{Dir: "/srv/twin/backup", Stanza: "apgstack-database", DataDir: "/srv/twin/instances/instance1/data",
		SocketDir: "/srv/twin/instances/instance1", Port: 40001, User: "postgres", RetentionDays: 35, ProcessMax: 2}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "pgbackrest.conf", []byte(Render(cfg, cfg.Dir)))
}

func TestConfigRefusesBadInput(t *testing.T) {
	good := Config{Dir: "/x", Stanza: "s", DataDir: "/x/data", SocketDir: "/x", Port: 5432, RetentionDays: 7}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"relative dir", func(c *Config) { c.Dir = "x" }, `repository directory "x"`},
		{"stanza with space", func(c *Config) { c.Stanza = "a b" }, `stanza "a b"`},
		{"port", func(c *Config) { c.Port = 0 }, "port 0: 1..65535"},
		{"retention", func(c *Config) { c.RetentionDays = 0 }, "retention 0 days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			err := c.validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if err := good.validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseInfo(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "info.json"))
	if err != nil {
		t.Fatal(err)
	}
	infos, err := ParseInfo(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Stanza != "main" || infos[0].Status != "ok" || infos[0].Cipher != "aes-256-cbc" {
		t.Fatalf("got %+v", infos)
	}
	b := infos[0].Backups
	if len(b) != 2 || b[0].Type != Full || b[1].Type != Incr || b[1].Prior != b[0].Label || b[0].Annotations["by"] != "test" {
		t.Fatalf("backups: %+v", b)
	}
	if b[0].Size != 23000000 || b[0].RepoSize != 3000000 || !infos[0].EarliestRestorable().Equal(time.Unix(1764081002, 0)) {
		t.Fatalf("sizes or times: %+v", b[0])
	}
	if infos[0].WALMin != "000000010000000000000001" || infos[0].WALMax != "000000010000000000000005" {
		t.Fatalf("wal range: %s..%s", infos[0].WALMin, infos[0].WALMax)
	}
}

func TestSnapshotNames(t *testing.T) {
	for name, ok := range map[string]bool{"final-2026": true, "a": true, "1abc": false, "a--b": false, "a-": false,
		"arn:aws:rds:eu-west-1:123456789012:cluster-snapshot:x": false, "a b": false, "": false} {
		if err := CheckSnapshotName(name); (err == nil) != ok {
			t.Errorf("%q: got %v, want ok=%v", name, err, ok)
		}
	}
}

// TestPointInTimeRestore archives WAL from a real server into an encrypted repository, takes a
// full backup, writes rows before and after a moment T, restores to T into a new data directory
// and checks that the rows before T are there, those after are not, and the source is unchanged.
func TestPointInTimeRestore(t *testing.T) {
	ctx := context.Background()
	dir := baseDir(t)
	src := newInstance(t, dir, "src")
	if err := src.InitDB(ctx); err != nil {
		t.Fatal(err)
	}
	repo, err := New(Config{Dir: filepath.Join(dir, "backup"), Stanza: "apgstack-test", DataDir: src.DataDir(),
		SocketDir: src.SocketDir(), Port: src.Port, RetentionDays: 7}, src.Acct, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Setup(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(repo.PassphraseFile()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("passphrase file: %v %v", fi, err)
	}
	if conf, _ := os.ReadFile(repo.ConfigFile()); strings.Contains(string(conf), "cipher-pass") {
		t.Fatal("pgbackrest.conf holds the passphrase; it belongs in the 0600 include file only")
	}
	configure(t, src, repo.ArchiveCommand())
	start(t, src)
	if err := repo.StanzaCreate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := repo.Check(ctx); err != nil {
		t.Fatal(err)
	}
	sqlExec(t, src, "CREATE TABLE t (id int PRIMARY KEY)")
	sqlExec(t, src, "INSERT INTO t VALUES (1), (2)")
	if err := repo.Backup(ctx, Full, map[string]string{"by": "test"}); err != nil {
		t.Fatal(err)
	}
	sqlExec(t, src, "INSERT INTO t VALUES (3)")
	if err := repo.Backup(ctx, Incr, nil); err != nil {
		t.Fatal(err)
	}
	sqlExec(t, src, "INSERT INTO t VALUES (4)")

	// T: the server's clock after row 4 committed and before row 5 did.
	conn, err := src.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	var target time.Time
	if err := conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&target); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	sqlExec(t, src, "INSERT INTO t VALUES (5), (6)")
	// check switches WAL and waits until the segment holding rows 5 and 6 is archived.
	if err := repo.Check(ctx); err != nil {
		t.Fatal(err)
	}

	info, err := repo.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Backups) != 2 || info.Backups[0].Type != Full || info.Backups[1].Type != Incr ||
		info.Backups[0].Annotations["by"] != "test" || info.Cipher != "aes-256-cbc" || info.Status != "ok" {
		t.Fatalf("info: %+v", info)
	}

	dst := newInstance(t, dir, "dst")
	if err := repo.Restore(ctx, RestoreOptions{DataDir: src.DataDir(), Time: target}); err == nil {
		t.Fatal("restore into the source's own data directory was not refused")
	}
	if err := repo.Restore(ctx, RestoreOptions{DataDir: dst.DataDir(), Time: target, ArchiveOff: true}); err != nil {
		t.Fatal(err)
	}
	// The restored configuration is the source's: point the new server at its own port and socket,
	// keeping the recovery settings pgBackRest wrote to postgresql.auto.conf.
	configure(t, dst, "")
	start(t, dst)
	waitPromoted(t, dst)
	if got := ids(t, dst); !equal(got, []int{1, 2, 3, 4}) {
		t.Fatalf("restored to %s: rows %v, want [1 2 3 4]", FormatTarget(target), got)
	}
	if got := ids(t, src); !equal(got, []int{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("source changed: rows %v", got)
	}
	// The restored cluster is a writer of its own.
	sqlExec(t, dst, "INSERT INTO t VALUES (100)")
	if got := ids(t, src); !equal(got, []int{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("source changed after a write to the restored cluster: rows %v", got)
	}

	if err := repo.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if info, err := repo.Info(ctx); err != nil || len(info.Backups) != 2 {
		t.Fatalf("expire within the retention removed backups: %+v %v", info, err)
	}
}

// TestSnapshotRoundTrip snapshots a real server, changes it, restores the snapshot into a new data
// directory and finds the data as it was; then lists and deletes the snapshot.
func TestSnapshotRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := baseDir(t)
	src := newInstance(t, dir, "src")
	if err := src.InitDB(ctx); err != nil {
		t.Fatal(err)
	}
	configure(t, src, "")
	start(t, src)
	sqlExec(t, src, "CREATE TABLE t (id int PRIMARY KEY)")
	sqlExec(t, src, "INSERT INTO t VALUES (1), (2)")
	store := &Snapshots{Dir: filepath.Join(dir, "snapshots"), BinDir: src.Bin.BinDir, Acct: src.Acct}
	sn, err := store.Create(ctx, Source{SocketDir: src.SocketDir(), Port: src.Port}, Snapshot{Name: "before-three", Cluster: "apgstack-test", ServerMajor: src.Bin.Major})
	if err != nil {
		t.Fatal(err)
	}
	if sn.Size == 0 || sn.Kind != "manual" {
		t.Fatalf("snapshot: %+v", sn)
	}
	if _, err := store.Create(ctx, Source{SocketDir: src.SocketDir(), Port: src.Port}, Snapshot{Name: "before-three"}); err == nil {
		t.Fatal("a second snapshot with the same name was not refused")
	}
	sqlExec(t, src, "INSERT INTO t VALUES (3)")

	dst := newInstance(t, dir, "dst")
	if err := store.Restore(ctx, "before-three", dst.DataDir()); err != nil {
		t.Fatal(err)
	}
	configure(t, dst, "")
	start(t, dst)
	waitPromoted(t, dst)
	if got := ids(t, dst); !equal(got, []int{1, 2}) {
		t.Fatalf("restored rows %v, want [1 2]", got)
	}
	sqlExec(t, dst, "INSERT INTO t VALUES (10)")
	if got := ids(t, src); !equal(got, []int{1, 2, 3}) {
		t.Fatalf("source rows %v, want [1 2 3]", got)
	}

	list, err := store.List()
	if err != nil || len(list) != 1 || list[0].Name != "before-three" || list[0].Cluster != "apgstack-test" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := store.Delete("before-three"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get("before-three"); err == nil || !strings.Contains(err.Error(), ErrNoSnapshot.Error()) {
		t.Fatalf("after delete: %v", err)
	}
	if err := store.Restore(ctx, "before-three", filepath.Join(dir, "again")); err == nil {
		t.Fatal("restoring a deleted snapshot was not refused")
	}
}
