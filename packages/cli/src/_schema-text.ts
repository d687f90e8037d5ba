import { experimentJsonSchema } from './config';

/** The committed `schema/experiment.schema.json` text: the JSON Schema with an `$id`-free title. */
export function experimentSchemaText(): string {
  const schema = { ...experimentJsonSchema(), title: 'qlora experiment config' };
  return `${JSON.stringify(schema, null, 2)}\n`;
}
