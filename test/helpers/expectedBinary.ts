import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineBinary } from '../../server/engine/Engine.js';

const LOCAL_BUILDS = fileURLToPath(new URL('../../node_modules/node-llama-cpp/llama/localBuilds', import.meta.url));

/**
 * The binary a test server loads: 'local' where `npm run build:engine` has finished a build here
 * (node-llama-cpp marks one with buildDone.status), else the prebuilt one, as in CI.
 */
export function expectedBinary(): EngineBinary {
  if (!existsSync(LOCAL_BUILDS)) return 'prebuilt';
  const done = readdirSync(LOCAL_BUILDS).some((build) => existsSync(join(LOCAL_BUILDS, build, 'buildDone.status')));
  return done ? 'local' : 'prebuilt';
}
