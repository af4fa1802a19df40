// The operations the SDXL node offers, each backed by the client's default model for it. Every field
// the node stores, validates and sends comes from the model's declaration, so a new model needs no
// node code beyond its place here.
import { modelFor, type ModelDeclaration, type ModelField } from '@sdxl-kit/client/core';

export const OPERATIONS = ['generate', 'vary', 'inpaint', 'upscale'] as const;
export type NodeOperation = (typeof OPERATIONS)[number];

/** What the status says while the API works on a call of each operation. */
export const VERBS: Record<NodeOperation, string> = {
  generate: 'generating',
  vary: 'varying',
  inpaint: 'inpainting',
  upscale: 'upscaling',
};

export function isOperation(value: unknown): value is NodeOperation {
  return typeof value === 'string' && (OPERATIONS as readonly string[]).includes(value);
}

export function modelOf(operation: NodeOperation): ModelDeclaration {
  return modelFor(operation);
}

/**
 * The node property that holds a field of an operation. Generate keeps the bare names it always had
 * (flows saved before the other operations existed load unchanged); the others are prefixed, so each
 * operation keeps its own values and bounds when the user switches between them.
 */
export function propertyFor(operation: NodeOperation, field: Pick<ModelField, 'name'>): string {
  if (operation === 'generate') return field.name;
  return `${operation}${field.name.charAt(0).toUpperCase()}${field.name.slice(1)}`;
}

/** The message property a mask comes from when the node does not say: `msg.mask`. */
export const DEFAULT_MASK_PROPERTY = 'mask';
