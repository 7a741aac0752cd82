import { z } from 'zod';
import { RequestId, ServerId } from './clientFrames.js';
import { ERROR_CODES } from './errorCodes.js';

export const Channel = z.enum(['content', 'reasoning']);
/**
 * Why an answer ended. 'interrupted': the server that ran it stopped (a crash, a kill) before it
 * finished; the text streamed until then is kept, and the session may go on.
 */
export const FinishReason = z.enum(['stop', 'length', 'cancelled', 'timeout', 'error', 'interrupted', 'tool_calls']);
/** A call the model made: `arguments` is JSON text matching the tool's `parameters` schema. */
export const ToolCall = z.object({ callId: z.string(), name: z.string(), arguments: z.string() });
export const HistoryMessage = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  content: z.string(),
  /** On an answer that called tools (finish 'tool_calls'): the calls, in order. */
  toolCalls: z.array(ToolCall).optional(),
  /** On a 'tool' message (a tool's result, its content): the call it answers. */
  callId: z.string().optional(),
  /** On an answer that did not simply stop: how it ended (cancelled, length, interrupted, …). */
  finish: FinishReason.optional(),
});

export const Welcome = z.object({
  type: z.literal('welcome'),
  protocol: z.string(),
  server: z.object({ name: z.string(), version: z.string() }),
  model: z.object({
    name: z.string(),
    contextSize: z.number().int(),
    /** True when the model takes a reasoning level (gpt-oss and other Harmony models). */
    reasoning: z.boolean(),
    /**
     * Which llama.cpp binary runs the model: 'prebuilt' (node-llama-cpp's, the default) or 'local'
     * (built from the bundled source by `npm run build:engine`). Absent behind upstream servers.
     */
    binary: z.enum(['prebuilt', 'local']).optional(),
  }),
  limits: z.object({
    maxFrameBytes: z.number().int(),
    maxMessageChars: z.number().int(),
    maxSessionsPerConnection: z.number().int(),
    maxTokens: z.number().int(),
    maxQueued: z.number().int(),
    /** Bounds on a chat.send's tools (TOOL_LIMITS); a tool result is bounded by maxMessageChars. */
    tools: z
      .object({
        maxTools: z.number().int(),
        maxNameChars: z.number().int(),
        maxDescriptionChars: z.number().int(),
        maxSchemaChars: z.number().int(),
        maxArgumentsChars: z.number().int(),
      })
      .optional(),
  }),
  connectionId: z.string(),
});

export const SessionOpened = z.object({
  type: z.literal('session.opened'),
  id: RequestId,
  sessionId: ServerId,
  resumeToken: z.string(),
  /** True when an existing session was reattached. */
  resumed: z.boolean(),
  history: z.array(HistoryMessage),
});

export const SessionClosed = z.object({
  type: z.literal('session.closed'),
  id: RequestId,
  sessionId: z.string(),
});

export const GenerationQueued = z.object({
  type: z.literal('generation.queued'),
  id: RequestId,
  genId: ServerId,
  sessionId: ServerId,
  /** 1-based place in the queue; 0 when a sequence is free and it starts at once. */
  position: z.number().int().min(0),
});

export const GenerationStarted = z.object({
  type: z.literal('generation.started'),
  genId: ServerId,
});

/** A token as text, with that text's UTF-8 bytes, and its log probability (≤ 0). */
export const TokenAlternative = z.object({
  token: z.string(),
  logprob: z.number().max(0),
  bytes: z.array(z.number().int().min(0).max(255)),
});

/** A generated token's log probability and the likeliest tokens at its place, likeliest first. */
export const TokenLogprob = TokenAlternative.extend({
  top: z.array(TokenAlternative),
});

export const Token = z.object({
  type: z.literal('token'),
  genId: ServerId,
  /** Tokens generated so far, this frame's included; a coalesced frame advances it by several. */
  seq: z.number().int().min(1),
  text: z.string(),
  channel: Channel,
  /** Only when the chat.send asked for `params.logprobs`: one entry per token of `text`, in order. */
  logprobs: z.array(TokenLogprob).optional(),
});

