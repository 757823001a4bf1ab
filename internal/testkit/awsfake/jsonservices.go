package awsfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The JSON services: CloudTrail, Config (JSON 1.1) and GuardDuty (REST-JSON), read-only.

func (f *Fake) serveJSON(w http.ResponseWriter, r *http.Request, service string) {
	target := r.Header.Get("X-Amz-Target")
	action := target[strings.LastIndex(target, ".")+1:]
	var in map[string]any
	_ = json.NewDecoder(r.Body).Decode(&in)
	form := url.Values{}
	for k, v := range in {
		form.Set(k, fmt.Sprint(v))
	}
	f.record(Call{Service: service, Action: action, Form: form})
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	var out any
	switch action {
	case "DescribeTrails":
		trails := []any{}
		if f.CloudTrailLogging {
			trails = append(trails, map[string]any{"Name": "org-trail", "TrailARN": "arn:aws:cloudtrail:" + f.Region + ":" + f.Account + ":trail/org-trail", "IsMultiRegionTrail": true, "HomeRegion": f.Region})
		}
		out = map[string]any{"trailList": trails}
	case "GetTrailStatus":
		out = map[string]any{"IsLogging": f.CloudTrailLogging}
	case "DescribeConfigurationRecorderStatus":
		recs := []any{}
		if f.ConfigRecording {
			recs = append(recs, map[string]any{"name": "default", "recording": true, "lastStatus": "SUCCESS"})
		}
		out = map[string]any{"ConfigurationRecordersStatus": recs}
	case "GetSecretValue":
		id := form.Get("SecretId")
		v, ok := f.secrets[id]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			out = map[string]any{"__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret."}
			break
		}
		out = map[string]any{"ARN": id, "Name": id[strings.LastIndex(id, ":")+1:], "SecretString": v, "VersionId": "fake-version", "VersionStages": []string{"AWSCURRENT"}}
	case "RotateSecret":
		// Only secrets the stacks created, by ARN; an unknown id is refused as AWS does.
		id := form.Get("SecretId")
		if _, ok := f.secrets[id]; !ok {
			w.WriteHeader(http.StatusBadRequest)
			out = map[string]any{"__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret."}
			break
		}
		rot := Rotation{SecretID: id, RotateImmediately: form.Get("RotateImmediately") != "false", VersionID: fmt.Sprintf("fake-rotation-%d", len(f.rotations)+1)}
		f.rotations = append(f.rotations, rot)
		out = map[string]any{"ARN": id, "Name": id[strings.LastIndex(id, ":")+1:], "VersionId": rot.VersionID}
	default:
		w.WriteHeader(http.StatusBadRequest)
		out = map[string]any{"__type": "UnknownOperationException", "message": "not faked: " + action}
	}
	json.NewEncoder(w).Encode(out)
}

func (f *Fake) serveGuardDuty(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/detector":
		f.record(Call{Service: "guardduty", Action: "ListDetectors"})
		ids := []string{}
		if f.GuardDutyEnabled {
			ids = append(ids, "fakedetector")
		}
		json.NewEncoder(w).Encode(map[string]any{"detectorIds": ids})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/detector/"):
		f.record(Call{Service: "guardduty", Action: "GetDetector"})
		json.NewEncoder(w).Encode(map[string]any{"status": "ENABLED", "serviceRole": "arn:aws:iam::" + f.Account + ":role/aws-service-role/guardduty.amazonaws.com/AWSServiceRoleForAmazonGuardDuty", "createdAt": "2026-01-01T00:00:00.000Z"})
	default:
		f.record(Call{Service: "guardduty", Action: r.Method + " " + r.URL.Path})
		w.Header().Set("X-Amzn-Errortype", "BadRequestException")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"message": "not faked"})
	}
}
