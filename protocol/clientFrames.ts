import { z } from 'zod';

/** A client-chosen request id, echoed in every reply to that request. */
export const RequestId = z.string().min(1).max(64);
/** Server-issued ids (sessions, generations). */
export const ServerId = z.string().min(1).max(64);

export const ReasoningLevel = z.enum(['low', 'medium', 'high']);

/**
 * What the answer must be: free text (the default), any JSON object, or JSON valid against a
 * schema (constrained by a grammar built from it, so it always parses; a schema with constructs
 * the grammar cannot enforce is refused with `bad_frame` naming them).
 */
export const ResponseFormat = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('text') }),
  z.strictObject({ type: z.literal('json_object') }),
  z.strictObject({
    type: z.literal('json_schema'),
    /** A JSON Schema; `name` is for the caller's own bookkeeping. */
    schema: z.record(z.string(), z.unknown()),
    name: z.string().min(1).max(64).optional(),
  }),
]);

/**
 * Sampling and length parameters of one generation. Unknown keys are refused (a typo such as
 * `temprature` gets a clear error instead of being ignored).
 */
/**
 * Opt-in log probabilities: each token frame then carries `logprobs`, one entry per token, with the
 * `top` likeliest alternatives (0–20) at that position.
 */
export const LogprobsParams = z.strictObject({
  top: z.number().int().min(0).max(20),
});

/**
 * A function the model may call: a name (letters, digits, `_`, `-`; see TOOL_LIMITS), what it
 * does, and a JSON Schema of its arguments, which the grammar must be able to enforce (else
 * `bad_frame` naming the tool and the construct).
 */
export const ToolDefinition = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  parameters: z.record(z.string(), z.unknown()),
});

/**
 * 'auto' (the model decides; the default), 'none' (no tools offered), 'required' (one call of any
 * tool, forced), or `{name}` (one call of that tool, forced). A forced choice applies to the first
 * generation of a turn only: the one that follows the results runs with 'auto'.
 */
export const ToolChoice = z.union([z.enum(['auto', 'none', 'required']), z.strictObject({ name: z.string().min(1) })]);

export const GenerationParams = z.strictObject({
  maxTokens: z.number().int().min(1).max(1_000_000).optional(),
  temperature: z.number().min(0).max(2).optional(),
  topP: z.number().gt(0).max(1).optional(),
  topK: z.number().int().min(0).max(1000).optional(),
  minP: z.number().min(0).max(1).optional(),
  seed: z.number().int().min(0).max(4_294_967_295).optional(),
  stop: z.array(z.string().min(1).max(64)).max(8).optional(),
  reasoning: ReasoningLevel.optional(),
  /**
   * Which model answers, by its name in `GET /v1/models`; defaults to `welcome.model`. Only a
   * server in front of upstream engines serves more than one; an unknown name gets `not_found`.
   */
  model: z.string().min(1).max(256).optional(),
  responseFormat: ResponseFormat.optional(),
  /** Tools the model may call: its calls come as `tool.call` frames, answered with `tool.result`. */
  tools: z.array(ToolDefinition).optional(),
  toolChoice: ToolChoice.optional(),
  /** Whether one answer may call several tools (under 'auto'). Defaults to true. */
  parallelToolCalls: z.boolean().optional(),
  logprobs: LogprobsParams.optional(),
});

export const SessionOpen = z.object({
  type: z.literal('session.open'),
  id: RequestId,
  sessionId: ServerId.optional(),
  resumeToken: z.string().min(1).max(128).optional(),
  system: z.string().optional(),
});

/**
 * Leaves a session on this connection. It stays reattachable elsewhere until it expires, unless
 * `forget` is true: then it is deleted, and its place and characters go back to the key's budget.
 */
export const SessionClose = z.object({
  type: z.literal('session.close'),
  id: RequestId,
  sessionId: ServerId,
  forget: z.boolean().optional(),
});

export const ChatSend = z.object({
  type: z.literal('chat.send'),
  id: RequestId,
  sessionId: ServerId,
  content: z.string().min(1),
  params: GenerationParams.optional(),
});

export const GenerationCancel = z.object({
  type: z.literal('generation.cancel'),
  id: RequestId,
  genId: ServerId,
});

export const GenerationResume = z.object({
  type: z.literal('generation.resume'),
  id: RequestId,
  genId: ServerId,
  /** The last `seq` the client holds; 0 replays everything. */
  afterSeq: z.number().int().min(0),
});

/**
 * The result of a tool the model called (`tool.call`), as text (at most `maxMessageChars`). Once
 * every call of the answer has its result, the server runs the next generation of the turn, with
 * the calls and results in the history, announced as a `chat.send` is: `generation.queued` with
 * this frame's `id` and a new `genId`. A result that leaves calls waiting gets no reply.
 */
export const ToolResult = z.object({
  type: z.literal('tool.result'),
  id: RequestId,
  sessionId: ServerId,
  callId: z.string().min(1).max(128),
  content: z.string(),
});

export const Ping = z.object({
  type: z.literal('ping'),
  id: RequestId,
});

export const ClientFrame = z.discriminatedUnion('type', [
  SessionOpen,
  SessionClose,
  ChatSend,
  GenerationCancel,
  GenerationResume,
  ToolResult,
  Ping,
]);

export type GenerationParams = z.infer<typeof GenerationParams>;
export type ReasoningLevel = z.infer<typeof ReasoningLevel>;
export type LogprobsParams = z.infer<typeof LogprobsParams>;
export type ResponseFormat = z.infer<typeof ResponseFormat>;
export type SessionOpen = z.infer<typeof SessionOpen>;
export type SessionClose = z.infer<typeof SessionClose>;
export type ChatSend = z.infer<typeof ChatSend>;
export type GenerationCancel = z.infer<typeof GenerationCancel>;
export type GenerationResume = z.infer<typeof GenerationResume>;
export type Ping = z.infer<typeof Ping>;
export type ToolDefinition = z.infer<typeof ToolDefinition>;
export type ToolChoice = z.infer<typeof ToolChoice>;
export type ToolResult = z.infer<typeof ToolResult>;
export type ClientFrame = z.infer<typeof ClientFrame>;
export type ClientFrameType = ClientFrame['type'];

export const CLIENT_FRAME_TYPES: readonly ClientFrameType[] = ClientFrame.options.map(
  (option) => option.shape.type.value,
);
