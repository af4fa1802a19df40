// Turns the client's REQUEST_FIELDS into the editor's field definitions, form rows and help entries at
// build time, so the editor's defaults and bounds are never typed twice.
import {
  CLIENT_DEFAULTS,
  REQUEST_FIELDS,
  describeDefault,
  type FieldSpec,
  type ModelField,
} from '@sdxl-kit/client/core';
import { DEFAULT_MASK_PROPERTY, OPERATIONS, modelOf, propertyFor } from '../operations.ts';

const LABELS: Record<FieldSpec['name'], string> = {
  prompt: 'Prompt',
  negativePrompt: 'Negative',
  style: 'Style',
  samples: 'Images',
  scheduler: 'Scheduler',
  steps: 'Steps',
  guidanceScale: 'Guidance',
  strength: 'Strength',
  highNoiseFraction: 'Noise fraction',
  seed: 'Seed',
  width: 'Width',
  height: 'Height',
  refiner: 'Refiner',
  base64: 'Base64',
};

const ICONS: Partial<Record<FieldSpec['kind'], string>> = {
  text: 'fa-font',
  choice: 'fa-list',
  integer: 'fa-hashtag',
  number: 'fa-sliders',
  boolean: 'fa-toggle-on',
};

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const js = (value: unknown): string => JSON.stringify(value);

/** The value the API uses when nobody sets the field, as the editor shows it. */
function defaultText(field: FieldSpec): string {
  if (field.kind === 'boolean') return field.default ? 'on' : 'off';
  if (field.default === '' || field.default === undefined) return 'none';
  return String(field.default);
}

/** One `defaults` entry per field, each a literal so Node-RED's static checkers can read them. */
export function renderDefaults(): string {
  return [renderGenerateDefaults(), renderOperationDefaults()].join('\n        ');
}

function renderGenerateDefaults(): string {
  return REQUEST_FIELDS.map((field) => {
    let validate = '';
    const said = `${js(LABELS[field.name])}, ${js(field.allowed)}`;
    if (field.name === 'highNoiseFraction') {
      // The API refuses 1 unless the refiner is off, and the refiner is on by default.
      validate = `, validate: function (v, opt) { return sdxlIdle(this, 'generate') || sdxlNoiseFraction(v, this, ${field.min}, ${field.max}, ${said}); }`;
    } else if (
      (field.kind === 'integer' || field.kind === 'number') &&
      field.min !== undefined &&
      field.max !== undefined
    ) {
      validate = `, validate: function (v, opt) { return sdxlIdle(this, 'generate') || sdxlInRange(v, ${field.min}, ${field.max}, ${field.kind === 'integer'}, ${said}); }`;
    } else if (field.values && field.kind !== 'choice') {
      validate = `, validate: function (v, opt) { return sdxlIdle(this, 'generate') || sdxlOneOf(v, ${js(field.values.map(String))}, ${said}); }`;
    } else if (field.kind === 'boolean') {
      validate = `, validate: function (v, opt) { return sdxlIdle(this, 'generate') || sdxlOneOf(v, ['true', 'false'], ${said}); }`;
    }
    return `${field.name}: { value: ''${validate} },`;
  }).join('\n        ');
}

function row(field: FieldSpec, control: string): string {
  const icon = ICONS[field.kind] ?? 'fa-cog';
  return `<div class="form-row" title="${escapeHtml(field.description)}">
    <label for="node-input-${field.name}"><i class="fa ${icon}"></i> ${LABELS[field.name]}</label>
    ${control}
  </div>`;
}

function control(field: FieldSpec): string {
  const id = `node-input-${field.name}`;
  const placeholder = escapeHtml(defaultText(field));
  if (field.name === 'prompt') {
    return `<input type="text" id="${id}" placeholder="empty: msg.sdxl.prompt, else msg.payload" />`;
  }
  if (field.kind === 'boolean') {
    return `<select id="${id}">
      <option value="">default (${placeholder})</option>
      <option value="true">on</option>
      <option value="false">off</option>
    </select>`;
  }
  if (field.kind === 'choice') {
    const options = (field.values ?? []).map(
      (value) => `<option value="${escapeHtml(String(value))}"></option>`,
    );
    return `<input type="text" id="${id}" list="${id}-known" placeholder="${placeholder}" autocomplete="off" />
    <datalist id="${id}-known">${options.join('')}</datalist>`;
  }
  if (field.values) {
    const options = field.values.map((value) => `<option value="${value}">${value}</option>`);
    return `<select id="${id}"><option value="">default (${placeholder})</option>${options.join('')}</select>`;
  }
  if (field.kind === 'integer' || field.kind === 'number') {
    const bounds = `${field.min !== undefined ? ` min="${field.min}"` : ''}${field.max !== undefined ? ` max="${field.max}"` : ''}`;
    const step = field.kind === 'integer' ? '1' : 'any';
    return `<input type="number" id="${id}"${bounds} step="${step}" placeholder="${placeholder}" />`;
  }
  return `<input type="text" id="${id}" placeholder="${field.default === '' ? 'none' : placeholder}" />`;
}

