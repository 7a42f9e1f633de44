// Drives the official @anthropic-ai/sdk client against tokenledger's
// proxy (PROXY_URL) and prints one JSON line per call.
import Anthropic from "@anthropic-ai/sdk";

const client = new Anthropic({
  baseURL: process.env.PROXY_URL + "/anthropic",
  apiKey: "sk-ant-test-provider-key",
  defaultHeaders: { "X-Tokenledger-Session": "s-anthropic" },
  maxRetries: 0,
});
const out = (o) => console.log(JSON.stringify(o));
const req = { model: "claude-sonnet-4-20250514", max_tokens: 64, messages: [{ role: "user", content: "Say hello" }], metadata: { user_id: "u-anthropic" } };

const msg = await client.messages.create(req);
out({ name: "messages", id: msg.id, text: msg.content[0].text, usageSeen: !!msg.usage });

const stream = client.messages.stream(req);
let text = "";
stream.on("text", (t) => { text += t; });
const final = await stream.finalMessage();
out({ name: "messages stream", id: final.id, text, usageSeen: final.usage.output_tokens > 0 });
