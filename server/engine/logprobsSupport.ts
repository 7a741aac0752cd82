import type { LogprobsParams, Refusal } from '../../protocol/index.js';
import type { EngineInfo } from './Engine.js';

/**
 * Above this many tokens in the vocabulary, alternatives (`top` > 0) are refused: node-llama-cpp
 * 3.21.1 can only hand over a token's whole distribution, copied on the event loop, and with
 * gpt-oss's 201,088 tokens that held every other stream back 80–350 ms a token (measured with
 * bench/logprobsCost.ts). The sampled token's own logprob (`top` 0) costs little at any size.
 */
export const MAX_VOCABULARY_FOR_ALTERNATIVES = 65_536;

/**
 * Why logprobs cannot be given, or undefined when they can. A pool of upstream servers would need
 * each one's logprobs forwarded and mapped back (llama-server and vLLM shape them differently):
 * until that is done, a request for them is refused there, naming the field, rather than answered
 * without them. `fields` name the request's fields, for the message.
 */
export function refuseLogprobs(
  info: EngineInfo,
  vocabularySize: number | undefined,
  logprobs: LogprobsParams,
  fields: { logprobs: string; top: string },
): Refusal | undefined {
  if (info.backend === 'upstream')
    return unsupported(fields.logprobs, 'log probabilities are not supported in front of upstream engines');
  if (logprobs.top > 0 && vocabularySize !== undefined && vocabularySize > MAX_VOCABULARY_FOR_ALTERNATIVES)
    return unsupported(
      fields.top,
      `alternatives are not served for this model: its vocabulary of ${vocabularySize} tokens would be ` +
        "copied for every token, holding every other answer back; ask for 0 (the sampled token's own logprob)",
    );
  return undefined;
}

function unsupported(param: string, why: string): Refusal {
  return { code: 'unsupported_parameter', message: `${param}: ${why}`, param };
}
