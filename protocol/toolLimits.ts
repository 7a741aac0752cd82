/**
 * Bounds on the tools of one request (protocol v1 `chat.send` and HTTP alike), sent in
 * `welcome.limits.tools`. A tool's result is a message: `maxMessageChars` bounds it.
 */
export const TOOL_LIMITS = {
  /** Tools one request may offer. */
  maxTools: 64,
  /** A tool's name: also limited to letters, digits, `_` and `-` (OpenAI's rule). */
  maxNameChars: 64,
  maxDescriptionChars: 4096,
  /** A tool's `parameters` schema, as JSON. */
  maxSchemaChars: 16_384,
  /** A call's `arguments` sent back in a history, as JSON text. */
  maxArgumentsChars: 32_768,
} as const;

/** The names a tool may have. */
export const TOOL_NAME = /^[A-Za-z0-9_-]+$/;
