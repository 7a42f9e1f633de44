// Package redisurl holds the checks of a redis:// URL that the
// configuration (before anything connects) and the Redis store (when it
// opens) share, so that both refuse the same URLs.
package redisurl

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// CheckUserInfo refuses a scheme://… URL that holds an @ after the first
// /, ? or # following "://": a user name or password with one of those
// characters not URL-escaped, which url.Parse would split into a host and
// a path, query or fragment (redis://u:12/pw@host reads as host u, port
// 12, path /pw@host). The error, naming the URL as what, repeats none of
// it. Once it passes, the port, path and query url.Parse finds hold no
// part of the user info, and messages may quote them.
func CheckUserInfo(what, raw string) error {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 && strings.Contains(rest[i:], "@") {
		return fmt.Errorf("%s has an @ after a /, ? or # of its address; URL-escape those characters in the user name and password (/ as %%2F, ? as %%3F, # as %%23)", what)
	}
	return nil
}

// Setting is what tokenledger sets itself in place of a URL option.
type Setting int

const (
	// Timeouts: the dial, read and write timeouts (TOKENLEDGER_DB_TIMEOUT).
	Timeouts Setting = iota + 1
	// Protocol: RESP2, whose replies have the REST API's shape.
	Protocol
	// Retries: go-redis's retries are off, so that a failure surfaces
	// within the timeouts.
	Retries
)

// CheckOptions refuses a URL whose query q sets an option that go-redis
// reads and tokenledger sets itself: the store would overwrite it without
// a word (options it leaves to the URL, pool_size, client_name …, pass).
// The error names the first such option in name order, and what, the
// URL; reasons says why per Setting, in the caller's words.
func CheckOptions(what string, q url.Values, reasons map[Setting]string) error {
	for _, opt := range slices.Sorted(maps.Keys(q)) {
		if set, ok := overridden[opt]; ok {
			return fmt.Errorf("%s must not set %s: %s", what, opt, reasons[set])
		}
	}
	return nil
}

// overridden maps each URL option that tokenledger sets itself to what
// it sets in its place.
var overridden = map[string]Setting{
	"dial_timeout":      Timeouts,
	"read_timeout":      Timeouts,
	"write_timeout":     Timeouts,
	"protocol":          Protocol,
	"max_retries":       Retries,
	"min_retry_backoff": Retries,
	"max_retry_backoff": Retries,
}