/** The form rows: generate's in the table's order, then each other operation's from its model's declaration. */
export function renderForm(): string {
  const generate = REQUEST_FIELDS.map((field) => row(field, control(field))).join('\n    ');
  return [
    `<div class="sdxl-operation" data-operation="generate">\n    ${generate}\n  </div>`,
    renderOperationForms(),
  ].join('\n  ');
}

// The other operations: every row, default and check comes from the model's declaration, so a model
// with new fields needs no editor code. Images are not form values: the source image is msg.payload,
// a mask comes from a message property the form names.

/** The operations after generate, each with its declared model. */
function otherOperations() {
  return OPERATIONS.filter((operation) => operation !== 'generate').map((operation) => ({
    operation,
    model: modelOf(operation),
  }));
}

function validatorFor(operation: string, field: ModelField): string {
  const said = `${js(field.label)}, ${js(field.allowed)}`;
  // A field of another operation is kept but unused: a value left there must not block deploy.
  const idle = `sdxlIdle(this, ${js(operation)}) || `;
  if (
    (field.kind === 'integer' || field.kind === 'number') &&
    field.min !== undefined &&
    field.max !== undefined
  ) {
    return `, validate: function (v, opt) { return ${idle}sdxlInRange(v, ${field.min}, ${field.max}, ${field.kind === 'integer'}, ${said}); }`;
  }
  if (field.kind === 'integer' || field.kind === 'number') {
    return `, validate: function (v, opt) { return ${idle}sdxlInRange(v, -Infinity, Infinity, ${field.kind === 'integer'}, ${said}); }`;
  }
  if (field.kind === 'choice' && field.values && !field.open) {
    return `, validate: function (v, opt) { return ${idle}sdxlOneOf(v, ${js(field.values.map(String))}, ${said}); }`;
  }
  if (field.kind === 'boolean') {
    return `, validate: function (v, opt) { return ${idle}sdxlOneOf(v, ['true', 'false'], ${said}); }`;
  }
  return '';
}

/** Defaults for every field of the other operations, named by propertyFor (`upscaleScale`). */
function renderOperationDefaults(): string {
  const entries: string[] = [];
  for (const { operation, model } of otherOperations()) {
    for (const field of model.fields) {
      if (field.kind === 'image') {
        if (field.role === 'mask') {
          entries.push(`${propertyFor(operation, field)}Property: { value: ${js(DEFAULT_MASK_PROPERTY)} },`);
        }
        continue;
      }
      entries.push(`${propertyFor(operation, field)}: { value: ''${validatorFor(operation, field)} },`);
    }
  }
  return entries.join('\n        ');
}

function operationControl(operation: (typeof OPERATIONS)[number], field: ModelField): string {
  const id = `node-input-${propertyFor(operation, field)}`;
  const shown = escapeHtml(describeDefault(field));
  if (field.name === 'prompt') {
    return `<input type="text" id="${id}" placeholder="empty: msg.sdxl.prompt" />`;
  }
  if (field.kind === 'boolean') {
    return `<select id="${id}"><option value="">default (${shown})</option><option value="true">on</option><option value="false">off</option></select>`;
  }
  if (field.kind === 'choice' && !field.open && field.values) {
    const options = field.values.map(
      (value) => `<option value="${escapeHtml(String(value))}">${escapeHtml(String(value))}</option>`,
    );
    return `<select id="${id}"><option value="">default (${shown})</option>${options.join('')}</select>`;
  }
  if (field.kind === 'choice') {
    const options = (field.values ?? []).map(
      (value) => `<option value="${escapeHtml(String(value))}"></option>`,
    );
    return `<input type="text" id="${id}" list="${id}-known" placeholder="${shown}" autocomplete="off" />
      <datalist id="${id}-known">${options.join('')}</datalist>`;
  }
  if (field.kind === 'integer' || field.kind === 'number') {
    const bounds = `${field.min !== undefined ? ` min="${field.min}"` : ''}${field.max !== undefined ? ` max="${field.max}"` : ''}`;
    return `<input type="number" id="${id}"${bounds} step="${field.kind === 'integer' ? '1' : 'any'}" placeholder="${shown}" />`;
  }
  return `<input type="text" id="${id}" placeholder="${shown}" />`;
}

