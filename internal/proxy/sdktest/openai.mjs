// Drives the official openai client against tokenledger's proxy
// (PROXY_URL) and prints one JSON line per call: its response id, the
// text the client got and whether a usage chunk reached it.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.PROXY_URL + "/openai/v1",
  apiKey: "sk-test-provider-key",
  defaultHeaders: { "X-Tokenledger-User": "u-openai", "X-Tokenledger-Session": "s-openai" },
  maxRetries: 0,
});
const out = (o) => console.log(JSON.stringify(o));
const messages = [{ role: "user", content: "Say hello" }];

const chat = await client.chat.completions.create({ model: "gpt-4o", messages });
out({ name: "chat", id: chat.id, text: chat.choices[0].message.content, usageSeen: !!chat.usage });

for (const includeUsage of [false, true]) {
  const req = { model: "gpt-4o", messages, stream: true };
  if (includeUsage) req.stream_options = { include_usage: true };
  const stream = await client.chat.completions.create(req);
  let id = "", text = "", usageSeen = false;
  for await (const chunk of stream) {
    id = chunk.id;
    if (chunk.usage) usageSeen = true;
    for (const c of chunk.choices) text += c.delta?.content ?? "";
  }
  out({ name: includeUsage ? "chat stream with usage" : "chat stream", id, text, usageSeen });
}

const resp = await client.responses.create({ model: "o4-mini", input: "Say hello" });
out({ name: "responses", id: resp.id, text: resp.output_text, usageSeen: !!resp.usage });

const rs = await client.responses.create({ model: "o4-mini", input: "Say hello", stream: true });
let rid = "", rtext = "", rusage = false;
for await (const ev of rs) {
  if (ev.type === "response.output_text.delta") rtext += ev.delta;
  if (ev.type === "response.completed") { rid = ev.response.id; rusage = !!ev.response.usage; }
}
out({ name: "responses stream", id: rid, text: rtext, usageSeen: rusage });
