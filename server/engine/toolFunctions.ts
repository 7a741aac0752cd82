import type { ChatModelFunctions, GbnfJsonSchema } from 'node-llama-cpp';
import type { ToolChoice, ToolDefinition } from './Engine.js';
import { toGrammarSchema } from './toGrammarSchema.js';

/**
 * The tools as node-llama-cpp functions, for 'auto': the chat wrapper documents them in the
 * prompt in the model's own format, and once the model starts a call, node-llama-cpp constrains
 * its name and parameters with a grammar built from these schemas.
 */
export function toolFunctions(tools: readonly ToolDefinition[]): ChatModelFunctions {
  const functions: Record<string, { description?: string; params: GbnfJsonSchema }> = {};
  for (const tool of tools)
    functions[tool.name] = {
      ...(tool.description === undefined ? {} : { description: tool.description }),
      params: grammarSchemaOf(tool),
    };
  return functions;
}

/**
 * The JSON an answer must be when a call is forced ('required' or a named tool):
 * `{"name": …, "arguments": …}` with the name one of the tools' and the arguments its schema's.
 * A grammar, rather than the wrapper's call prefix, because LlamaChat enters its function-call
 * mode only when the model itself writes that prefix; a grammar makes any model call, even one
 * with no chat template (stories260K). `name` comes first, so the call can be streamed.
 */
export function forcedCallSchema(tools: readonly ToolDefinition[], choice: ToolChoice): GbnfJsonSchema {
  const offered = typeof choice === 'object' ? tools.filter((tool) => tool.name === choice.name) : tools;
  const calls = offered.map(
    (tool): GbnfJsonSchema => ({
      type: 'object',
      properties: { name: { const: tool.name }, arguments: grammarSchemaOf(tool) },
      required: ['name', 'arguments'],
      additionalProperties: false,
    }),
  );
  const [only] = calls;
  return calls.length === 1 && only !== undefined ? only : { oneOf: calls };
}

function grammarSchemaOf(tool: ToolDefinition): GbnfJsonSchema {
  const converted = toGrammarSchema(tool.parameters);
  // The request's parser refused a schema that does not convert; this one was checked.
  if ('error' in converted) throw new Error(`tool ${tool.name}: ${converted.error.message}`);
  return converted.schema;
}
