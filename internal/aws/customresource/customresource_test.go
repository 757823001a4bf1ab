package customresource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/aws/customresource"
	"github.com/apgstack/apgstack/internal/testkit/pgtest"
	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// fakeCFN is a FAKE of CloudFormation's pre-signed response URL (an S3 PUT target): it records
// what the handler PUTs.
type fakeCFN struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []cfn.Response
	raw []string
}

func newFakeCFN(t *testing.T) *fakeCFN {
	f := &fakeCFN{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPut || r.Header.Get("Content-Type") != "" {
			t.Errorf("response: %s with Content-Type %q; want PUT without a content type (the URL is pre-signed)", r.Method, r.Header.Get("Content-Type"))
		}
		var resp cfn.Response
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Errorf("response body: %v", err)
		}
		f.mu.Lock()
		f.got = append(f.got, resp)
		f.raw = append(f.raw, string(body))
		f.mu.Unlock()
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCFN) last(t *testing.T) (cfn.Response, string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		t.Fatal("no response was sent")
	}
	return f.got[len(f.got)-1], f.raw[len(f.raw)-1]
}

// fakeSecretsManager is a FAKE of the Secrets Manager API (GetSecretValue only, AWS JSON 1.1
// protocol), so the real SDK client is exercised against it through BaseEndpoint.
type fakeSecretsManager struct {
	mu      sync.Mutex
	secrets map[string]string
	reads   map[string]int
	// onRead, when set, runs before a read is answered (to simulate a rotation).
	onRead func(arn string, n int)
}

