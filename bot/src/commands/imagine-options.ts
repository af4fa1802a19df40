import {
  fieldSpec,
  sdxlImg2Img,
  type FieldName,
  type GenerateInput,
  type ModelField,
} from '@sdxl-kit/client';
import type { ChatInputCommandInteraction, SlashCommandBuilder } from 'discord.js';
import { DEFAULT_SOURCE_STRENGTH } from '../jobs/operations.ts';

/** Discord option names (snake_case, as users see them) for each request field the command offers. */
export const IMAGINE_OPTIONS: readonly { option: string; field: FieldName }[] = [
  { option: 'prompt', field: 'prompt' },
  { option: 'negative_prompt', field: 'negativePrompt' },
  { option: 'style', field: 'style' },
  { option: 'scheduler', field: 'scheduler' },
  { option: 'samples', field: 'samples' },
  { option: 'steps', field: 'steps' },
  { option: 'guidance', field: 'guidanceScale' },
  { option: 'seed', field: 'seed' },
  { option: 'refiner', field: 'refiner' },
  { option: 'high_noise_fraction', field: 'highNoiseFraction' },
  // `strength` is how far a variation moves from an attached image; the refiner's own strength is this one.
  { option: 'refiner_strength', field: 'strength' },
];

const OPTION_BY_FIELD = new Map(IMAGINE_OPTIONS.map((entry) => [entry.field as string, entry.option]));

/** The Discord option name a request field is typed into, for error messages. */
export function optionNameFor(field: string): string {
  return OPTION_BY_FIELD.get(field) ?? field;
}

/** Discord allows 100 characters of description. */
function describe(text: string): string {
  return text.length <= 100 ? text : `${text.slice(0, 97).replace(/\s+\S*$/, '')}...`;
}

/** Prompts longer than this are refused by Discord's own UI. */
export const MAX_PROMPT_LENGTH = 2000;

/**
 * Adds every option to the command, with the contract's bounds from `REQUEST_FIELDS` declared on it
 * so Discord's own UI enforces them.
 */
export function addImagineOptions(builder: SlashCommandBuilder): SlashCommandBuilder {
  for (const { option, field } of IMAGINE_OPTIONS) addFieldOption(builder, option, field);
  return builder;
}

/** Adds one request field as an option named `option`, with its bounds, suggestions and description. */
export function addFieldOption(builder: SlashCommandBuilder, option: string, field: FieldName): void {
  const spec = fieldSpec(field);
  const description = describe(spec.description);
  switch (spec.kind) {
    case 'text':
      builder.addStringOption((o) =>
        o
          .setName(option)
          .setDescription(description)
          .setRequired(spec.required === true)
          .setMaxLength(MAX_PROMPT_LENGTH),
      );
      break;
    case 'choice':
      // Autocomplete, not choices: the known values are suggestions and other values are allowed.
      builder.addStringOption((o) => o.setName(option).setDescription(description).setAutocomplete(true));
      break;
    case 'integer':
      builder.addIntegerOption((o) => {
        o.setName(option).setDescription(description);
        if (spec.min !== undefined) o.setMinValue(spec.min);
        if (spec.max !== undefined) o.setMaxValue(spec.max);
        return o;
      });
      break;
    case 'number':
      builder.addNumberOption((o) => {
        o.setName(option).setDescription(description);
        if (spec.min !== undefined) o.setMinValue(spec.min);
        if (spec.max !== undefined) o.setMaxValue(spec.max);
        return o;
      });
      break;
    case 'boolean':
      builder.addBooleanOption((o) => o.setName(option).setDescription(description));
      break;
  }
}

/** The attachment option of /imagine: an image to vary instead of starting from noise. */
export const IMAGE_OPTION = 'image';
/** How far the variation of an attached image moves from it, bounded as sdxl-img2img declares it. */
export const STRENGTH_OPTION = 'strength';
export const IMAGE_STRENGTH_FIELD: ModelField = sdxlImg2Img.fields.find(
  (field) => field.name === 'strength',
)!;

/**
 * The options sdxl-img2img (an attached image) has no use for: typed with an image, they are refused
 * by name rather than silently dropped.
 */
export const TXT2IMG_ONLY_OPTIONS: readonly string[] = [
  'style',
  'refiner',
  'high_noise_fraction',
  'refiner_strength',
];

/** Adds `image` and its `strength` after the request fields. */
export function addImageOptions(builder: SlashCommandBuilder): SlashCommandBuilder {
  builder
    .addAttachmentOption((o) =>
      o
        .setName(IMAGE_OPTION)
        .setDescription('An image to vary (JPEG, PNG or WebP up to 10 MB) instead of starting from noise'),
    )
    .addNumberOption((o) =>
      o
        .setName(STRENGTH_OPTION)
        .setDescription(
          `With an image: how far to move from it, 0 keeps it, 1 ignores it (default ${DEFAULT_SOURCE_STRENGTH})`,
        )
        .setMinValue(IMAGE_STRENGTH_FIELD.min!)
        .setMaxValue(IMAGE_STRENGTH_FIELD.max!),
    );
  return builder;
}

/** Reads the options the user filled in into a request input; options left empty keep the defaults. */
export function readImagineOptions(options: ChatInputCommandInteraction['options']): GenerateInput {
  const input: Record<string, unknown> = {};
  for (const { option, field } of IMAGINE_OPTIONS) {
    const value = options.get(option)?.value;
    if (value !== undefined && value !== null) input[field] = value;
  }
  return input as unknown as GenerateInput;
}

/** Discord refuses every suggestion when one has a name or value longer than this. */
const MAX_CHOICE_LENGTH = 100;

/** Suggestions for a focused autocomplete option: known values that contain what was typed. */
export function suggestionsFor(option: string, typed: string): { name: string; value: string }[] {
  const entry = IMAGINE_OPTIONS.find((candidate) => candidate.option === option);
  const values = entry ? (fieldSpec(entry.field).values ?? []) : [];
  const needle = typed.trim().toLowerCase();
  const known = values.map(String).filter((value) => value.toLowerCase().includes(needle));
  // Typed text that is not a known value is offered too (other values are allowed), if Discord can carry it.
  const offerTyped =
    needle && needle.length <= MAX_CHOICE_LENGTH && !known.some((value) => value.toLowerCase() === needle);
  return [...known, ...(offerTyped ? [typed.trim()] : [])]
    .filter((value) => value.length <= MAX_CHOICE_LENGTH)
    .slice(0, 25)
    .map((value) => ({ name: value, value }));
}
