package awsfake

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// HTTP plumbing: service dispatch by SigV4 scope, the query protocol's XML answers and errors.

var scopeRE = regexp.MustCompile(`Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request`)

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	m := scopeRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		http.Error(w, "awsfake: unsigned request", http.StatusForbidden)
		return
	}
	service := m[1]
	if f.DenyAuth {
		if service == "s3" || service == "guardduty" || service == "cloudtrail" || service == "config" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		queryError(w, http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
		return
	}
	if f.Deny[service] {
		f.record(Call{Service: service, Action: "denied"})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Errortype", "AccessDeniedException")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"__type":"AccessDeniedException","message":"User: arn:aws:iam::%s:user/fake is not authorized to perform this action"}`, f.Account)
		return
	}
	switch service {
	case "cloudformation", "sts", "rds":
		f.serveQuery(w, r, service)
	case "s3":
		f.serveS3(w, r)
	case "cloudtrail", "config", "secretsmanager":
		f.serveJSON(w, r, service)
	case "guardduty":
		f.serveGuardDuty(w, r)
	default:
		http.Error(w, "awsfake: service not faked: "+service, http.StatusNotImplemented)
	}
}

func (f *Fake) record(c Call) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	hook := f.OnCall
	f.mu.Unlock()
	if hook != nil {
		hook(c)
	}
}

// apiError is an error answer of the fake.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func validation(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "ValidationError", fmt.Sprintf(format, args...)}
}

func (f *Fake) serveQuery(w http.ResponseWriter, r *http.Request, service string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	action := form.Get("Action")
	f.record(Call{Service: service, Action: action, Form: form})
	f.mu.Lock()
	var result []x
	var aerr *apiError
	switch service {
	case "cloudformation":
		result, aerr = f.cloudFormation(action, form)
	case "sts":
		result, aerr = f.sts(action)
	case "rds":
		result, aerr = f.rds(action, form)
	}
	f.mu.Unlock()
	if aerr != nil {
		queryError(w, aerr.status, aerr.code, aerr.message)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	doc := el(action+"Response", el(action+"Result", result...), el("ResponseMetadata", tx("RequestId", "fake-request")))
	fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>`)
	doc.write(w)
}

func queryError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	el("ErrorResponse", el("Error", tx("Type", "Sender"), tx("Code", code), tx("Message", message)), tx("RequestId", "fake-request")).write(w)
}

// x is an XML element: text, or children.
type x struct {
	name string
	text string
	kids []x
}

func el(name string, kids ...x) x { return x{name: name, kids: kids} }

func tx(name, text string) x { return x{name: name, text: text} }

// members is a list whose entries are named member (or another name, as RDS does).
func members(name, member string, items []x) x {
	out := x{name: name}
	for _, it := range items {
		it.name = member
		out.kids = append(out.kids, it)
	}
	return out
}

func (e x) write(w io.Writer) {
	fmt.Fprintf(w, "<%s>", e.name)
	if e.kids == nil {
		xmlEscape(w, e.text)
	}
	for _, k := range e.kids {
		k.write(w)
	}
	fmt.Fprintf(w, "</%s>", e.name)
}

func xmlEscape(w io.Writer, s string) {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")
	io.WriteString(w, r.Replace(s))
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// memberValues reads Name.member.N entries of a query form.
func memberValues(form url.Values, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[fmt.Sprintf("%s.member.%d", name, i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

// memberStructs reads Name.member.N.Field entries of a query form.
func memberStructs(form url.Values, name string) []map[string]string {
	var out []map[string]string
	for i := 1; ; i++ {
		prefix := fmt.Sprintf("%s.member.%d.", name, i)
		m := map[string]string{}
		for k, v := range form {
			if strings.HasPrefix(k, prefix) {
				m[strings.TrimPrefix(k, prefix)] = v[0]
			}
		}
		if len(m) == 0 {
			return out
		}
		out = append(out, m)
	}
}

func (f *Fake) sts(action string) ([]x, *apiError) {
	if action != "GetCallerIdentity" {
		return nil, &apiError{400, "InvalidAction", "not faked: " + action}
	}
	return []x{tx("Arn", "arn:aws:iam::"+f.Account+":user/fake"), tx("UserId", "AIDAFAKE"), tx("Account", f.Account)}, nil
}
