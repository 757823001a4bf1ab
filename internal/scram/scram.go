// Package scram computes and checks the SCRAM-SHA-256 verifiers PostgreSQL stores for
// passwords. CREATE/ALTER ROLE ... PASSWORD is sent a verifier instead of the password, so the
// plain text never reaches the server, its statement log (log_statement=ddl) or pgaudit's role
// log.
package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Iterations is PostgreSQL's default scram_iterations (fixed at 4096 before version 16).
const Iterations = 4096

// Verifier returns the verifier of password with a new random salt, as libpq's
// PQencryptPasswordConn does. PostgreSQL applies SASLprep to the password first; for printable
// ASCII, all that generated passwords contain, that changes nothing.
func Verifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("scram: random salt: %w", err)
	}
	return WithSalt(password, salt, Iterations)
}

// WithSalt returns the verifier of password for a given salt and iteration count.
func WithSalt(password string, salt []byte, iterations int) (string, error) {
	stored, server, err := keys(password, salt, iterations)
	if err != nil {
		return "", err
	}
	enc := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, enc(salt), enc(stored), enc(server)), nil
}

func keys(password string, salt []byte, iterations int) (stored, server []byte, err error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return nil, nil, fmt.Errorf("scram: derive key: %w", err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	sum := sha256.Sum256(mac(salted, "Client Key"))
	return sum[:], mac(salted, "Server Key"), nil
}

// Matches reports whether stored (a pg_authid.rolpassword value) is a SCRAM-SHA-256 verifier of
// password. Anything else (md5, empty, malformed) does not match.
func Matches(stored, password string) bool {
	rest, ok := strings.CutPrefix(stored, "SCRAM-SHA-256$")
	if !ok {
		return false
	}
	iterSalt, keyPair, ok := strings.Cut(rest, "$")
	if !ok {
		return false
	}
	iterS, saltS, ok := strings.Cut(iterSalt, ":")
	if !ok {
		return false
	}
	storedS, serverS, ok := strings.Cut(keyPair, ":")
	if !ok {
		return false
	}
	iter, err := strconv.Atoi(iterS)
	if err != nil || iter <= 0 || iter > 1<<24 {
		return false
	}
	dec := base64.StdEncoding.DecodeString
	salt, err1 := dec(saltS)
	wantStored, err2 := dec(storedS)
	wantServer, err3 := dec(serverS)
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	gotStored, gotServer, err := keys(password, salt, iter)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(gotStored, wantStored) == 1 && subtle.ConstantTimeCompare(gotServer, wantServer) == 1
}
