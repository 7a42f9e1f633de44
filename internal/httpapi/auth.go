package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
)

// access is what a request wants to do with /api/tokens.
type access int

const (
	accessWrite access = iota // POST: needs APIKey when it is set
	accessRead                // GET, HEAD: needs ReadKey (or APIKey) when ReadKey is set
	accessAdmin               // DELETE: needs AdminKey, refused without one
)

// keyring holds the SHA-256 digests of the keys that grant one access.
type keyring [][sha256.Size]byte

func newKeyring(keys ...string) keyring {
	var k keyring
	for _, key := range keys {
		if key != "" {
			k = append(k, sha256.Sum256([]byte(key)))
		}
	}
	return k
}

// match reports whether key is one of the ring's keys. It compares
// fixed-length digests in constant time and always compares with every
// key, so that neither a key's content, its length nor which key matched
// leaks through timing.
func (k keyring) match(key string) bool {
	got := sha256.Sum256([]byte(key))
	ok := 0
	for i := range k {
		ok |= subtle.ConstantTimeCompare(got[:], k[i][:])
	}
	return ok == 1
}

// credential returns the key r carries: "Authorization: Bearer <key>"
// (the scheme in any case), else the X-API-Key header. It returns "" when
// there is none. An Authorization header of another scheme (a proxy's
// Basic, say) is not a key and is ignored.
func credential(r *http.Request) string {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, key, _ := strings.Cut(auth, " ")
		if strings.EqualFold(scheme, "Bearer") {
			if key = strings.TrimSpace(key); key != "" {
				return key
			}
		}
	}
	return strings.TrimSpace(r.Header.Get("X-API-Key"))
}

// guard describes, for one access, which keys are accepted and what to
// say when a request has none or a wrong one.
type guard struct {
	keys keyring
	// disabled, when not empty, refuses every request with 403 and this
	// sentence (reset without an admin key).
	disabled string
	missing  string // 401
	wrong    string // 403
}

// guards returns the rules of each access from the server's keys.
func (s *server) guards() map[access]guard {
	g := map[access]guard{
		accessWrite: {
			missing: "Logging usage needs the API key: send it as Authorization: Bearer <TOKENLEDGER_API_KEY> (or in X-API-Key)",
			wrong:   "The API key is wrong; nothing was stored",
		},
		accessRead: {
			missing: "Reading usage needs a key: send TOKENLEDGER_READ_KEY or TOKENLEDGER_API_KEY as Authorization: Bearer <key> (or in X-API-Key)",
			wrong:   "The key is wrong; reading usage needs TOKENLEDGER_READ_KEY or TOKENLEDGER_API_KEY",
		},
		accessAdmin: {
			missing: "Reset needs the admin key as Authorization: Bearer <TOKENLEDGER_ADMIN_KEY>",
			wrong:   "The admin key is wrong; nothing was reset",
		},
	}
	w := g[accessWrite]
	w.keys = newKeyring(s.APIKey)
	g[accessWrite] = w
	r := g[accessRead]
	if s.ReadKey != "" {
		r.keys = newKeyring(s.ReadKey, s.APIKey)
	}
	g[accessRead] = r
	a := g[accessAdmin]
	a.keys = newKeyring(s.AdminKey)
	if s.AdminKey == "" {
		a.disabled = "Reset is disabled: set TOKENLEDGER_ADMIN_KEY on the server and send it as Authorization: Bearer <key>"
	}
	g[accessAdmin] = a
	return g
}

// requireKey lets a request through to next only when it carries a key
// that grants what; without keys for it (write, read) everyone may.
// Missing key: 401 with WWW-Authenticate; wrong key: 403, logged without
// the key.
func (s *server) requireKey(what access, next http.Handler) http.Handler {
	g := s.guards()[what]
	if len(g.keys) == 0 && g.disabled == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.disabled != "" {
			writeError(w, http.StatusForbidden, g.disabled)
			return
		}
		key := credential(r)
		if key == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tokenledger"`)
			writeError(w, http.StatusUnauthorized, g.missing)
			return
		}
		if !g.keys.match(key) {
			s.logRefusal(r.Context(), slog.LevelWarn, "refused a request with a wrong key",
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("remote", r.RemoteAddr))
			writeError(w, http.StatusForbidden, g.wrong)
			return
		}
		next.ServeHTTP(w, r)
	})
}
