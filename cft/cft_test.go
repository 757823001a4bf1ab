package cft

import (
	"reflect"
	"strings"
	"testing"
)

func sample() *Template {
	t := New("A sample")
	t.Transform = []string{"AWS::SecretsManager-2024-09-16"}
	t.AddParameter(&Parameter{Name: "Stage", Type: "String", Default: "dev", AllowedValues: []any{"dev", "prod"}})
	t.AddParameter(&Parameter{Name: "ClassB", Type: "Number", Default: 0, MinValue: Float(0), MaxValue: Float(255)})
	t.AddParameter(&Parameter{Name: "Snapshot", Type: "String", Default: ""})
	t.Group("Environment", "Stage")
	t.Label("ClassB", "ClassB 2nd Octet")
	t.AddMapping("Sizes", map[string]map[string]any{"dev": {"Count": 1}, "prod": {"Count": 2}})
	t.AddCondition("IsProd", Equals(Ref("Stage"), "prod"))
	t.AddCondition("UseSnapshot", Not(Equals(Ref("Snapshot"), "")))
	t.AddCondition("ProdOrSnap", Or(Cond("IsProd"), Cond("UseSnapshot")))
	vpc := t.AddResource("VPC", "AWS::EC2::VPC", map[string]any{
		"CidrBlock": Sub("10.${ClassB}.0.0/16"),
		"Tags":      []any{Tag("Name", Sub("${AWS::StackName}-VPC"))},
	})
	vpc.DeletionPolicy = "Retain"
	t.AddResource("Subnet", "AWS::EC2::Subnet", map[string]any{
		"VpcId":               Ref("VPC"),
		"AvailabilityZone":    Select(0, GetAZs("")),
		"CidrBlock":           Sub("10.${ClassB}.0.0/20"),
		"MapPublicIpOnLaunch": If("IsProd", true, NoValue()),
		"Ipv6":                Base64(Sub("line one\nline ${AWS::Region}\n")),
	}).DependsOn = []string{"VPC"}
	t.AddOutput(&Output{Name: "VPC", Description: "the VPC", Value: Ref("VPC"), Export: Sub("${AWS::StackName}-VPC")})
	t.AddOutput(&Output{Name: "Cidr", Value: GetAtt("VPC", "CidrBlock"), Condition: "IsProd"})
	return t
}

func TestRenderIsDeterministicAndRoundTrips(t *testing.T) {
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			render := func(tpl *Template) []byte {
				var b []byte
				var err error
				if format == "yaml" {
					b, err = tpl.YAML()
				} else {
					b, err = tpl.JSON()
				}
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			a, b := render(sample()), render(sample())
			if string(a) != string(b) {
				t.Fatal("two renders of the same template differ")
			}
			parsed, err := Parse(a)
			if err != nil {
				t.Fatalf("parse own output: %v\n%s", err, a)
			}
			again := render(parsed)
			if string(again) != string(a) {
				t.Fatalf("round trip changed the template:\n--- first\n%s\n--- again\n%s", a, again)
			}
		})
	}
}

func TestYAMLUsesShortForm(t *testing.T) {
	out, err := sample().YAML()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"VpcId: !Ref VPC",
		"AvailabilityZone: !Select [0, !GetAZs '']",
		"CidrBlock: !Sub '10.${ClassB}.0.0/16'",
		"Value: !GetAtt VPC.CidrBlock",
		"IsProd: !Equals [!Ref Stage, prod]",
		"MapPublicIpOnLaunch: !If [IsProd, true, !Ref 'AWS::NoValue']",
		"Ipv6: !Base64\n",
		"Fn::Sub: |",
		"Transform: AWS::SecretsManager-2024-09-16",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("YAML lacks %q:\n%s", want, s)
		}
	}
}

func TestParseLongAndShortFormAgree(t *testing.T) {
	short := `
Resources:
  B:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Join ['-', [!Ref 'AWS::StackName', !GetAtt X.Arn]]
      Tags:
        - Key: k
          Value: !Sub '${AWS::Region}'
`
	long := `{"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {
  "BucketName": {"Fn::Join": ["-", [{"Ref": "AWS::StackName"}, {"Fn::GetAtt": ["X", "Arn"]}]]},
  "Tags": [{"Key": "k", "Value": {"Fn::Sub": "${AWS::Region}"}}]}}}}`
	a, err := Parse([]byte(short))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte(long))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Resources, b.Resources) {
		t.Fatalf("short %#v\nlong %#v", a.Resources[0].Properties, b.Resources[0].Properties)
	}
}

func TestParseErrors(t *testing.T) {
	for name, src := range map[string]string{
		"unknown section":   "Resourcez: {}\n",
		"unknown tag":       "Resources:\n  A:\n    Type: X\n    Properties:\n      P: !Bogus x\n",
		"resource no type":  "Resources:\n  A:\n    Properties: {}\n",
		"bad version":       "AWSTemplateFormatVersion: '2012-01-01'\nResources: {}\n",
		"duplicate key":     "Resources:\n  A:\n    Type: X\n    Type: Y\n",
		"unknown attribute": "Resources:\n  A:\n    Type: X\n    Propertiez: {}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(src)); err == nil {
				t.Fatal("parsed without error")
			}
		})
	}
}

