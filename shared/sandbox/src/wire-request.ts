/** A txt2img body after validation, with the contract's defaults filled in. */
export interface Txt2ImgRequest {
  prompt: string;
  negative_prompt: string | undefined;
  style: string;
  samples: number;
  scheduler: string;
  num_inference_steps: number;
  guidance_scale: number;
  strength: number;
  high_noise_fraction: number;
  /** -1 asks for a random seed. */
  seed: number;
  img_width: number;
  img_height: number;
  refiner: boolean;
  base64: boolean;
}

export type Validation = { ok: true; request: Txt2ImgRequest } | { ok: false; message: string };

export const MAX_SEED = 999_999_999_999_999;

/**
 * Checks a parsed body against the wire contract on its own terms, so a client whose schema drifts
 * from the contract is caught here rather than trusted. Reports every problem, one `field: what's wrong`
 * clause each. Unknown fields are ignored, as the hosted API does.
 */
export function validateTxt2ImgBody(body: unknown): Validation {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, message: 'body: must be a JSON object' };
  }
  const fields = body as Record<string, unknown>;
  const problems: string[] = [];
  const read = new FieldReader(fields, problems);

  const prompt = fields['prompt'];
  if (prompt === undefined) problems.push('prompt: is required');
  else if (typeof prompt !== 'string' || prompt.length === 0) {
    problems.push(`prompt: must be a non-empty string, got ${describe(prompt)}`);
  }

  const request: Txt2ImgRequest = {
    prompt: typeof prompt === 'string' ? prompt : '',
    negative_prompt: read.string('negative_prompt', undefined, true),
    style: read.string('style', 'base', false) ?? 'base',
    samples: read.integer('samples', 1, 1, 4),
    scheduler: read.string('scheduler', 'UniPC', false) ?? 'UniPC',
    num_inference_steps: read.integer('num_inference_steps', 25, 20, 100),
    guidance_scale: read.number('guidance_scale', 7.5, 1, 25),
    strength: read.number('strength', 0.2, 0.1, 1),
    high_noise_fraction: read.number('high_noise_fraction', 0.8, 0, 1),
    seed: read.integer('seed', -1, -1, MAX_SEED),
    img_width: read.only1024('img_width'),
    img_height: read.only1024('img_height'),
    refiner: read.boolean('refiner', true),
    base64: read.boolean('base64', false),
  };
  // An invalid high_noise_fraction falls back to 0.8 above, so this only fires on a real 1.
  if (request.refiner && request.high_noise_fraction === 1) {
    problems.push(
      'refiner: does not work when high_noise_fraction is 1 (the refiner would get no steps); ' +
        'set refiner to false or high_noise_fraction below 1',
    );
  }
  if (problems.length > 0) return { ok: false, message: problems.join('; ') };
  return { ok: true, request };
}

class FieldReader {
  readonly #fields: Record<string, unknown>;
  readonly #problems: string[];

  constructor(fields: Record<string, unknown>, problems: string[]) {
    this.#fields = fields;
    this.#problems = problems;
  }

  string(name: string, fallback: string | undefined, emptyAllowed: boolean): string | undefined {
    const value = this.#fields[name];
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || (!emptyAllowed && value.length === 0)) {
      this.#problems.push(
        `${name}: must be a ${emptyAllowed ? '' : 'non-empty '}string, got ${describe(value)}`,
      );
      return fallback;
    }
    return value;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const value = this.#fields[name];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.#problems.push(`${name}: must be a whole number from ${min} to ${max}, got ${describe(value)}`);
      return fallback;
    }
    return value;
  }

  number(name: string, fallback: number, min: number, max: number): number {
    const value = this.#fields[name];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      this.#problems.push(`${name}: must be a number from ${min} to ${max}, got ${describe(value)}`);
      return fallback;
    }
    return value;
  }

  only1024(name: string): number {
    const value = this.#fields[name];
    if (value === undefined) return 1024;
    if (value !== 1024) {
      this.#problems.push(`${name}: can only be 1024 for SDXL, got ${describe(value)}`);
      return 1024;
    }
    return value;
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.#fields[name];
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      this.#problems.push(`${name}: must be true or false, got ${describe(value)}`);
      return fallback;
    }
    return value;
  }
}

/** A short rendering of a wrong value: enough to spot the mistake, never a whole pasted prompt. */
function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
