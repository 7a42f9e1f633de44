// Drives the official @google/genai client against tokenledger's proxy
// (PROXY_URL) and prints one JSON line per call.
import { GoogleGenAI } from "@google/genai";

const ai = new GoogleGenAI({
  apiKey: "g-test-provider-key",
  httpOptions: { baseUrl: process.env.PROXY_URL + "/gemini", headers: { "X-Tokenledger-User": "u-gemini" } },
});
const out = (o) => console.log(JSON.stringify(o));

const res = await ai.models.generateContent({ model: "gemini-2.5-flash", contents: "Say hello" });
out({ name: "generateContent", id: res.responseId, text: res.text, usageSeen: !!res.usageMetadata });

const stream = await ai.models.generateContentStream({ model: "gemini-2.5-flash", contents: "Say hello" });
let id = "", text = "", usageSeen = false;
for await (const chunk of stream) {
  id = chunk.responseId;
  text += chunk.text ?? "";
  if (chunk.usageMetadata) usageSeen = true;
}
out({ name: "generateContentStream", id, text, usageSeen });
