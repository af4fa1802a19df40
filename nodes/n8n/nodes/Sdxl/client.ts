// The node's one doorway to the shared SDXL client. The build bundles the client's core entry into
// dist (no axios, no Node timers), so the published package has no runtime dependency: the client is
// a devDependency, which is how n8n's no-restricted-imports rule tells a bundled import from a
// runtime one.
import {
  AbortedError,
  ApiError,
  DEFAULT_BASE_URL,
  ERROR_HINTS,
  InvalidRequestError,
  NOT_SENT_CODES,
  SdxlClient,
  SdxlError,
  TransportError,
  extensionFor,
  fieldSpec,
  normalizeHeaders,
  type FieldName,
  type FieldSpec,
  type GenerateInput,
  type GenerateResult,
  type SdxlErrorCode,
  type Sleep,
  type Transport,
  type TransportFailure,
} from '@sdxl-kit/client/core';

export {
  AbortedError,
  ApiError,
  DEFAULT_BASE_URL,
  ERROR_HINTS,
  InvalidRequestError,
  NOT_SENT_CODES,
  SdxlClient,
  SdxlError,
  TransportError,
  extensionFor,
  fieldSpec,
  normalizeHeaders,
  type FieldName,
  type FieldSpec,
  type GenerateInput,
  type GenerateResult,
  type SdxlErrorCode,
  type Sleep,
  type Transport,
  type TransportFailure,
};
