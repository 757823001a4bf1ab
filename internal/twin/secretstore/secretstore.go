// Package secretstore is the local twin's Secrets Manager: named secrets with versions and the
// version stages AWSCURRENT, AWSPREVIOUS and AWSPENDING that rotation moves between versions.
// Each secret is one JSON file, mode 0600, in a 0700 directory; values never appear in errors.
package secretstore

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/atomicfile"
)

// Version stages, as Secrets Manager names them.
const (
	Current  = "AWSCURRENT"
	Previous = "AWSPREVIOUS"
	Pending  = "AWSPENDING"
)

// ErrNotFound is returned for a secret or stage that does not exist.
var ErrNotFound = errors.New("secret not found")

// DatabaseSecret is the SecretString of an RDS database secret.
type DatabaseSecret struct {
	Engine   string `json:"engine"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username"`
	Password string `json:"password"`
	DBName   string `json:"dbname"`
}

// Version is one version of a secret.
type Version struct {
	VersionID     string    `json:"VersionId"`
	VersionStages []string  `json:"VersionStages"`
	CreatedDate   time.Time `json:"CreatedDate"`
	SecretString  string    `json:"SecretString"`
}

// Secret is the stored file.
type Secret struct {
	Name     string    `json:"Name"`
	ARN      string    `json:"ARN"`
	Versions []Version `json:"Versions"`
}

// Store is a directory of secrets.
type Store struct {
	dir string
	mu  sync.Mutex
}

// Open creates the store's directory (0700) if needed.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("secret store %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("secret store %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)

// Path is the file holding a secret: the name's "/" become folders.
func (s *Store) Path(name string) string { return PathIn(s.dir, name) }

// PathIn is the file holding a secret in a store directory, without opening the store.
func PathIn(dir, name string) string { return filepath.Join(dir, filepath.FromSlash(name)+".json") }

func checkName(name string) error {
	if !namePattern.MatchString(name) || slices.Contains(strings.Split(name, "/"), "..") || strings.HasPrefix(name, "/") {
		return fmt.Errorf("secret name %q: allowed are 1 to 512 of A-Z a-z 0-9 / _ + = . @ -, without a leading / or a .. segment", name)
	}
	return nil
}

// Exists reports whether the secret exists.
func (s *Store) Exists(name string) bool {
	_, err := os.Stat(s.Path(name))
	return err == nil
}

