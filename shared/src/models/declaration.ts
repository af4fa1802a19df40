import type { InvalidField } from '../errors.ts';
import type { ModelPrice } from '../money/price.ts';

/** How a form shows a field and how the schema checks it. `image` holds an image input (bytes, URL, data: URL, base64). */
export type FieldKind = 'text' | 'choice' | 'integer' | 'number' | 'boolean' | 'image';

/**
 * One request field of one model. A field without a `default` is optional and left out of the body
 * unless set, so the server's own default applies: the contract does not know it, and we do not
 * invent one (a form shows {@link UNKNOWN_DEFAULT}).
 */
export interface ModelField {
  /** camelCase name, as callers and hosts use it. */
  readonly name: string;
  /** The name on the wire (snake_case). */
  readonly wire: string;
  readonly kind: FieldKind;
  /** The words a form shows ("Guidance Scale"). */
  readonly label: string;
  readonly required?: boolean;
  /** The documented default, sent explicitly. Absent: the server's default applies (unknown to us). */
  readonly default?: string | number | boolean;
  readonly min?: number;
  readonly max?: number;
  /** Choices: the values a form offers. */
  readonly values?: readonly (string | number)[];
  /** Choices: whether other non-empty values pass through for the server to judge (lists not published). */
  readonly open?: boolean;
  /** What is allowed, in words, as error messages show it. */
  readonly allowed: string;
  /** For people who are not programmers: what the field does. */
  readonly description: string;
  /** Image fields: `mask` must have the size of the `image` field. */
  readonly role?: 'source' | 'mask' | 'control';
}

/** What one operation does, so a host can offer it by name: generate, vary, inpaint, upscale, control. */
export type Operation = 'generate' | 'vary' | 'inpaint' | 'upscale' | 'control';

/**
 * Everything the client, the sandbox and every front-end need to know about one hosted model. Adding a
 * model is one file with one of these, plus its tests.
 */
export interface ModelDeclaration {
  /** The path segment: `POST /v1/{slug}` and `POST /v2/{slug}`. */
  readonly slug: string;
  /** What a form calls it. */
  readonly title: string;
  readonly operation: Operation;
  /** One sentence for a form or `--help`. */
  readonly summary: string;
  readonly fields: readonly ModelField[];
  /**
   * How image bytes travel: `base64` as raw base64 in the field (the model's official samples do this),
   * or `url` through Segmind's storage upload (the model's page types the field `string (uri)` and no
   * official sample sends base64). An http(s) URL given by the caller always passes through.
   */
  readonly imageTransport: 'base64' | 'url';
  /** What comes back: images, and which field (if any) picks their format. */
  readonly output: {
    /** The field whose value is the number of images (`samples`), or none: one image per call. */
    readonly countField?: string;
    /** The field whose value names the format (`output_format`); JPEG otherwise. */
    readonly formatField?: string;
    /** The body takes `base64`: v1 returns several images only as base64 JSON, so it is set for them. */
    readonly base64?: boolean;
  };
  /** Typical seconds from submit to image on the hosted service (Segmind's directory average). */
  readonly typicalSeconds: number;
  /**
   * What a call costs, as Segmind publishes it (its credits are US dollars); absent where no price is
   * published. What the API reports an account is billed replaces it in estimates (`PriceBook`).
   */
  readonly price?: ModelPrice;
  /** Where the facts above come from (a page, a sample): kept so a reader can check them. */
  readonly sources: readonly string[];
  /** Rules across fields (the refiner needs a noise fraction below 1); each problem names its field. */
  readonly check?: (request: Readonly<Record<string, unknown>>) => InvalidField[];
}

/** What a form shows as the default of a field whose default the contract does not know. */
export const UNKNOWN_DEFAULT = 'unknown (the server decides)';

/** The default of a field as a form shows it. */
export function describeDefault(field: ModelField): string {
  if (field.default === undefined) return field.required ? 'required' : UNKNOWN_DEFAULT;
  if (field.kind === 'boolean') return field.default ? 'on' : 'off';
  if (field.default === '') return 'none';
  return String(field.default);
}

/** The image fields of a model, in declaration order. */
export function imageFields(model: ModelDeclaration): ModelField[] {
  return model.fields.filter((field) => field.kind === 'image');
}
