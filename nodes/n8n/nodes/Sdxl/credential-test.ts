import type {
  ICredentialTestFunctions,
  ICredentialsDecrypted,
  INodeCredentialTestResult,
} from 'n8n-workflow';
import { DEFAULT_BASE_URL, ERROR_HINTS, SdxlClient, SdxlError } from '@sdxl-kit/client/core';
import { abortableSleep, createN8nTransport, type HttpRequester } from './transport.ts';

/**
 * A credential test gets only n8n's older `request` helper (no `httpRequestWithAuthentication`), so
 * the test sends the key itself, through that helper, in the older helper's option names.
 */
function testRequester(context: ICredentialTestFunctions): HttpRequester {
  return async (options) =>
    await context.helpers.request({
      method: options.method,
      uri: options.url,
      headers: options.headers,
      ...(options.body !== undefined && { body: options.body }),
      encoding: null,
      resolveWithFullResponse: true,
      simple: false,
      timeout: options.timeout,
    });
}

/** Calls the free balance endpoint: "Valid, N credits left", or why the key does not work. */
export async function testCredential(
  context: ICredentialTestFunctions,
  credential: ICredentialsDecrypted,
): Promise<INodeCredentialTestResult> {
  const data = credential.data ?? {};
  const apiKey = typeof data.apiKey === 'string' ? data.apiKey.trim() : '';
  const baseUrl =
    typeof data.baseUrl === 'string' && data.baseUrl.trim() ? data.baseUrl.trim() : DEFAULT_BASE_URL;
  if (!apiKey) return { status: 'Error', message: 'Enter an API key.' };
  const client = new SdxlClient({
    apiKey,
    baseUrl,
    transport: createN8nTransport(testRequester(context)),
    sleep: abortableSleep,
    timeoutMs: 30_000,
    maxRetries: 0,
  });
  try {
    const balance = await client.getCredits();
    return { status: 'OK', message: `Valid, ${balance.total} credits left` };
  } catch (error) {
    if (!(error instanceof SdxlError)) return { status: 'Error', message: 'The test could not be run.' };
    const reason =
      error.code === 'unauthorized'
        ? 'The API key was refused: check that it is complete and still active.'
        : `${error.message.replace(/[.\s]+$/, '')}. ${ERROR_HINTS[error.code]}`;
    return { status: 'Error', message: `Not valid: ${reason}` };
  }
}
