// Runs the Vercel AI SDK with its mock model and telemetry on, exporting
// spans with OpenTelemetry JS's OTLP exporter to tokenledger's
// POST /v1/traces (OTLP_URL, OTLP_KEY, OTLP_PROTOCOL=proto|json). It makes
// one generateText, one streamText and one two-step tool call, then prints
// one JSON line per provider call with the usage the mock reported.
import { generateText, streamText, tool, stepCountIs } from 'ai';
import { MockLanguageModelV3, simulateReadableStream } from 'ai/test';
import { z } from 'zod';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JSONExporter } from '@opentelemetry/exporter-trace-otlp-http';

const { OTLP_URL, OTLP_KEY, OTLP_PROTOCOL } = process.env;
const Exporter = OTLP_PROTOCOL === 'json' ? JSONExporter : ProtoExporter;
const exporter = new Exporter({ url: `${OTLP_URL}/v1/traces`, headers: { Authorization: `Bearer ${OTLP_KEY}` } });
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('aisdktest');

const calls = [];
// usage builds the mock's LanguageModelV3Usage and remembers it as one call.
function usage(name, model, id, input, cacheRead, output, reasoning) {
  calls.push({ name, model, id, input, cacheRead, output, reasoning });
  return {
    inputTokens: { total: input, noCache: input - cacheRead, cacheRead, cacheWrite: undefined },
    outputTokens: { total: output, text: output - reasoning, reasoning },
  };
}
const telemetry = (sessionId) => ({ isEnabled: true, tracer, metadata: { userId: 'ada', sessionId } });
const stop = { unified: 'stop', raw: 'stop' };

// 1. generateText: one provider call.
await generateText({
  model: new MockLanguageModelV3({
    provider: 'mock.chat', modelId: 'mock-gen',
    doGenerate: {
      content: [{ type: 'text', text: 'hello' }], finishReason: stop, warnings: [],
      usage: usage('generateText', 'mock-gen', 'resp-gen-1', 120, 100, 30, 5),
      response: { id: 'resp-gen-1', modelId: 'mock-gen', timestamp: new Date() },
    },
  }),
  prompt: 'Say hello', experimental_telemetry: telemetry('s-gen'),
});

// 2. streamText: one provider call, its usage in the stream's finish part.
const streamed = streamText({
  model: new MockLanguageModelV3({
    provider: 'mock.chat', modelId: 'mock-stream',
    doStream: {
      stream: simulateReadableStream({
        chunks: [
          { type: 'stream-start', warnings: [] },
          { type: 'response-metadata', id: 'resp-stream-1', modelId: 'mock-stream', timestamp: new Date() },
          { type: 'text-start', id: 't1' },
          { type: 'text-delta', id: 't1', delta: 'streamed ' },
          { type: 'text-delta', id: 't1', delta: 'text' },
          { type: 'text-end', id: 't1' },
          { type: 'finish', finishReason: stop, usage: usage('streamText', 'mock-stream', 'resp-stream-1', 40, 0, 12, 0) },
        ],
      }),
    },
  }),
  prompt: 'Stream something', experimental_telemetry: telemetry('s-stream'),
});
await streamed.consumeStream();
await streamed.text;

// 3. A two-step tool call: the model asks for the tool, then answers.
await generateText({
  model: new MockLanguageModelV3({
    provider: 'mock.chat', modelId: 'mock-tools',
    doGenerate: [
      {
        content: [{ type: 'tool-call', toolCallId: 'call-1', toolName: 'weather', input: JSON.stringify({ city: 'Paris' }) }],
        finishReason: { unified: 'tool-calls', raw: 'tool_calls' }, warnings: [],
        usage: usage('tool step 1', 'mock-tools', 'resp-tools-1', 200, 0, 20, 0),
        response: { id: 'resp-tools-1', modelId: 'mock-tools', timestamp: new Date() },
      },
      {
        content: [{ type: 'text', text: 'It is sunny in Paris.' }], finishReason: stop, warnings: [],
        usage: usage('tool step 2', 'mock-tools', 'resp-tools-2', 260, 200, 15, 3),
        response: { id: 'resp-tools-2', modelId: 'mock-tools', timestamp: new Date() },
      },
    ],
  }),
  tools: {
    weather: tool({
      description: 'The weather in a city',
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => ({ city, sky: 'sunny' }),
    }),
  },
  stopWhen: stepCountIs(2),
  prompt: 'Weather in Paris?', experimental_telemetry: telemetry('s-tools'),
});

await provider.forceFlush();
await provider.shutdown();
for (const c of calls) console.log(JSON.stringify(c));
