package upstreamtest

import (
	"net/http"

	"github.com/tokenledger/tokenledger/capture"
)

type obj = map[string]any

// chat answers Chat Completions. A stream carries "usage": null in its
// chunks and a final usage chunk only when the request asked for it
// (stream_options.include_usage), as OpenAI's does.
func (s *Server) chat(w http.ResponseWriter, req request, fake string) {
	if failed(w, fake) {
		return
	}
	id, u := s.next("chatcmpl-", fake, req)
	u.ID, u.Model = id, req.Model+"-2025-01-01"
	usage := obj{
		"prompt_tokens": u.Prompt, "completion_tokens": u.Completion, "total_tokens": u.Prompt + u.Completion,
		"prompt_tokens_details":     obj{"cached_tokens": u.CacheRead, "audio_tokens": 0},
		"completion_tokens_details": obj{"reasoning_tokens": u.Reasoning, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
	}
	if !req.Stream {
		s.remember(id, Answer{Kind: capture.OpenAI, Usage: u, User: req.User})
		writeJSON(w, obj{"id": id, "object": "chat.completion", "created": 1741570283, "model": u.Model,
			"choices": []obj{{"index": 0, "message": obj{"role": "assistant", "content": Text, "refusal": nil}, "logprobs": nil, "finish_reason": "stop"}},
			"usage":   usage, "system_fingerprint": "fp_test"})
		return
	}
	withUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	if withUsage {
		s.remember(id, Answer{Kind: capture.OpenAI, Usage: u, User: req.User})
	}
	e := s.newSSE(w, fake)
	chunk := func(choices []obj) obj {
		c := obj{"id": id, "object": "chat.completion.chunk", "created": 1741570283, "model": u.Model, "system_fingerprint": "fp_test", "choices": choices}
		if withUsage {
			c["usage"] = nil
		}
		return c
	}
	e.send("", chunk([]obj{{"index": 0, "delta": obj{"role": "assistant", "content": ""}, "logprobs": nil, "finish_reason": nil}}))
	for _, d := range Deltas {
		e.send("", chunk([]obj{{"index": 0, "delta": obj{"content": d}, "logprobs": nil, "finish_reason": nil}}))
	}
	e.send("", chunk([]obj{{"index": 0, "delta": obj{}, "logprobs": nil, "finish_reason": "stop"}}))
	if withUsage {
		last := chunk([]obj{})
		last["usage"] = usage
		e.send("", last)
	}
	e.raw("", "[DONE]")
}

// responses answers the Responses API.
func (s *Server) responses(w http.ResponseWriter, req request, fake string) {
	if failed(w, fake) {
		return
	}
	id, u := s.next("resp_", fake, req)
	u.ID, u.Model = id, req.Model+"-2025-04-16"
	s.remember(id, Answer{Kind: capture.OpenAI, Usage: u, User: req.User})
	response := func(status string, withUsage bool) obj {
		r := obj{"id": id, "object": "response", "created_at": 1741476777, "status": status, "model": u.Model, "output": []obj{}, "usage": nil}
		if withUsage {
			r["output"] = []obj{{"type": "message", "id": "msg_" + id, "status": "completed", "role": "assistant",
				"content": []obj{{"type": "output_text", "text": Text, "annotations": []any{}}}}}
			r["usage"] = obj{"input_tokens": u.Prompt, "input_tokens_details": obj{"cached_tokens": u.CacheRead},
				"output_tokens": u.Completion, "output_tokens_details": obj{"reasoning_tokens": u.Reasoning}, "total_tokens": u.Prompt + u.Completion}
		}
		return r
	}
	if !req.Stream {
		writeJSON(w, response("completed", true))
		return
	}
	e := s.newSSE(w, fake)
	seq := 0
	ev := func(typ string, fields obj) {
		fields["type"], fields["sequence_number"] = typ, seq
		seq++
		e.send(typ, fields)
	}
	ev("response.created", obj{"response": response("in_progress", false)})
	for _, d := range Deltas {
		ev("response.output_text.delta", obj{"item_id": "msg_" + id, "output_index": 0, "content_index": 0, "delta": d})
	}
	ev("response.completed", obj{"response": response("completed", true)})
}

// messages answers Anthropic's Messages API: input_tokens without the
// cache fields; a stream's output count cumulative in message_delta.
func (s *Server) messages(w http.ResponseWriter, req request, fake string) {
	if failed(w, fake) {
		return
	}
	id, u := s.next("msg_", fake, req)
	u.ID, u.Model, u.Reasoning, u.CacheWrite = id, req.Model, 0, 256
	s.remember(id, Answer{Kind: capture.Anthropic, Usage: u, User: req.Metadata.UserID})
	input := u.Prompt - u.CacheRead - u.CacheWrite
	usage := func(output int64) obj {
		return obj{"input_tokens": input, "cache_creation_input_tokens": u.CacheWrite, "cache_read_input_tokens": u.CacheRead, "output_tokens": output}
	}
	if !req.Stream {
		writeJSON(w, obj{"id": id, "type": "message", "role": "assistant", "model": u.Model,
			"content": []obj{{"type": "text", "text": Text}}, "stop_reason": "end_turn", "stop_sequence": nil, "usage": usage(u.Completion)})
		return
	}
	e := s.newSSE(w, fake)
	e.send("message_start", obj{"type": "message_start", "message": obj{"id": id, "type": "message", "role": "assistant", "content": []any{},
		"model": u.Model, "stop_reason": nil, "stop_sequence": nil, "usage": usage(1)}})
	e.send("content_block_start", obj{"type": "content_block_start", "index": 0, "content_block": obj{"type": "text", "text": ""}})
	e.send("ping", obj{"type": "ping"})
	for _, d := range Deltas {
		e.send("content_block_delta", obj{"type": "content_block_delta", "index": 0, "delta": obj{"type": "text_delta", "text": d}})
	}
	e.send("content_block_stop", obj{"type": "content_block_stop", "index": 0})
	e.send("message_delta", obj{"type": "message_delta", "delta": obj{"stop_reason": "end_turn", "stop_sequence": nil}, "usage": obj{"output_tokens": u.Completion / 2}})
	e.send("message_delta", obj{"type": "message_delta", "delta": obj{"stop_reason": "end_turn", "stop_sequence": nil}, "usage": obj{"output_tokens": u.Completion}})
	e.send("message_stop", obj{"type": "message_stop"})
}

// gemini answers generateContent and streamGenerateContent: thoughts
// outside candidatesTokenCount; every chunk with the usage so far.
func (s *Server) gemini(w http.ResponseWriter, req request, model string, stream bool, fake string) {
	if failed(w, fake) {
		return
	}
	id, u := s.next("gem", fake, req)
	u.ID, u.Model = id, model
	s.remember(id, Answer{Kind: capture.Gemini, Usage: u})
	meta := func(candidates, thoughts int64) obj {
		return obj{"promptTokenCount": u.Prompt, "cachedContentTokenCount": u.CacheRead, "candidatesTokenCount": candidates,
			"thoughtsTokenCount": thoughts, "totalTokenCount": u.Prompt + candidates + thoughts}
	}
	chunk := func(text string, finish bool, m obj) obj {
		c := obj{"content": obj{"parts": []obj{{"text": text}}, "role": "model"}, "index": 0}
		if finish {
			c["finishReason"] = "STOP"
		}
		return obj{"candidates": []obj{c}, "usageMetadata": m, "modelVersion": model, "responseId": id}
	}
	candidates := u.Completion - u.Reasoning
	if !stream {
		writeJSON(w, chunk(Text, true, meta(candidates, u.Reasoning)))
		return
	}
	e := s.newSSE(w, fake)
	for i, d := range Deltas {
		last := i == len(Deltas)-1
		c, t := int64(i+1), u.Reasoning
		if last {
			c = candidates
		}
		e.send("", chunk(d, last, meta(c, t)))
	}
}
