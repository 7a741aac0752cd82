import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildJsonSchema, JSON_SCHEMA_FILE } from './jsonSchema.js';

writeFileSync(JSON_SCHEMA_FILE, `${JSON.stringify(buildJsonSchema(), null, 2)}\n`);
console.log(`wrote ${fileURLToPath(JSON_SCHEMA_FILE)}`);
