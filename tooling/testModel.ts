import { EMBEDDED_MODEL_PATH } from '../server/config.js';

/** The model every test and benchmark runs on: MODEL_PATH when set, else the tiny model committed in models/. */
export const MODEL_PATH = process.env.MODEL_PATH || EMBEDDED_MODEL_PATH;