func newFakeSecretsManager(t *testing.T) (*fakeSecretsManager, *secretsmanager.Client) {
	f := &fakeSecretsManager{secrets: map[string]string{}, reads: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"__type":"InvalidRequestException","message":"fake supports GetSecretValue only, got %s"}`, r.Header.Get("X-Amz-Target"))
			return
		}
		var in struct{ SecretId string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		f.mu.Lock()
		f.reads[in.SecretId]++
		if f.onRead != nil {
			f.onRead(in.SecretId, f.reads[in.SecretId])
		}
		v, ok := f.secrets[in.SecretId]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ARN": in.SecretId, "Name": in.SecretId, "SecretString": v, "VersionId": "v1"})
	}))
	t.Cleanup(srv.Close)
	client := secretsmanager.New(secretsmanager.Options{
		Region:           "eu-west-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake-secret-key", ""),
		RetryMaxAttempts: 1,
	})
	return f, client
}

func (f *fakeSecretsManager) put(arn, user, password string) {
	b, _ := json.Marshal(map[string]string{"username": user, "password": password, "engine": "postgres"})
	f.mu.Lock()
	f.secrets[arn] = string(b)
	f.mu.Unlock()
}

const (
	arnMaster = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dev/aurora-pg/db-AbCdEf"
	arnOwner  = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-owner-AbCdEf"
	arnRW     = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-rw-AbCdEf"
	arnRO     = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-ro-AbCdEf"
)

var rolePasswords = map[string]string{arnOwner: "Owner-Pw-0123456789", arnRW: "Rw-Pw-0123456789", arnRO: "Ro-Pw-0123456789"}

type env struct {
	pg   *pgtest.Server
	sm   *fakeSecretsManager
	cfn  *fakeCFN
	h    *customresource.Handler
	logs *bytes.Buffer
}

func setup(t *testing.T, pg *pgtest.Server) *env {
	sm, client := newFakeSecretsManager(t)
	sm.put(arnMaster, pg.Superuser, pg.Password)
	sm.put(arnOwner, "app_owner", rolePasswords[arnOwner])
	sm.put(arnRW, "app_rw", rolePasswords[arnRW])
	sm.put(arnRO, "app_ro", rolePasswords[arnRO])
	logs := &bytes.Buffer{}
	h := customresource.New(client, slog.New(slog.NewJSONHandler(logs, nil)))
	h.Connect = customresource.TLSConnect(pg.RootCAs()) // the test CA stands in for the RDS CAs
	h.Backoff = time.Millisecond
	return &env{pg: pg, sm: sm, cfn: newFakeCFN(t), h: h, logs: logs}
}

func (e *env) event(kind cfn.RequestType, db string, edits map[string]any) cfn.Event {
	props := map[string]any{
		"ServiceToken":    "arn:aws:lambda:eu-west-1:123456789012:function:bootstrap",
		"MasterSecretArn": arnMaster, "OwnerSecretArn": arnOwner, "ReadWriteSecretArn": arnRW, "ReadOnlySecretArn": arnRO,
		"Host": e.pg.Host, "Port": strconv.Itoa(e.pg.Port), "DBName": db, "Schema": "app", "TolerateFailure": "false",
	}
	for k, v := range edits {
		if v == nil {
			delete(props, k)
		} else {
			props[k] = v
		}
	}
	ev := cfn.Event{
		RequestType: kind, RequestID: "req-" + string(kind), ResponseURL: e.cfn.srv.URL + "/cloudformation-custom-resource-response?X-Amz-Signature=abc",
		ResourceType: "Custom::Bootstrap", LogicalResourceID: "Bootstrap", StackID: "arn:aws:cloudformation:eu-west-1:123456789012:stack/db/1",
		ResourceProperties: props,
	}
	if kind != cfn.RequestCreate {
		ev.PhysicalResourceID = "apgstack-bootstrap/" + db + "/app"
	}
	return ev
}

// handle runs the handler and returns what CloudFormation received; it also checks that no
// password reached the response or the logs.
func (e *env) handle(t *testing.T, ev cfn.Event) cfn.Response {
	t.Helper()
	if err := e.h.Handle(context.Background(), ev); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	resp, raw := e.cfn.last(t)
	if resp.RequestID != ev.RequestID || resp.LogicalResourceID != ev.LogicalResourceID || resp.StackID != ev.StackID || resp.PhysicalResourceID == "" {
		t.Errorf("response does not echo the event: %+v", resp)
	}
	for _, pw := range append([]string{e.pg.Password}, slices.Collect(maps.Values(rolePasswords))...) {
		if strings.Contains(raw, pw) || strings.Contains(e.logs.String(), pw) {
			t.Errorf("a password leaked into the response or logs:\n%s\n%s", raw, e.logs.String())
		}
	}
	return resp
}

func TestHandlerFakeCloudFormation(t *testing.T) {
	pg := pgtest.Start(t, pgtest.WithTLS())
	ctx := context.Background()

	t.Run("create update delete", func(t *testing.T) {
		pg.CreateDatabase(t, "app1")
		e := setup(t, pg)
		resp := e.handle(t, e.event(cfn.RequestCreate, "app1", nil))
		if resp.Status != cfn.StatusSuccess || resp.Data["Created"] == "0" || resp.PhysicalResourceID != "apgstack-bootstrap/app1/app" {
			t.Fatalf("create: %+v", resp)
		}
		// The roles log in with their secrets' passwords, over TLS.
		rw := pg.ConnAs(t, "app_rw", rolePasswords[arnRW], "app1")
		if _, err := rw.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		resp = e.handle(t, e.event(cfn.RequestUpdate, "app1", nil))
		if resp.Status != cfn.StatusSuccess || resp.Data["Created"] != "0" || resp.Data["Changed"] != "0" || resp.PhysicalResourceID != "apgstack-bootstrap/app1/app" {
			t.Errorf("update: %+v", resp)
		}
		resp = e.handle(t, e.event(cfn.RequestDelete, "app1", nil))
		if resp.Status != cfn.StatusSuccess {
			t.Errorf("delete: %+v", resp)
		}
		var n int
		if err := pg.Conn(t, "app1").QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = 'app'").Scan(&n); err != nil || n != 1 {
			t.Errorf("delete touched the data: schema count %d, %v", n, err)
		}
	})

	t.Run("update after a multi-user rotation", func(t *testing.T) {
		pg.CreateDatabase(t, "app4")
		e := setup(t, pg)
		if resp := e.handle(t, e.event(cfn.RequestCreate, "app4", nil)); resp.Status != cfn.StatusSuccess {
			t.Fatalf("create: %+v", resp)
		}
		// The rotation set the prepared clone's password and the secret now names the clone.
		const clonePw = "Owner-Clone-Pw-0123456789"
		rolePasswords[arnOwner+"/clone"] = clonePw
		t.Cleanup(func() { delete(rolePasswords, arnOwner+"/clone") })
		if _, err := pg.Conn(t, "app4").Exec(ctx, "ALTER USER app_owner_clone WITH PASSWORD '"+clonePw+"'"); err != nil {
			t.Fatal(err)
		}
		e.sm.put(arnOwner, "app_owner_clone", clonePw)
		if resp := e.handle(t, e.event(cfn.RequestUpdate, "app4", nil)); resp.Status != cfn.StatusSuccess {
			t.Fatalf("update: %+v", resp)
		}
		var schemaOwner string
		if err := pg.Conn(t, "app4").QueryRow(ctx, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'app'").Scan(&schemaOwner); err != nil || schemaOwner != "app_owner" {
			t.Errorf("schema owner %q (%v): the bootstrap must keep app_owner, not the secret's clone", schemaOwner, err)
		}
		// A secret naming someone else is refused.
		e.sm.put(arnOwner, "intruder", clonePw)
		resp := e.handle(t, e.event(cfn.RequestUpdate, "app4", nil))
		if resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, `allowed are "app_owner" and "app_owner_clone"`) {
			t.Errorf("want FAILED naming the allowed identities: %+v", resp)
		}
	})

	t.Run("failing database", func(t *testing.T) {
		e := setup(t, pg)
		port := closedPort(t)
		resp := e.handle(t, e.event(cfn.RequestCreate, "app1", map[string]any{"Port": port}))
		if resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, "connect to") {
			t.Errorf("want FAILED with the reason: %+v", resp)
		}
		// Tolerated: SUCCESS, with the reason kept.
		resp = e.handle(t, e.event(cfn.RequestCreate, "app1", map[string]any{"Port": port, "TolerateFailure": "true"}))
		if resp.Status != cfn.StatusSuccess || !strings.Contains(resp.Reason, "tolerated") || !strings.Contains(resp.Data["BootstrapError"].(string), "connect to") {
			t.Errorf("want tolerated SUCCESS: %+v", resp)
		}
	})

	t.Run("server not signed by an RDS CA", func(t *testing.T) {
		pg.CreateDatabase(t, "app2")
		e := setup(t, pg)
		e.h.Connect = customresource.New(nil, nil).Connect // the embedded RDS bundle
		resp := e.handle(t, e.event(cfn.RequestCreate, "app2", nil))
		if resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, "certificate") {
			t.Errorf("want FAILED on certificate verification: %+v", resp)
		}
	})

	t.Run("rotation in progress", func(t *testing.T) {
		pg.CreateDatabase(t, "app3")
		e := setup(t, pg)
		// The first read returns a stale password; the next ones the current password.
		e.sm.put(arnMaster, pg.Superuser, "stale-password-123")
		e.sm.onRead = func(arn string, n int) {
			if arn == arnMaster && n == 2 {
				b, _ := json.Marshal(map[string]string{"username": pg.Superuser, "password": pg.Password})
				e.sm.secrets[arnMaster] = string(b)
			}
		}
		resp := e.handle(t, e.event(cfn.RequestCreate, "app3", nil))
		if resp.Status != cfn.StatusSuccess || e.sm.reads[arnMaster] != 2 {
			t.Errorf("want SUCCESS after one retry: %+v, master secret read %d times", resp, e.sm.reads[arnMaster])
		}
		// Always wrong: gives up after AuthAttempts, FAILED, never showing the password.
		e.sm.onRead = nil
		e.sm.put(arnMaster, pg.Superuser, "stale-password-123")
		e.sm.reads[arnMaster] = 0
		e.h.AuthAttempts = 3
		resp = e.handle(t, e.event(cfn.RequestUpdate, "app3", nil))
		if resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, "28P01") || e.sm.reads[arnMaster] != 3 {
			t.Errorf("want FAILED after 3 attempts: %+v (reads %d)", resp, e.sm.reads[arnMaster])
		}
		if strings.Contains(resp.Reason, "stale-password-123") {
			t.Error("reason shows the password")
		}
	})

	t.Run("deadline near: still answers", func(t *testing.T) {
		e := setup(t, pg)
		// Less time left than the handler keeps back for the answer: the work is cut short, the
		// FAILED response still goes out.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := e.h.Handle(ctx, e.event(cfn.RequestCreate, "app1", nil)); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		resp, _ := e.cfn.last(t)
		if resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, "deadline") {
			t.Errorf("want FAILED for the deadline: %+v", resp)
		}
	})

	t.Run("bad properties and secrets", func(t *testing.T) {
		e := setup(t, pg)
		resp := e.handle(t, e.event(cfn.RequestCreate, "app1", map[string]any{"MasterSecretArn": nil, "Port": "x", "TolerateFailure": "maybe"}))
		for _, want := range []string{"MasterSecretArn is missing", `Port "x"`, `TolerateFailure "maybe"`} {
			if resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, want) {
				t.Errorf("want FAILED naming %q: %+v", want, resp)
			}
		}
		// Delete never fails on what it does not need.
		if resp := e.handle(t, e.event(cfn.RequestDelete, "app1", map[string]any{"MasterSecretArn": nil})); resp.Status != cfn.StatusSuccess {
			t.Errorf("delete with bad properties: %+v", resp)
		}
		// A secret that is not the expected JSON: the reason names the secret, not its content.
		e.sm.mu.Lock()
		e.sm.secrets[arnRO] = "not-json-" + rolePasswords[arnRO]
		e.sm.mu.Unlock()
		resp = e.handle(t, e.event(cfn.RequestCreate, "app1", nil))
		if resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, arnRO) {
			t.Errorf("want FAILED naming the secret: %+v", resp)
		}
		resp = e.handle(t, e.event(cfn.RequestCreate, "app1", map[string]any{"OwnerSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:missing"}))
		if resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, "ResourceNotFoundException") {
			t.Errorf("want FAILED for a missing secret: %+v", resp)
		}
	})
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return strconv.Itoa(port)
}

func TestParseProperties(t *testing.T) {
	p, err := customresource.ParseProperties(map[string]any{
		"MasterSecretArn": "m", "OwnerSecretArn": "o", "ReadWriteSecretArn": "w", "ReadOnlySecretArn": "r",
		"Host": "h", "Port": float64(5432), "DBName": "AuroraPostgresDB", "TolerateFailure": "True",
	})
	if err != nil || p.Schema != "aurorapostgresdb" || p.Target.Port != 5432 || !p.TolerateFailure {
		t.Errorf("ParseProperties = %+v, %v", p, err)
	}
}
