import type { GbnfJsonSchema } from 'node-llama-cpp';

/** `path` is a JSON pointer into the schema ('' for its root). */
export type GrammarSchemaResult = { schema: GbnfJsonSchema } | { error: { path: string; message: string } };

/**
 * A client's JSON Schema as the subset node-llama-cpp's JSON-schema grammar enforces, or why it
 * cannot be: the grammar does not throw on what it does not know (an unknown `type` becomes
 * `null`, `anyOf` and `pattern` are dropped, a foreign `$ref` becomes any value), so a schema
 * taken as is could yield an answer that does not validate. Every assertion keyword the grammar
 * cannot enforce is refused here, naming it and where it is; annotations (`title`,
 * `description`, …) and unknown keywords are ignored, as validators ignore them.
 */
export function toGrammarSchema(schema: unknown): GrammarSchemaResult {
  try {
    return { schema: new Converter(schema).root() };
  } catch (error) {
    if (error instanceof UnsupportedSchema) return { error: { path: error.path, message: error.message } };
    throw error;
  }
}

class UnsupportedSchema extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

type Node = Readonly<Record<string, unknown>>;
type Mutable = { -readonly [K in keyof GbnfJsonSchema]: unknown } & Record<string, unknown>;

const MAX_DEPTH = 64;

/** Keywords that constrain a value in ways the grammar cannot. */
const REFUSED = new Set([
  'not',
  'if',
  'then',
  'else',
  'pattern',
  'patternProperties',
  'propertyNames',
  'dependentRequired',
  'dependentSchemas',
  'dependencies',
  'unevaluatedProperties',
  'unevaluatedItems',
  'contains',
  'minContains',
  'maxContains',
  'uniqueItems',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'additionalItems',
  '$dynamicRef',
  '$recursiveRef',
]);

/** Bounds that constrain nothing a JSON number can hold safely (zod writes them for every `z.int()`). */
function isNoOp(key: string, value: unknown): boolean {
  if (key === 'uniqueItems') return value === false;
  if (key === 'minimum') return value === Number.MIN_SAFE_INTEGER;
  if (key === 'maximum') return value === Number.MAX_SAFE_INTEGER;
  return false;
}

/** Keywords that only describe; with `$ref` or a combinator, anything else is refused. */
const ANNOTATIONS = new Set([
  'title',
  'description',
  '$schema',
  '$id',
  '$comment',
  'default',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$defs',
  'definitions',
]);

const FORMATS = new Set(['date', 'time', 'date-time']);
const SCALARS = new Set(['string', 'number', 'integer', 'boolean', 'null']);
const TYPES = new Set([...SCALARS, 'object', 'array']);

/** Any JSON value: the grammar's own `{}` means `null`. */
const ANY: GbnfJsonSchema = {
  oneOf: [
    { type: ['string', 'number', 'boolean', 'null'] },
    { type: 'object', additionalProperties: true },
    { type: 'array' },
  ],
};

class Converter {
  /** The root's definitions, converted; every `$ref` carries this one object. */
  private readonly defs: Record<string, GbnfJsonSchema> = {};
  private readonly rootDefs: Node;

  constructor(private readonly schema: unknown) {
    const root = isNode(schema) ? schema : {};
    const defs = { ...asNode(root.definitions, '/definitions'), ...asNode(root.$defs, '/$defs') };
    this.rootDefs = defs;
  }

  root(): GbnfJsonSchema {
    for (const [name, def] of Object.entries(this.rootDefs)) this.defs[name] = this.convert(def, `/$defs/${name}`, 1);
    return this.convert(this.schema, '', 0);
  }