function operationRow(operation: (typeof OPERATIONS)[number], field: ModelField): string {
  if (field.kind === 'image') {
    if (field.role === 'mask') {
      const id = `node-input-${propertyFor(operation, field)}Property`;
      return `<div class="form-row" title="${escapeHtml(field.description)}">
      <label for="${id}"><i class="fa fa-picture-o"></i> ${escapeHtml(field.label)}</label>
      msg.<input type="text" id="${id}" style="width: 60%" placeholder="${DEFAULT_MASK_PROPERTY}" />
    </div>`;
    }
    return `<div class="form-row" title="${escapeHtml(field.description)}">
      <label><i class="fa fa-picture-o"></i> ${escapeHtml(field.label)}</label>
      <span class="sdxl-image-source">msg.payload: a Buffer (File In, HTTP Request) or an image URL</span>
    </div>`;
  }
  const id = `node-input-${propertyFor(operation, field)}`;
  return `<div class="form-row" title="${escapeHtml(field.description)}">
      <label for="${id}"><i class="fa ${ICONS[field.kind] ?? 'fa-cog'}"></i> ${escapeHtml(field.label)}</label>
      ${operationControl(operation, field)}
    </div>`;
}

function renderOperationForms(): string {
  return otherOperations()
    .map(
      ({ operation, model }) => `<div class="sdxl-operation" data-operation="${operation}">
    <div class="form-tips">${escapeHtml(model.title)} (<code>${escapeHtml(model.slug)}</code>): ${escapeHtml(model.summary)}</div>
    ${model.fields.map((field) => operationRow(operation, field)).join('\n    ')}
  </div>`,
    )
    .join('\n  ');
}

/** The Operation drop-down's options, from the declared models. */
function renderOperationOptions(): string {
  return OPERATIONS.map(
    (operation) =>
      `<option value="${operation}">${operation}: ${escapeHtml(modelOf(operation).summary)}</option>`,
  ).join('\n      ');
}

/** Help entries for the other operations' fields. */
function renderOperationHelp(): string {
  return otherOperations()
    .map(({ operation, model }) => {
      const fields = model.fields.map((field) => {
        const where =
          field.kind === 'image'
            ? field.role === 'mask'
              ? ` From <code>msg.${DEFAULT_MASK_PROPERTY}</code> (the property is a setting).`
              : ' From <code>msg.payload</code>.'
            : ` Default: <code>${escapeHtml(describeDefault(field))}</code>.`;
        return `<dt${field.required ? '' : ' class="optional"'}>${field.name}</dt>
      <dd>${escapeHtml(field.description)} Allowed: ${escapeHtml(field.allowed)}.${where}</dd>`;
      });
      return `<h4>${operation}: ${escapeHtml(model.title)}</h4>
    <dl class="message-properties">
      ${fields.join('\n      ')}
    </dl>`;
    })
    .join('\n    ');
}

function propertyType(field: FieldSpec): string {
  return field.kind === 'integer' || field.kind === 'number'
    ? 'number'
    : field.kind === 'boolean'
      ? 'boolean'
      : 'string';
}

/** One help entry per field: what it does, what is allowed and the default. */
export function renderHelpFields(): string {
  return REQUEST_FIELDS.map((field) => {
    const required = field.required
      ? ' Required (here, in <code>msg.sdxl</code> or as <code>msg.payload</code>).'
      : '';
    const fallback = field.required ? '' : ` Default: <code>${escapeHtml(defaultText(field))}</code>.`;
    return `<dt class="optional">${field.name} <span class="property-type">${propertyType(field)}</span></dt>
    <dd>${escapeHtml(field.description)} Allowed: ${escapeHtml(field.allowed)}.${fallback}${required}</dd>`;
  }).join('\n    ');
}

/** Fills the placeholders of an editor template. */
export function renderEditor(template: string): string {
  const filled = template
    .replace('/*@defaults*/', renderDefaults())
    .replace('<!--@form-->', renderForm())
    .replace('<!--@help-fields-->', renderHelpFields())
    .replace('<!--@operation-options-->', renderOperationOptions())
    .replace('<!--@operation-help-->', renderOperationHelp())
    .replaceAll('@DEFAULT_BASE_URL@', CLIENT_DEFAULTS.baseUrl)
    .replaceAll('@MAX_IN_FLIGHT@', String(CLIENT_DEFAULTS.maxInFlight))
    .replaceAll('@LOW_CREDITS_THRESHOLD@', String(CLIENT_DEFAULTS.lowCreditsThreshold))
    .replaceAll('@TIMEOUT_SECONDS@', String(CLIENT_DEFAULTS.timeoutMs / 1000));
  if (/@[A-Z_]+@|\/\*@|<!--@/.test(filled)) throw new Error('an editor placeholder was left unfilled');
  return filled;
}
