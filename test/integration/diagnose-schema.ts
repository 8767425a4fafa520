/**
 * A small JSON Schema checker for the subset docs/test-report.schema.json uses (draft 2020-12:
 * type, const, enum, properties, required, additionalProperties, items, minimum, maximum,
 * minLength, pattern, $ref to #/$defs/...). Unknown keywords fail loudly, so the schema cannot
 * grow past what is checked here without this file growing too.
 */
export type Schema = { [k: string]: unknown };

const KNOWN = new Set([
  '$schema',
  '$id',
  '$defs',
  '$ref',
  'title',
  'description',
  'type',
  'const',
  'enum',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'minimum',
  'maximum',
  'minLength',
  'pattern',
]);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** The list of problems (empty when the value is valid). */
export function validate(root: Schema, value: unknown): string[] {
  const errors: string[] = [];
  const walk = (schema: Schema, v: unknown, at: string): void => {
    for (const k of Object.keys(schema))
      if (!KNOWN.has(k)) throw new Error(`schema keyword ${k} at ${at} is not supported`);
    if (typeof schema.$ref === 'string') {
      const m = /^#\/\$defs\/(.+)$/.exec(schema.$ref);
      const target = m ? (root.$defs as Record<string, Schema> | undefined)?.[m[1]!] : undefined;
      if (!target) throw new Error(`unresolvable $ref ${schema.$ref}`);
      walk(target, v, at);
    }
    if (schema.type !== undefined) {
      const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
      const t = typeOf(v);
      if (!types.some((x) => x === t || (x === 'number' && t === 'integer'))) {
        errors.push(`${at}: expected ${types.join('|')}, got ${t}`);
        return;
      }
    }
    if ('const' in schema && v !== schema.const)
      errors.push(`${at}: expected ${JSON.stringify(schema.const)}`);
    if (Array.isArray(schema.enum) && !schema.enum.includes(v))
      errors.push(`${at}: ${JSON.stringify(v)} not in ${JSON.stringify(schema.enum)}`);
    if (typeof v === 'number') {
      if (typeof schema.minimum === 'number' && v < schema.minimum)
        errors.push(`${at}: below ${schema.minimum}`);
      if (typeof schema.maximum === 'number' && v > schema.maximum)
        errors.push(`${at}: above ${schema.maximum}`);
    }
    if (typeof v === 'string') {
      if (typeof schema.minLength === 'number' && v.length < schema.minLength)
        errors.push(`${at}: shorter than ${schema.minLength}`);
      if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(v))
        errors.push(`${at}: does not match ${schema.pattern}`);
    }
    if (Array.isArray(v) && schema.items) v.forEach((x, i) => walk(schema.items as Schema, x, `${at}[${i}]`));
    if (typeOf(v) === 'object') {
      const o = v as Record<string, unknown>;
      const props = (schema.properties ?? {}) as Record<string, Schema>;
      for (const r of (schema.required ?? []) as string[]) if (!(r in o)) errors.push(`${at}: missing ${r}`);
      for (const [k, x] of Object.entries(o)) {
        if (props[k]) walk(props[k], x, `${at}.${k}`);
        else if (schema.additionalProperties === false) errors.push(`${at}: unexpected property ${k}`);
        else if (typeof schema.additionalProperties === 'object')
          walk(schema.additionalProperties as Schema, x, `${at}.${k}`);
      }
    }
  };
  walk(root, value, '$');
  return errors;
}
