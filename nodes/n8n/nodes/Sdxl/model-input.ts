import { NodeOperationError } from 'n8n-workflow';
import type { IDataObject, IExecuteFunctions, INodeExecutionData } from 'n8n-workflow';
import type { ModelDeclaration, ModelField } from '@sdxl-kit/client/core';
import { binaryFieldLabel, defaultBinaryField, imageParameterNames, isTopLevel } from './properties.ts';

/** One item's input to a model operation, and the words errors use for its fields. */
export interface ModelInput {
  input: Record<string, unknown>;
  /** What the form calls each field, images by where they came from (`Input Binary Field "data"`). */
  labels: Map<string, string>;
  /** Where in the form each field is fixed: up front, or under Options (`Options > Strength`). */
  places: Map<string, string>;
  /** The input image's file name, when it came from a binary field. */
  inputFileName?: string;
}

/**
 * A value from the form or an expression as the declaration wants it, or undefined to send nothing.
 * Expressions over a Webhook, a sheet or a CSV give text: "42" and "true" are read as what they say;
 * other text goes on for the client to refuse by name. An empty value of a field whose default is
 * unknown means "let the server decide".
 */
export function typedValue(field: ModelField, value: unknown): unknown {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') return value;
  const text = value.trim();
  if (text === '' && field.default === undefined && !field.required) return undefined;
  if ((field.kind === 'integer' || field.kind === 'number') && text !== '') {
    const number = Number(text);
    return Number.isFinite(number) ? number : value;
  }
  if (field.kind === 'boolean' && /^(true|false)$/i.test(text)) return text.toLowerCase() === 'true';
  return value;
}

/**
 * Reads one item's request for `model`: each image from the item's binary field or a URL, the
 * required fields, and the options set. Throws a NodeOperationError naming the field and the item
 * when a binary field is missing; everything else is left to the client's validation.
 */
export async function readModelInput(
  context: IExecuteFunctions,
  items: INodeExecutionData[],
  itemIndex: number,
  model: ModelDeclaration,
): Promise<ModelInput> {
  const options = context.getNodeParameter('options', itemIndex, {}) as IDataObject;
  const input: Record<string, unknown> = {};
  const labels = new Map<string, string>();
  const places = new Map<string, string>();
  let inputFileName: string | undefined;
  for (const field of model.fields) {
    labels.set(field.name, field.label);
    places.set(field.name, isTopLevel(field) ? field.label : `Options > ${field.label}`);
    if (field.kind === 'image') {
      const names = imageParameterNames(field);
      const source = context.getNodeParameter(names.source, itemIndex, 'binary') as string;
      if (source === 'url') {
        labels.set(field.name, `${field.label} URL`);
        places.set(field.name, `${field.label} URL`);
        const url = String(context.getNodeParameter(names.url, itemIndex, '') ?? '').trim();
        if (url) input[field.name] = url;
        continue;
      }
      const label = binaryFieldLabel(field);
      const property = String(
        context.getNodeParameter(names.binaryField, itemIndex, defaultBinaryField(field)) ?? '',
      ).trim();
      labels.set(field.name, `${label} "${property}"`);
      places.set(field.name, `the file in ${label} "${property}"`);
      const binary = property ? items[itemIndex]?.binary?.[property] : undefined;
      if (!binary) {
        const present = Object.keys(items[itemIndex]?.binary ?? {});
        throw new NodeOperationError(
          context.getNode(),
          property
            ? `${label}: the input item has no binary field "${property}" [item ${itemIndex}]`
            : `${label} is empty [item ${itemIndex}]`,
          {
            itemIndex,
            description: present.length
              ? `Its binary fields are: ${present.map((name) => `"${name}"`).join(', ')}. Put the name of the one that holds the ${field.label.toLowerCase()} in ${label}. Nothing was sent.`
              : `The input item has no binary data at all. Read the ${field.label.toLowerCase()} first (Read/Write Files, HTTP Request with Response Format "File", another SDXL node), or set ${field.label} Source to URL. Nothing was sent.`,
          },
        );
      }
      if (field.role === 'source') inputFileName = binary.fileName;
      input[field.name] = await context.helpers.getBinaryDataBuffer(itemIndex, property);
      continue;
    }
    const raw = isTopLevel(field) ? context.getNodeParameter(field.name, itemIndex, '') : options[field.name];
    const value = typedValue(field, raw);
    if (value !== undefined) input[field.name] = value;
  }
  return { input, labels, places, ...(inputFileName !== undefined && { inputFileName }) };
}
