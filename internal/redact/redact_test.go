package redact

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	r := New("s3cr3t-token", "p@ss w/rd", "", "abc")
	tests := []struct{ in, want string }{
		{"nothing here", "nothing here"},
		{"token s3cr3t-token rejected", "token [redacted] rejected"},
		{"twice s3cr3t-token,s3cr3t-token", "twice [redacted],[redacted]"},
		{"short secrets stay: abc", "short secrets stay: abc"},
		{"dial redis://user:p%40ss%20w%2Frd@host:6379/0: refused", "dial redis://[redacted]@host:6379/0: refused"},
		{"raw p@ss w/rd and escaped p%40ss+w%2Frd", "raw [redacted] and escaped [redacted]"},
		{"unknown creds https://bob:hunter2@example.com/x", "unknown creds https://[redacted]@example.com/x"},
		{"user only redis://tok@h:1", "user only redis://[redacted]@h:1"},
		// A user name or password that is not URL-escaped may hold / ? or #:
		// everything up to the last @ of the URL is taken as user info, so
		// an @ in a path is redacted up to it, which costs only readability.
		{"unescaped redis://user:12/TopSecretPart@redis.example.com:6379/0 refused", "unescaped redis://[redacted]@redis.example.com:6379/0 refused"},
		{"unescaped redis://user:12?TopSecretPart@redis.example.com:6379/0", "unescaped redis://[redacted]@redis.example.com:6379/0"},
		{"unescaped redis://user:12#TopSecretPart@h:1", "unescaped redis://[redacted]@h:1"},
		{"unescaped redis://a/b?c#d@e/f@h:1/0", "unescaped redis://[redacted]@h:1/0"},
		{"an @ in a path http://example.com/a@b", "an @ in a path http://[redacted]@b"},
		{"no creds http://example.com/a/b?c=d", "no creds http://example.com/a/b?c=d"},
		{"two redis://u:p/w@h:1 and https://x:y?z@k/l", "two redis://[redacted]@h:1 and https://[redacted]@k/l"},
		{"Authorization: Bearer zzzzzzzzzzzz sent", "Authorization: Bearer [redacted] sent"},
		{"authorization: bearer zzzz", "authorization: bearer [redacted]"},
		{"send it as Authorization: Bearer <key>", "send it as Authorization: Bearer <key>"},
		{`quoted "p@ss w/rd"`, `quoted "[redacted]"`},
	}
	for _, tt := range tests {
		if got := r.String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	var nilR *Redactor
	if got := nilR.String("x https://a:b@h y s3cr3t-token"); got != "x https://[redacted]@h y s3cr3t-token" {
		t.Errorf("nil Redactor: %q", got)
	}
	if got := String("a s3cr3t-token", []string{"s3cr3t-token"}); got != "a [redacted]" {
		t.Errorf("String shorthand: %q", got)
	}
}

func TestSecretInsideAnother(t *testing.T) {
	r := New("abcd", "xxabcdxx")
	if got := r.String("key xxabcdxx"); got != "key [redacted]" {
		t.Errorf("got %q: the longer secret must go first, or part of it stays", got)
	}
}

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

type config struct {
	Name, Token string
}

type valuer struct{}

func (valuer) LogValue() slog.Value { return slog.StringValue("lazy SECRET-VALUE") }

func TestHandler(t *testing.T) {
	const secret = "SECRET-VALUE"
	r := New(secret)
	for _, kind := range []string{"text", "json"} {
		t.Run(kind, func(t *testing.T) {
			var b bytes.Buffer
			var next slog.Handler = slog.NewTextHandler(&b, nil)
			if kind == "json" {
				next = slog.NewJSONHandler(&b, nil)
			}
			log := slog.New(NewHandler(next, r))
			log.Info("message with SECRET-VALUE",
				"string", "in SECRET-VALUE a string",
				"error", fmt.Errorf("wrapped: %w", errors.New("dial redis://u:SECRET-VALUE@h:1")),
				"stringer", stringer{"SECRET-VALUE"},
				"struct", config{Name: "n", Token: secret},
				"bytes", []byte("b SECRET-VALUE"),
				"valuer", valuer{},
				slog.Group("group", "inner", "SECRET-VALUE", slog.Group("deeper", "x", "Bearer abcdefgh")),
				"int", 42, "plain", "kept")
			log.With("with", "SECRET-VALUE").WithGroup("g").Warn("w", "k", "SECRET-VALUE")
			out := b.String()
			if strings.Contains(out, secret) || strings.Contains(out, "abcdefgh") {
				t.Errorf("a secret got through:\n%s", out)
			}
			for _, want := range []string{"message with [redacted]", "kept", "42", "[redacted]"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestHandlerEnabled(t *testing.T) {
	h := NewHandler(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}), nil)
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelError) {
		t.Error("Enabled does not follow the next handler")
	}
}

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := Writer(&b, New("hunter22"))
	n, err := fmt.Fprintf(w, "password hunter22 in a line\n")
	if err != nil || n != len("password hunter22 in a line\n") {
		t.Fatalf("Fprintf = %d, %v", n, err)
	}
	fmt.Fprintf(w, "clean line\n")
	if got, want := b.String(), "password [redacted] in a line\nclean line\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestShortSecretsOnlyWhereTheyStandAlone: a secret shorter than a real
// key is replaced where it stands alone, never inside a longer word; a
// secret of a key's length is replaced wherever it appears.
func TestShortSecretsOnlyWhereTheyStandAlone(t *testing.T) {
	r := New("pass", "hunter2", "Long-Secret-0123456789")
	for in, want := range map[string]string{
		"the password is wrong":  "the password is wrong",
		"AUTH pass failed":       "AUTH [redacted] failed",
		"pass":                   "[redacted]",
		"user:pass@host":         "user:[redacted]@host",
		`{"password":"hunter2"}`: `{"password":"[redacted]"}`,
		"hunter22 and xhunter2 stay, hunter2 not": "hunter22 and xhunter2 stay, [redacted] not",
		"passpass, pass.":                         "passpass, [redacted].",
		"inside xLong-Secret-0123456789y too":     "inside x[redacted]y too",
		"é-pass-é and épass":                      "é-[redacted]-é and épass",
	} {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}