export const GenerationDone = z.object({
  type: z.literal('generation.done'),
  genId: ServerId,
  finish: FinishReason,
  usage: z.object({
    promptTokens: z.number().int(),
    completionTokens: z.number().int(),
    /** Prompt tokens whose KV cache was reused from the session's previous turn. */
    cachedPromptTokens: z.number().int(),
  }),
  timings: z.object({
    queuedMs: z.number(),
    /** Null when no token was produced. */
    ttftMs: z.number().nullable(),
    totalMs: z.number(),
  }),
  /** Present when finish is 'error'. */
  error: z.object({ code: z.enum(ERROR_CODES), message: z.string() }).optional(),
});

/**
 * A tool the model called, sent once its generation has ended with finish 'tool_calls' (just
 * before its `generation.done`). The client runs it and answers with `tool.result`.
 */
export const ToolCallFrame = z.object({
  type: z.literal('tool.call'),
  genId: ServerId,
  callId: z.string(),
  name: z.string(),
  /** JSON text that parses and matches the tool's `parameters` schema. */
  arguments: z.string(),
});

export const CancelAck = z.object({
  type: z.literal('cancel.ack'),
  id: RequestId,
  genId: z.string(),
  status: z.enum(['cancelled', 'not_found', 'already_done']),
  completionTokens: z.number().int(),
});

export const ErrorFrame = z.object({
  type: z.literal('error'),
  id: z.string().optional(),
  genId: z.string().optional(),
  code: z.enum(ERROR_CODES),
  message: z.string(),
  retryable: z.boolean(),
  retryAfterMs: z.number().int().optional(),
});

export const Pong = z.object({
  type: z.literal('pong'),
  id: RequestId,
});

export const RateLimitState = z.object({
  name: z.enum(['requests', 'tokens', 'concurrent', 'sessions', 'connections']),
  limit: z.number().int(),
  remaining: z.number().int(),
  /** Milliseconds until `remaining` is back at `limit` (0 for counts that free when something ends). */
  resetMs: z.number().int(),
});

/** Sent after each generation: where the client stands against its key's limits. */
export const RateLimits = z.object({
  type: z.literal('rate_limits'),
  limits: z.array(RateLimitState),
});

export const ServerNotice = z.object({
  type: z.literal('server.notice'),
  kind: z.literal('shutdown'),
  graceMs: z.number().int(),
});

export const ServerFrame = z.discriminatedUnion('type', [
  Welcome,
  SessionOpened,
  SessionClosed,
  GenerationQueued,
  GenerationStarted,
  Token,
  GenerationDone,
  ToolCallFrame,
  CancelAck,
  ErrorFrame,
  Pong,
  RateLimits,
  ServerNotice,
]);

export type Channel = z.infer<typeof Channel>;
export type FinishReason = z.infer<typeof FinishReason>;
export type HistoryMessage = z.infer<typeof HistoryMessage>;
export type ToolCall = z.infer<typeof ToolCall>;
export type Welcome = z.infer<typeof Welcome>;
export type SessionOpened = z.infer<typeof SessionOpened>;
export type SessionClosed = z.infer<typeof SessionClosed>;
export type GenerationQueued = z.infer<typeof GenerationQueued>;
export type GenerationStarted = z.infer<typeof GenerationStarted>;
export type Token = z.infer<typeof Token>;
export type TokenAlternative = z.infer<typeof TokenAlternative>;
export type TokenLogprob = z.infer<typeof TokenLogprob>;
export type GenerationDone = z.infer<typeof GenerationDone>;
export type CancelAck = z.infer<typeof CancelAck>;
export type ToolCallFrame = z.infer<typeof ToolCallFrame>;
export type ErrorFrame = z.infer<typeof ErrorFrame>;
export type Pong = z.infer<typeof Pong>;
export type ServerNotice = z.infer<typeof ServerNotice>;
export type RateLimitState = z.infer<typeof RateLimitState>;
export type RateLimits = z.infer<typeof RateLimits>;
export type ServerFrame = z.infer<typeof ServerFrame>;
