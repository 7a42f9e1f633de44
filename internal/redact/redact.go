// Package redact removes secrets from text before anyone sees it: from
// log records (Handler, a slog.Handler), from output streams (Writer) and
// from single messages (Redactor.String).
//
// Three kinds of secret are removed:
//   - the configured secrets themselves (tokens, passwords, keys), also in
//     their URL-escaped forms;
//   - the credentials of any URL, "scheme://user:pass@host" →
//     "scheme://[redacted]@host", whether or not they are configured:
//     everything up to the URL's last @, so that a password that is not
//     URL-escaped and holds / ? or # goes whole;
//   - the credential after "Bearer " (any case), so that a token nobody
//     configured, such as a wrong key a client sent, is not repeated.
package redact

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mask replaces every secret.
const Mask = "[redacted]"

// MinSecretLength is the shortest configured secret that is redacted. A
// shorter one would be guessed in a moment anyway, and replacing every
// occurrence of two or three characters would make every line unreadable.
const MinSecretLength = 4

// AnywhereLength is the shortest secret replaced wherever it appears,
// inside a longer word too (as long as the shortest key tokenledger
// takes). A shorter one — a Redis password may be any length — is
// replaced only where it stands alone, not as part of a longer word or
// number: a password "pass" must not turn "password" into "[redacted]word".
const AnywhereLength = 16

// Redactor removes a fixed set of secrets, URL credentials and bearer
// credentials from text. A nil *Redactor removes only URL and bearer
// credentials. It is safe for concurrent use.
type Redactor struct {
	secrets []string // longest first, so that a secret inside another goes too
}

// New returns a Redactor for secrets. Empty and short (< MinSecretLength)
// values are ignored; the URL-escaped forms of each secret are added.
func New(secrets ...string) *Redactor {
	var list []string
	add := func(s string) {
		if len(s) >= MinSecretLength && !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	for _, s := range secrets {
		add(s)
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
		add(url.UserPassword("x", s).String()[2:]) // as it appears inside a URL's user info
		add(quoted(s))                             // as it appears inside a JSON or quoted log value
	}
	slices.SortStableFunc(list, func(a, b string) int { return len(b) - len(a) })
	return &Redactor{secrets: list}
}

// quoted returns s as it appears inside a JSON string (without the
// quotes), which is also how slog's text handler quotes it.
func quoted(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// String returns s with every secret replaced by Mask.
func (r *Redactor) String(s string) string {
	if r != nil {
		for _, sec := range r.secrets {
			if !strings.Contains(s, sec) {
				continue
			}
			if len(sec) >= AnywhereLength {
				s = strings.ReplaceAll(s, sec, Mask)
			} else {
				s = replaceAlone(s, sec)
			}
		}
	}
	return redactBearer(redactURLCredentials(s))
}

// replaceAlone replaces each occurrence of sec in s that stands alone:
// neither the character before it nor the one after it is a letter or a
// digit.
func replaceAlone(s, sec string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, sec)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(sec)
		before, _ := utf8.DecodeLastRuneInString(s[:i])
		after, _ := utf8.DecodeRuneInString(s[end:])
		if (i > 0 && isWordRune(before)) || (end < len(s) && isWordRune(after)) {
			b.WriteString(s[:i+1]) // not alone: look again one byte on
			s = s[i+1:]
			continue
		}
		b.WriteString(s[:i] + Mask)
		s = s[end:]
	}
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// String removes secrets, URL credentials and bearer credentials from
// msg: a shorthand for New(secrets...).String(msg).
func String(msg string, secrets []string) string {
	return New(secrets...).String(msg)
}

// redactURLCredentials replaces the user info of any URL in msg
// ("scheme://user:pass@host") with "[redacted]@". The user info is
// everything from "://" to the last @ of the URL, which ends at white
// space, a quote or an angle bracket: a password that is not URL-escaped
// may hold /, ? or #, so the URL's structure cannot be trusted to say
// where the user info ends. An @ in a path is redacted up to it too,
// which costs readability, never a secret.
func redactURLCredentials(msg string) string {
	if !strings.Contains(msg, "://") {
		return msg
	}
	var b strings.Builder
	for {
		i := strings.Index(msg, "://")
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		b.WriteString(msg[:i+3])
		rest := msg[i+3:]
		end := strings.IndexAny(rest, " \t\r\n\"'<>`")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			b.WriteString(Mask + "@")
			rest = rest[at+1:]
		}
		msg = rest
	}
}

// redactBearer replaces the credential after "Bearer " (any case) with
// Mask. Placeholders in help texts ("Bearer <key>") and an already
// redacted credential stay as they are.
func redactBearer(msg string) string {
	const word = "bearer "
	lower := strings.ToLower(msg)
	if !strings.Contains(lower, word) {
		return msg
	}
	var b strings.Builder
	for {
		i := strings.Index(lower, word)
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		start := i + len(word)
		b.WriteString(msg[:start])
		rest, lrest := msg[start:], lower[start:]
		end := strings.IndexAny(rest, " \t\r\n\"'`,;)")
		if end < 0 {
			end = len(rest)
		}
		if cred := rest[:end]; cred != "" && cred != Mask && !strings.HasPrefix(cred, "<") && !strings.HasPrefix(cred, "…") {
			b.WriteString(Mask)
		} else {
			b.WriteString(cred)
		}
		msg, lower = rest[end:], lrest[end:]
	}
}

// Writer returns an io.Writer that writes to w what it is given with
// every secret removed. Each Write is redacted on its own, so a secret
// split across two writes is not found: loggers and fmt.Fprint* write
// whole lines, which is what it is meant for. Write reports len(p) on
// success, whatever the redacted length.
func Writer(w io.Writer, r *Redactor) io.Writer { return &writer{w: w, r: r} }

type writer struct {
	w io.Writer
	r *Redactor
}

func (w *writer) Write(p []byte) (int, error) {
	s := string(p)
	if red := w.r.String(s); red != s {
		if _, err := io.WriteString(w.w, red); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return w.w.Write(p)
}

// Handler is a slog.Handler that removes secrets from the message and
// from every attribute value (strings, errors, Stringers, anything
// formatted, inside groups too) before passing the record on.
type Handler struct {
	next slog.Handler
	r    *Redactor
}

// NewHandler returns a Handler that redacts with r and hands records to
// next.
func NewHandler(next slog.Handler, r *Redactor) *Handler {
	return &Handler{next: next, r: r}
}

// Enabled reports whether the next handler handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle redacts rec and passes it on.
func (h *Handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs returns a Handler whose next handler has the redacted attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &Handler{next: h.next.WithAttrs(red), r: h.r}
}

// WithGroup returns a Handler whose next handler opens group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), r: h.r}
}

// attr returns a with its value redacted.
func (h *Handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(h.r.String(v.String()))
	case slog.KindGroup:
		group := v.Group()
		red := make([]slog.Attr, len(group))
		for i, g := range group {
			red[i] = h.attr(g)
		}
		a.Value = slog.GroupValue(red...)
	case slog.KindAny:
		var s string
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		case []byte:
			s = string(x)
		default:
			s = fmt.Sprintf("%+v", x)
		}
		if red := h.r.String(s); red != s {
			a.Value = slog.StringValue(red)
		} else {
			a.Value = v
		}
	default:
		a.Value = v
	}
	return a
}
