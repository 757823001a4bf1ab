package awsfake

import (
	"io"
	"net/http"
	"net/url"
)

// serveBucket answers the bucket-level S3 calls apgstack makes: HeadBucket and CreateBucket
// (path style, no key). A new bucket is empty; creating one that exists is refused as S3 does
// for a bucket of the same owner.
func (f *Fake) serveBucket(w http.ResponseWriter, r *http.Request, bucket string) {
	action := map[string]string{http.MethodPut: "CreateBucket", http.MethodHead: "HeadBucket"}[r.Method]
	f.record(Call{Service: "s3", Action: action, Form: url.Values{"Bucket": {bucket}}})
	io.Copy(io.Discard, r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	_, exists := f.buckets[bucket]
	w.Header().Set("Content-Type", "application/xml")
	switch {
	case action == "HeadBucket" && exists:
		w.WriteHeader(http.StatusOK)
	case action == "HeadBucket":
		w.WriteHeader(http.StatusNotFound)
	case action == "CreateBucket" && exists:
		w.WriteHeader(http.StatusConflict)
		el("Error", tx("Code", "BucketAlreadyOwnedByYou"), tx("Message", "Your previous request to create the named bucket succeeded and you already own it."), tx("BucketName", bucket)).write(w)
	case action == "CreateBucket":
		f.buckets[bucket] = map[string][]byte{}
		w.Header().Set("Location", "/"+bucket)
		w.WriteHeader(http.StatusOK)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}
