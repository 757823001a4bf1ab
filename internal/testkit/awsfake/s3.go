package awsfake

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// The fake's S3: buckets and objects, enough for template and Lambda zip uploads.

func (f *Fake) serveS3(w http.ResponseWriter, r *http.Request) {
	// Path style: /bucket/key.
	p := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(p, "/")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
		body = unchunk(body)
	}
	if key == "" {
		f.serveBucket(w, r, bucket, body)
		return
	}
	action := map[string]string{http.MethodPut: "PutObject", http.MethodHead: "HeadObject", http.MethodGet: "GetObject"}[r.Method]
	f.record(Call{Service: "s3", Action: action, Form: url.Values{"Bucket": {bucket}, "Key": {key}}})
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, ok := f.buckets[bucket]
	if !ok {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		if r.Method != http.MethodHead {
			el("Error", tx("Code", "NoSuchBucket"), tx("Message", "The specified bucket does not exist"), tx("BucketName", bucket)).write(w)
		}
		return
	}
	switch r.Method {
	case http.MethodPut:
		objs[key] = body
		w.Header().Set("ETag", fmt.Sprintf(`"%x"`, len(body)))
		w.WriteHeader(http.StatusOK)
	case http.MethodHead, http.MethodGet:
		b, ok := objs[key]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			if r.Method == http.MethodGet {
				el("Error", tx("Code", "NoSuchKey"), tx("Message", "The specified key does not exist.")).write(w)
			}
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Header().Set("ETag", fmt.Sprintf(`"%x"`, len(b)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(b)
		}
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// unchunk decodes an aws-chunked body (size;chunk-signature=...\r\n data \r\n ... 0\r\n trailers).
func unchunk(b []byte) []byte {
	var out []byte
	s := string(b)
	for {
		line, rest, ok := strings.Cut(s, "\r\n")
		if !ok {
			return out
		}
		sizeHex, _, _ := strings.Cut(line, ";")
		var n int
		fmt.Sscanf(sizeHex, "%x", &n)
		if n == 0 || len(rest) < n {
			return out
		}
		out = append(out, rest[:n]...)
		s = strings.TrimPrefix(rest[n:], "\r\n")
	}
}

// objectFromURL reads a TemplateURL of the fake's S3 (path style or virtual-hosted).
func (f *Fake) objectFromURL(raw string) ([]byte, bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, false
	}
	host := u.Hostname()
	p := strings.TrimPrefix(u.Path, "/")
	var bucket, key string
	if i := strings.Index(host, ".s3."); i > 0 {
		bucket, key = host[:i], p
	} else {
		bucket, key, _ = strings.Cut(p, "/")
	}
	b, ok := f.buckets[bucket][key]
	return b, ok
}

// bucketSubresources are the bucket-level PUTs the fake keeps, by query parameter.
var bucketSubresources = map[string]string{
	"publicAccessBlock": "PutPublicAccessBlock", "encryption": "PutBucketEncryption", "versioning": "PutBucketVersioning",
	"policy": "PutBucketPolicy", "lifecycle": "PutBucketLifecycleConfiguration", "ownershipControls": "PutBucketOwnershipControls",
}

// serveBucket answers bucket-level requests: HeadBucket, CreateBucket and the configuration PUTs.
// The fake's account owns every bucket it knows; ExpectedBucketOwner of another account is
// refused as S3 refuses it (403).
func (f *Fake) serveBucket(w http.ResponseWriter, r *http.Request, bucket string, body []byte) {
	sub := ""
	for q := range r.URL.Query() {
		if _, ok := bucketSubresources[q]; ok {
			sub = q
		}
	}
	action := map[string]string{http.MethodHead: "HeadBucket", http.MethodPut: "CreateBucket"}[r.Method]
	if sub != "" {
		action = bucketSubresources[sub]
	}
	f.record(Call{Service: "s3", Action: action, Form: url.Values{"Bucket": {bucket}}})
	f.mu.Lock()
	defer f.mu.Unlock()
	_, exists := f.buckets[bucket]
	if owner := r.Header.Get("X-Amz-Expected-Bucket-Owner"); exists && owner != "" && owner != f.Account {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	switch {
	case action == "HeadBucket" && exists:
		w.WriteHeader(http.StatusOK)
	case action == "HeadBucket":
		w.WriteHeader(http.StatusNotFound)
	case action == "CreateBucket" && exists:
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusConflict)
		el("Error", tx("Code", "BucketAlreadyOwnedByYou"), tx("Message", "Your previous request to create the named bucket succeeded and you already own it.")).write(w)
	case action == "CreateBucket":
		f.buckets[bucket] = map[string][]byte{}
		f.bucketConfig[bucket] = map[string]string{}
		w.WriteHeader(http.StatusOK)
	case !exists:
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		el("Error", tx("Code", "NoSuchBucket"), tx("Message", "The specified bucket does not exist"), tx("BucketName", bucket)).write(w)
	case r.Method == http.MethodPut:
		if f.bucketConfig[bucket] == nil {
			f.bucketConfig[bucket] = map[string]string{}
		}
		f.bucketConfig[bucket][sub] = string(body)
		w.WriteHeader(http.StatusOK)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}