  private convert(node: unknown, path: string, depth: number): GbnfJsonSchema {
    if (depth > MAX_DEPTH) throw new UnsupportedSchema(path, `nested deeper than ${MAX_DEPTH} levels`);
    if (node === true) return ANY;
    if (node === false) throw new UnsupportedSchema(path, 'the schema `false` accepts no value');
    if (!isNode(node)) throw new UnsupportedSchema(path, 'a schema must be an object or a boolean');
    for (const [key, value] of Object.entries(node)) {
      if (REFUSED.has(key) && !isNoOp(key, value))
        throw new UnsupportedSchema(path, `"${key}" is not supported by the JSON-schema grammar`);
    }
    if (depth > 0 && (node.$defs !== undefined || node.definitions !== undefined))
      throw new UnsupportedSchema(path, '"$defs" is only supported at the root');
    if (node.$ref !== undefined) return this.reference(node, path);
    const alternatives = node.anyOf ?? node.oneOf;
    if (alternatives !== undefined) return this.alternatives(node, alternatives, path, depth);
    if (node.allOf !== undefined) return this.allOf(node, path, depth);
    if (node.const !== undefined) return { const: literal(node.const, `${path}/const`) };
    if (node.enum !== undefined) return this.enumOf(node.enum, path);
    const type = node.type ?? inferType(node);
    if (type === undefined) return ANY;
    if (Array.isArray(type)) return this.typeList(node, type, path, depth);
    if (typeof type !== 'string' || !TYPES.has(type))
      throw new UnsupportedSchema(`${path}/type`, `unknown type ${JSON.stringify(type)}`);
    if (type === 'object') return this.object(node, path, depth);
    if (type === 'array') return this.array(node, path, depth);
    if (type === 'string') return stringOf(node, path);
    return { type: type as 'number' | 'integer' | 'boolean' | 'null' };
  }

  private reference(node: Node, path: string): GbnfJsonSchema {
    onlyAnnotations(node, '$ref', path);
    const match = typeof node.$ref === 'string' ? /^#\/(?:\$defs|definitions)\/(.+)$/.exec(node.$ref) : null;
    const name = match?.[1]?.replaceAll('~1', '/').replaceAll('~0', '~');
    if (name === undefined)
      throw new UnsupportedSchema(`${path}/$ref`, 'only references to the root\'s "#/$defs/…" are supported');
    if (this.rootDefs[name] === undefined)
      throw new UnsupportedSchema(`${path}/$ref`, `no definition named ${JSON.stringify(name)}`);
    return { $ref: `#/$defs/${name}`, $defs: this.defs } as GbnfJsonSchema;
  }

  private alternatives(node: Node, list: unknown, path: string, depth: number): GbnfJsonSchema {
    const keyword = node.anyOf === undefined ? 'oneOf' : 'anyOf';
    onlyAnnotations(node, keyword, path);
    if (!Array.isArray(list) || list.length === 0)
      throw new UnsupportedSchema(`${path}/${keyword}`, 'must be a non-empty array of schemas');
    return { oneOf: list.map((item, index) => this.convert(item, `${path}/${keyword}/${index}`, depth + 1)) };
  }

  private allOf(node: Node, path: string, depth: number): GbnfJsonSchema {
    onlyAnnotations(node, 'allOf', path);
    const list = node.allOf;
    if (!Array.isArray(list) || list.length !== 1)
      throw new UnsupportedSchema(`${path}/allOf`, 'is only supported with a single schema');
    return this.convert(list[0], `${path}/allOf/0`, depth + 1);
  }

  private enumOf(values: unknown, path: string): GbnfJsonSchema {
    if (!Array.isArray(values) || values.length === 0)
      throw new UnsupportedSchema(`${path}/enum`, 'must be a non-empty array');
    return { enum: values.map((value, index) => literal(value, `${path}/enum/${index}`)) };
  }

  private typeList(node: Node, types: readonly unknown[], path: string, depth: number): GbnfJsonSchema {
    if (types.length === 0) throw new UnsupportedSchema(`${path}/type`, 'must name at least one type');
    if (types.every((type) => typeof type === 'string' && SCALARS.has(type) && type !== 'string'))
      return { type: types as ('number' | 'integer' | 'boolean' | 'null')[] };
    return { oneOf: types.map((type) => this.convert({ ...node, type }, path, depth)) };
  }