// Describe reads a secret with all its versions.
func (s *Store) Describe(name string) (Secret, error) {
	if err := checkName(name); err != nil {
		return Secret{}, err
	}
	data, err := os.ReadFile(s.Path(name))
	if errors.Is(err, os.ErrNotExist) {
		return Secret{}, fmt.Errorf("secret %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Secret{}, fmt.Errorf("read secret %s: %w", name, err)
	}
	var sec Secret
	if err := json.Unmarshal(data, &sec); err != nil {
		return Secret{}, fmt.Errorf("secret %s: %s is not a secret file: %w", name, s.Path(name), err)
	}
	return sec, nil
}

// Create stores a new secret whose first version is AWSCURRENT. It fails if the secret exists.
func (s *Store) Create(name, value string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := checkName(name); err != nil {
		return "", err
	}
	if s.Exists(name) {
		return "", fmt.Errorf("create secret %s: it already exists", name)
	}
	v := Version{VersionID: newID(), VersionStages: []string{Current}, CreatedDate: time.Now().UTC(), SecretString: value}
	sec := Secret{Name: name, ARN: "arn:apgstack:secretsmanager:local:000000000000:secret:" + name, Versions: []Version{v}}
	return v.VersionID, s.write(sec)
}

// Get returns the version that carries a stage.
func (s *Store) Get(name, stage string) (Version, error) {
	sec, err := s.Describe(name)
	if err != nil {
		return Version{}, err
	}
	for _, v := range sec.Versions {
		if slices.Contains(v.VersionStages, stage) {
			return v, nil
		}
	}
	return Version{}, fmt.Errorf("secret %s has no %s version: %w", name, stage, ErrNotFound)
}

// PutPending adds a version labelled AWSPENDING (the first step of a rotation), moving the label
// off any older version.
func (s *Store) PutPending(name, value string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.Describe(name)
	if err != nil {
		return "", err
	}
	for i := range sec.Versions {
		sec.Versions[i].VersionStages = remove(sec.Versions[i].VersionStages, Pending)
	}
	v := Version{VersionID: newID(), VersionStages: []string{Pending}, CreatedDate: time.Now().UTC(), SecretString: value}
	sec.Versions = append(sec.Versions, v)
	return v.VersionID, s.write(sec)
}

// Promote makes a version AWSCURRENT (the last step of a rotation): the old current becomes
// AWSPREVIOUS and the promoted version loses AWSPENDING. Versions with no stage left are dropped.
func (s *Store) Promote(name, versionID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.Describe(name)
	if err != nil {
		return err
	}
	found := false
	for _, v := range sec.Versions {
		found = found || v.VersionID == versionID
	}
	if !found {
		return fmt.Errorf("secret %s has no version %s: %w", name, versionID, ErrNotFound)
	}
	var kept []Version
	for _, v := range sec.Versions {
		switch {
		case v.VersionID == versionID:
			v.VersionStages = append(remove(remove(v.VersionStages, Pending), Previous), Current)
		case slices.Contains(v.VersionStages, Current):
			v.VersionStages = append(remove(v.VersionStages, Current), Previous)
		default:
			v.VersionStages = remove(v.VersionStages, Previous)
		}
		if len(v.VersionStages) > 0 {
			kept = append(kept, v)
		}
	}
	sec.Versions = kept
	return s.write(sec)
}

func remove(list []string, x string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == x })
}

func (s *Store) write(sec Secret) error {
	path := s.Path(sec.Name)
	if err := atomicfile.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write secret %s: %w", sec.Name, err)
	}
	// Atomic and durable: after a crash the store holds the old stages or the new, so the
	// password marked AWSCURRENT is always the one that works.
	if err := atomicfile.WriteJSON(path, sec, atomicfile.Mode(0o600)); err != nil {
		return fmt.Errorf("secret %s: %w", sec.Name, err)
	}
	return nil
}

// GetDatabase decodes the database secret at a stage.
func (s *Store) GetDatabase(name, stage string) (DatabaseSecret, error) {
	v, err := s.Get(name, stage)
	if err != nil {
		return DatabaseSecret{}, err
	}
	var d DatabaseSecret
	if err := json.Unmarshal([]byte(v.SecretString), &d); err != nil {
		// The value stays out of the error: it is a secret.
		return DatabaseSecret{}, fmt.Errorf("secret %s (%s) is not a database secret", name, stage)
	}
	return d, nil
}

// CreateDatabase stores a database secret as AWSCURRENT.
func (s *Store) CreateDatabase(name string, d DatabaseSecret) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode secret %s: %w", name, err)
	}
	_, err = s.Create(name, string(data))
	return err
}

// GeneratePassword returns a random password as Secrets Manager's GetRandomPassword would with the
// stack's settings: bestpractice.PasswordLength printable ASCII characters without space and
// without bestpractice.PasswordExcludeCharacters.
func GeneratePassword() (string, error) {
	var alphabet []byte
	for c := byte('!'); c <= '~'; c++ {
		if !strings.ContainsRune(bestpractice.PasswordExcludeCharacters, rune(c)) {
			alphabet = append(alphabet, c)
		}
	}
	out := make([]byte, bestpractice.PasswordLength)
	for i := range out {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", fmt.Errorf("generate password: %w", err)
		}
		out[i] = alphabet[n.Int64()]
	}
	return string(out), nil
}

// newID returns a random (version 4) UUID, the form of Secrets Manager's version ids.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
