package kvrest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/tokenledger/tokenledger/store/internal/jsonenc"
	"github.com/tokenledger/tokenledger/store/redis/internal/wire"
)

// encodeCommands returns the request body for cmds: one command as a JSON
// array of strings, several as an array of such arrays (for /pipeline).
// Integers are sent as their decimal text, so that no JSON number is ever
// read as a float on the way. A string that is not valid UTF-8 is refused:
// JSON cannot carry it unchanged.
func encodeCommands(cmds [][]any) ([]byte, error) {
	b := make([]byte, 0, 64*len(cmds))
	if len(cmds) != 1 {
		b = append(b, '[')
	}
	for i, cmd := range cmds {
		if i > 0 {
			b = append(b, ',')
		}
		if len(cmd) == 0 {
			return nil, fmt.Errorf("command %d is empty", i+1)
		}
		b = append(b, '[')
		for j, arg := range cmd {
			if j > 0 {
				b = append(b, ',')
			}
			switch v := arg.(type) {
			case string:
				if !utf8.ValidString(v) {
					return nil, fmt.Errorf("command %d argument %d is not valid UTF-8, which JSON cannot carry unchanged", i+1, j+1)
				}
				b = jsonenc.AppendString(b, v)
			case int64:
				b = append(b, '"')
				b = strconv.AppendInt(b, v, 10)
				b = append(b, '"')
			case int:
				b = append(b, '"')
				b = strconv.AppendInt(b, int64(v), 10)
				b = append(b, '"')
			default:
				return nil, fmt.Errorf("command %d argument %d is a %T, want a string or an integer", i+1, j+1, arg)
			}
		}
		b = append(b, ']')
	}
	if len(cmds) != 1 {
		b = append(b, ']')
	}
	return b, nil
}

// answer is one {"result": …} or {"error": "…"} object.
type answer struct {
	Result json.RawMessage `json:"result"`
	Error  *string         `json:"error"`
}

// decodeReplies reads a 200 answer to n commands: one answer object for a
// single command, an array of n for a pipeline.
func decodeReplies(data []byte, n int) ([]any, error) {
	var answers []answer
	if n == 1 {
		var a answer
		if err := json.Unmarshal(data, &a); err != nil {
			return nil, fmt.Errorf("is not a JSON object: %v", err)
		}
		answers = []answer{a}
	} else if err := json.Unmarshal(data, &answers); err != nil {
		return nil, fmt.Errorf("is not a JSON array of results: %v", err)
	}
	if len(answers) != n {
		return nil, fmt.Errorf("holds %d results for %d commands", len(answers), n)
	}
	out := make([]any, n)
	for i, a := range answers {
		switch {
		case a.Error != nil:
			out[i] = wire.ReplyError(*a.Error)
		case a.Result == nil:
			return nil, fmt.Errorf("result %d has neither \"result\" nor \"error\"", i+1)
		default:
			v, err := decodeValue(a.Result)
			if err != nil {
				return nil, fmt.Errorf("result %d: %v", i+1, err)
			}
			out[i] = v
		}
	}
	return out, nil
}

// decodeValue turns a JSON result into a Doer reply: null → nil, an
// integer → int64, a string → string, an array → []any of those.
func decodeValue(raw json.RawMessage) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return convert(v)
}

func convert(v any) (any, error) {
	switch x := v.(type) {
	case nil, string:
		return x, nil
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, nil
		}
		return x.String(), nil // not an integer: keep its text, as RESP would
	case []any:
		for i, e := range x {
			c, err := convert(e)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	}
	return nil, errors.New("holds a JSON " + jsonKind(v) + ", which no Redis reply maps to")
}

func jsonKind(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
