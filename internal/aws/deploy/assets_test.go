package deploy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/internal/aws/stacks"
)

// TestFakeAssetsBucket: up needs no bucket from the user. The account's assets bucket is created
// after confirmation — encrypted, versioned, public access blocked, TLS only, old versions
// expiring — reused afterwards without asking, and a dry run or a refusal creates nothing.
func TestFakeAssetsBucket(t *testing.T) {
	ctx := context.Background()
	h := newFakeHarness(t)
	want := AssetsBucketName(h.f.Account, h.f.Region)
	if len(want) > 63 || !strings.HasPrefix(want, "apgstack-assets-") {
		t.Fatalf("bucket name %q", want)
	}

	b, err := h.d.EnsureAssetsBucket(ctx, true)
	if err != nil || !b.Missing || b.Created || len(h.f.CallsOf("CreateBucket")) != 0 || len(h.questions) != 0 {
		t.Fatalf("dry run: %+v %v, calls %v, questions %q", b, err, h.f.Actions("s3"), h.questions)
	}

	h.answer = errors.New("cancelled")
	if _, err := h.d.EnsureAssetsBucket(ctx, false); err == nil || err.Error() != "cancelled" || len(h.f.CallsOf("CreateBucket")) != 0 {
		t.Fatalf("declined: %v, calls %v", err, h.f.Actions("s3"))
	}

	h.answer, h.questions = nil, nil
	b, err = h.d.EnsureAssetsBucket(ctx, false)
	if err != nil || b.Name != want || !b.Created || len(h.questions) != 1 || !strings.Contains(h.questions[0], "Create the assets bucket "+want) {
		t.Fatalf("create: %+v %v, questions %q", b, err, h.questions)
	}
	for _, c := range []struct{ sub, want string }{
		{"publicAccessBlock", "<BlockPublicPolicy>true</BlockPublicPolicy>"},
		{"encryption", "<SSEAlgorithm>AES256</SSEAlgorithm>"},
		{"versioning", "<Status>Enabled</Status>"},
		{"policy", `"aws:SecureTransport":"false"`},
		{"lifecycle", "<NoncurrentDays>30</NoncurrentDays>"},
	} {
		if got, ok := h.f.BucketConfig(want, c.sub); !ok || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q in it", c.sub, got, c.want)
		}
	}

	h.questions = nil
	b, err = h.d.EnsureAssetsBucket(ctx, false)
	if err != nil || b.Created || len(h.questions) != 0 || len(h.f.CallsOf("CreateBucket")) != 1 {
		t.Errorf("reuse: %+v %v, questions %q, creates %d", b, err, h.questions, len(h.f.CallsOf("CreateBucket")))
	}

	// With the assets bucket and no bucket in the configuration, the bootstrap zip and a template
	// over the inline limit go to the assets bucket.
	list := testStacks(false)
	db := withParam(list[2], stacks.ParamBootstrapBucket, "")
	db.Template = dbTemplate()
	db.Template.Description = strings.Repeat("x", 60000)
	list[2] = db
	if _, err := h.up(t, list, UpOptions{AssetsBucket: b.Name}); err != nil {
		t.Fatalf("up: %v\n%s", err, h.log)
	}
	if _, ok := h.f.Object(b.Name, zipKey); !ok {
		t.Errorf("the bootstrap zip is not in the assets bucket: %v", h.f.Actions("s3"))
	}
	calls := h.f.CallsOf("CreateChangeSet")
	if u := calls[len(calls)-1].Form.Get("TemplateURL"); !strings.Contains(u, b.Name) {
		t.Errorf("database template URL %q, want it in the assets bucket", u)
	}
	if st, _ := h.f.Stack(dbName); st.Parameters[stacks.ParamBootstrapBucket] != b.Name {
		t.Errorf("database stack's %s = %q, want %s", stacks.ParamBootstrapBucket, st.Parameters[stacks.ParamBootstrapBucket], b.Name)
	}
}
