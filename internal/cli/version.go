package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// unknown stands for a build-info field the binary was built without (go test, -buildvcs=false).
const unknown = "unknown"

// versionInfo is what `apgstack version` prints; the JSON names are part of the output contract.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Modified  bool   `json:"modified"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// readVersion reads the running binary's build information.
func readVersion() versionInfo {
	bi, _ := debug.ReadBuildInfo() // nil when the binary carries none
	return versionFrom(bi)
}

// versionFrom turns build information into versionInfo. The date is the commit's (vcs.time): the
// build info records no other date, which keeps builds reproducible.
func versionFrom(bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: unknown, Commit: unknown, Date: unknown, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.Date = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos != "" && goarch != "" {
		v.Platform = goos + "/" + goarch
	}
	return v
}

// short is the one-line form cobra prints for --version, after "apgstack version ".
func (v versionInfo) short() string {
	commit := v.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if v.Modified {
		commit += "-modified"
	}
	return fmt.Sprintf("%s (commit %s, date %s, %s, %s)", v.Version, commit, v.Date, v.GoVersion, v.Platform)
}

func newVersionCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, Go version and date of this binary",
		Long: `Print what this binary was built from: the module version, the VCS commit (with
"modified" when the work tree had changes), the commit's date, the Go version and the platform.
Fields the build did not record print as "unknown". --output json prints the same as JSON;
apgstack --version prints it on one line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := a.JSON()
			if err != nil {
				return err
			}
			v := readVersion()
			if asJSON {
				return a.PrintJSON(v)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "apgstack %s\n", v.Version)
			commit := v.Commit
			if v.Modified {
				commit += " (modified)"
			}
			fmt.Fprintf(&b, "  commit:    %s\n  date:      %s\n  go:        %s\n  platform:  %s\n", commit, v.Date, v.GoVersion, v.Platform)
			_, err = fmt.Fprint(a.Stdout, b.String())
			return err
		},
	}
}