  private object(node: Node, path: string, depth: number): GbnfJsonSchema {
    const properties = asNode(node.properties, `${path}/properties`);
    const converted: Record<string, GbnfJsonSchema> = {};
    for (const [name, value] of Object.entries(properties))
      converted[name] = this.convert(value, `${path}/properties/${name}`, depth + 1);
    const required = node.required ?? [];
    if (!Array.isArray(required) || !required.every((name) => typeof name === 'string'))
      throw new UnsupportedSchema(`${path}/required`, 'must be an array of property names');
    const missing = required.find((name: string) => properties[name] === undefined);
    if (missing !== undefined)
      throw new UnsupportedSchema(`${path}/required`, `names "${missing}", which is not in "properties"`);
    const extra = node.additionalProperties;
    const additional =
      extra === undefined
        ? node.properties === undefined
        : typeof extra === 'boolean'
          ? extra
          : this.convert(extra, `${path}/additionalProperties`, depth + 1);
    const result: Mutable = { type: 'object', properties: converted, required: Object.keys(converted) };
    if (additional !== false) result.additionalProperties = additional;
    copyCount(node, result, ['minProperties', 'maxProperties'], path);
    return result as GbnfJsonSchema;
  }

  private array(node: Node, path: string, depth: number): GbnfJsonSchema {
    const result: Mutable = { type: 'array' };
    const { items } = node;
    const prefix = node.prefixItems ?? (Array.isArray(items) ? items : undefined);
    if (prefix !== undefined) {
      if (!Array.isArray(prefix)) throw new UnsupportedSchema(`${path}/prefixItems`, 'must be an array of schemas');
      result.prefixItems = prefix.map((item, index) => this.convert(item, `${path}/prefixItems/${index}`, depth + 1));
    }
    if (items === false) result.maxItems = Array.isArray(prefix) ? prefix.length : 0;
    else if (items !== undefined && !Array.isArray(items))
      result.items = this.convert(items, `${path}/items`, depth + 1);
    copyCount(node, result, ['minItems', 'maxItems'], path);
    return result as GbnfJsonSchema;
  }
}

function stringOf(node: Node, path: string): GbnfJsonSchema {
  if (node.format !== undefined) {
    if (typeof node.format !== 'string' || !FORMATS.has(node.format))
      throw new UnsupportedSchema(
        `${path}/format`,
        `format ${JSON.stringify(node.format)} is not supported (only date, time and date-time)`,
      );
    return { type: 'string', format: node.format as 'date' | 'time' | 'date-time' };
  }
  const result: Mutable = { type: 'string' };
  copyCount(node, result, ['minLength', 'maxLength'], path);
  return result as GbnfJsonSchema;
}

function inferType(node: Node): string | undefined {
  const has = (...keys: string[]) => keys.some((key) => node[key] !== undefined);
  if (has('properties', 'required', 'additionalProperties', 'minProperties', 'maxProperties')) return 'object';
  if (has('items', 'prefixItems', 'minItems', 'maxItems')) return 'array';
  if (has('minLength', 'maxLength', 'format')) return 'string';
  return undefined;
}

function onlyAnnotations(node: Node, keyword: string, path: string): void {
  const other = Object.keys(node).find((key) => key !== keyword && !ANNOTATIONS.has(key));
  if (other !== undefined)
    throw new UnsupportedSchema(path, `"${keyword}" beside "${other}" is not supported: move "${other}" inside`);
}

function copyCount(node: Node, into: Mutable, keys: readonly string[], path: string): void {
  for (const key of keys) {
    const value = node[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0)
      throw new UnsupportedSchema(`${path}/${key}`, 'must be a non-negative integer');
    into[key] = value;
  }
}

function literal(value: unknown, path: string): string | number | boolean | null {
  if (value === null || ['string', 'number', 'boolean'].includes(typeof value))
    return value as string | number | boolean | null;
  throw new UnsupportedSchema(path, 'only strings, numbers, booleans and null are supported as values');
}

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asNode(value: unknown, path: string): Node {
  if (value === undefined) return {};
  if (!isNode(value)) throw new UnsupportedSchema(path, 'must be an object');
  return value;
}