func TestEvaluateConditionsAndResolve(t *testing.T) {
	tests := []struct {
		name       string
		params     map[string]string
		conditions map[string]bool
		mapPublic  any
		outputs    int
	}{
		{"dev", nil, map[string]bool{"IsProd": false, "UseSnapshot": false, "ProdOrSnap": false}, nil, 1},
		{"prod", map[string]string{"Stage": "prod"}, map[string]bool{"IsProd": true, "UseSnapshot": false, "ProdOrSnap": true}, true, 2},
		{"snapshot", map[string]string{"Snapshot": "snap-1"}, map[string]bool{"IsProd": false, "UseSnapshot": true, "ProdOrSnap": true}, nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := sample().Evaluate(tc.params)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ev.Conditions, tc.conditions) {
				t.Fatalf("conditions %v, want %v", ev.Conditions, tc.conditions)
			}
			var subnet *Resource
			for _, r := range ev.Active() {
				if r.Name == "Subnet" {
					subnet = r
				}
			}
			if got := subnet.Properties["MapPublicIpOnLaunch"]; got != tc.mapPublic {
				t.Errorf("MapPublicIpOnLaunch = %v, want %v", got, tc.mapPublic)
			}
			if _, present := subnet.Properties["MapPublicIpOnLaunch"]; present != (tc.mapPublic != nil) {
				t.Errorf("AWS::NoValue not removed")
			}
			if got := subnet.Properties["CidrBlock"]; got != "10.0.0.0/20" {
				t.Errorf("CidrBlock = %v", got)
			}
			if _, ok := RefName(subnet.Properties["VpcId"]); !ok {
				t.Errorf("a Ref to a resource must stay unresolved, got %v", subnet.Properties["VpcId"])
			}
			if n := len(ev.ActiveOutputs()); n != tc.outputs {
				t.Errorf("%d outputs, want %d", n, tc.outputs)
			}
		})
	}
}

func TestEvaluateNeedsValues(t *testing.T) {
	tpl := New("x")
	tpl.AddParameter(&Parameter{Name: "NoDefault", Type: "String"})
	tpl.AddResource("R", "AWS::SNS::Topic", nil)
	if _, err := tpl.Evaluate(nil); err == nil || !strings.Contains(err.Error(), "NoDefault") {
		t.Fatalf("want an error naming the parameter, got %v", err)
	}
}

func TestSubRefs(t *testing.T) {
	got := SubRefs("arn:${AWS::Partition}:x:${Res.Arn}/${!Literal}/${Var}", map[string]any{"Var": 1})
	want := []string{"AWS::Partition", "Res.Arn"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SubRefs = %v, want %v", got, want)
	}
}

func TestYAML11WordsAreQuoted(t *testing.T) {
	tpl := New("q")
	tpl.AddResource("R", "AWS::SNS::Topic", map[string]any{"A": "yes", "B": "Off", "C": "1:20", "D": "plain"})
	out, err := tpl.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"A: 'yes'", "B: 'Off'", "C: '1:20'", "D: plain"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("want %q in\n%s", want, out)
		}
	}
}

func TestParseKeepsSAMGlobalsAndForEach(t *testing.T) {
	src := `Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]
Globals:
  Function:
    Timeout: 30
Resources:
  Fn::ForEach::Topics:
    - Name
    - [A, B]
    - Topic${Name}:
        Type: AWS::SNS::Topic
  Plain:
    Type: AWS::SNS::Topic
`
	tpl, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(tpl.Resources) != 1 || len(tpl.ForEach) != 1 || tpl.Globals == nil {
		t.Fatalf("resources %d, ForEach %d, Globals %v", len(tpl.Resources), len(tpl.ForEach), tpl.Globals)
	}
	out, err := tpl.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(back.ForEach, tpl.ForEach) || !reflect.DeepEqual(back.Globals, tpl.Globals) {
		t.Fatalf("round trip lost Globals or ForEach:\n%s", out)
	}
}

func TestEvaluateSplit(t *testing.T) {
	ev, err := New("").Evaluate(map[string]string{StackId: "arn:aws:cloudformation:eu-west-1:1:stack/db/uuid-1", Region: "${AWS::Region}"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   any
		want any
	}{
		{"select a part", Select(2, Split("/", Ref(StackId))), "uuid-1"},
		{"join the parts", JoinList("-", Split("/", "a/b/c")), "a-b-c"},
		{"symbolic stays", Split("/", Ref(Region)), map[string]any{"Fn::Split": []any{"/", "${AWS::Region}"}}},
		{"unresolved stays", Split("/", GetAtt("R", "Arn")), map[string]any{"Fn::Split": []any{"/", GetAtt("R", "Arn")}}},
	} {
		if got := ev.Resolve(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Resolve = %#v, want %#v", tc.name, got, tc.want)
		}
	}
}
