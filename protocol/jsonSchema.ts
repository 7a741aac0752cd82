import { z } from 'zod';
import { ClientFrame } from './clientFrames.js';
import { ServerFrame } from './serverFrames.js';
import { PROTOCOL_VERSION } from './version.js';

/** The JSON Schema of protocol v1, for clients in other languages. */
export function buildJsonSchema(): object {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: PROTOCOL_VERSION,
    description: 'Frames of the llm-chat WebSocket protocol; one JSON object per text message.',
    $defs: {
      ClientFrame: z.toJSONSchema(ClientFrame, { target: 'draft-2020-12' }),
      ServerFrame: z.toJSONSchema(ServerFrame, { target: 'draft-2020-12' }),
    },
  };
}

export const JSON_SCHEMA_FILE = new URL('./llm-chat.v1.schema.json', import.meta.url);
