package bootstrap

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

// scramIterations is PostgreSQL's default (scram_iterations, fixed at 4096 before 16).
const scramIterations = 4096

// scramVerifier computes the SCRAM-SHA-256 verifier PostgreSQL stores for password, the way
// libpq's PQencryptPasswordConn does. Sending the verifier instead of the password keeps the
// plain text out of the server's statement log (log_statement=ddl) and pgaudit's role log.
//
// PostgreSQL applies SASLprep to the password first; for ASCII passwords that is the identity
// (or fails, and then the raw bytes are used), which is why validate only accepts ASCII.
func scramVerifier(password string, salt []byte, iterations int) (string, error) {
	stored, server, err := scramKeys(password, salt, iterations)
	if err != nil {
		return "", err
	}
	enc := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, enc(salt), enc(stored), enc(server)), nil
}

func newScramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("random salt: %w", err)
	}
	return scramVerifier(password, salt, scramIterations)
}

func scramKeys(password string, salt []byte, iterations int) (stored, server []byte, err error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return nil, nil, fmt.Errorf("derive SCRAM key: %w", err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	sum := sha256.Sum256(clientKey)
	return sum[:], mac(salted, "Server Key"), nil
}

// scramMatches reports whether stored (a pg_authid.rolpassword value) is a SCRAM-SHA-256 verifier
// of password. Anything else (md5, NULL, malformed) does not match, so the password is set anew.
func scramMatches(stored, password string) bool {
	rest, ok := strings.CutPrefix(stored, "SCRAM-SHA-256$")
	if !ok {
		return false
	}
	iterSalt, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return false
	}
	iterS, saltS, ok := strings.Cut(iterSalt, ":")
	if !ok {
		return false
	}
	storedS, serverS, ok := strings.Cut(keys, ":")
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
	gotStored, gotServer, err := scramKeys(password, salt, iter)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(gotStored, wantStored) == 1 && subtle.ConstantTimeCompare(gotServer, wantServer) == 1
}
