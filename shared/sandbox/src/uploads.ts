import sharp from 'sharp';
import { MESSAGES, errorAnswer, jsonAnswer } from './answers.ts';
import {
  answer,
  checkApiKey,
  isJsonContentType,
  tooLargeMessage,
  type Exchange,
  type Reply,
  type SandboxState,
} from './endpoints.ts';
import { LARGE_BODY_BYTES } from './models.ts';
import type { StoredKind } from './storage.ts';

const DATA_URL = /^data:(image\/(?:jpeg|jpg|png|webp));base64,([A-Za-z0-9+/\s]+={0,2})$/i;

/**
 * `POST /upload-asset` (Segmind Storage): `{"data_urls": ["data:image/png;base64,..."]}` in, the URLs
 * the sandbox now serves out, under both keys seen in the wild (`urls` in the docs, `file_urls` with a
 * `message` in the SDK). Needs the key; not billed.
 */
export async function handleUpload(state: SandboxState, exchange: Exchange): Promise<Reply> {
  const refusal = checkApiKey(exchange.headers, state.settings.apiKey);
  if (refusal) return answer(refusal);
  if (!isJsonContentType(exchange.headers['content-type'])) {
    return answer(errorAnswer(406, MESSAGES.invalidContentType));
  }
  const { body } = exchange;
  if (body.kind === 'too-large') return answer(errorAnswer(413, tooLargeMessage(LARGE_BODY_BYTES)));
  if (!body.json.ok) return answer(errorAnswer(422, MESSAGES.notJson));
  const value = body.json.value as { data_urls?: unknown } | null;
  const dataUrls = typeof value === 'object' && value !== null ? value.data_urls : undefined;
  if (!Array.isArray(dataUrls) || dataUrls.length === 0) {
    return answer(errorAnswer(422, 'data_urls: must be a non-empty array of data: URLs'));
  }
  const decoded: { bytes: Buffer; contentType: string }[] = [];
  for (const [index, item] of dataUrls.entries()) {
    const match = typeof item === 'string' ? DATA_URL.exec(item) : null;
    const problem = `data_urls[${index}]: must be a data: URL of a JPEG, PNG or WebP image in base64`;
    if (!match) return answer(errorAnswer(422, problem));
    const contentType = match[1]!.toLowerCase().replace('jpg', 'jpeg');
    const bytes = Buffer.from(match[2]!.replace(/\s+/g, ''), 'base64');
    try {
      const { format } = await sharp(bytes).metadata();
      if (`image/${format}` !== contentType) {
        return answer(errorAnswer(422, `data_urls[${index}]: says ${contentType} but holds ${format}`));
      }
    } catch {
      return answer(errorAnswer(422, problem));
    }
    decoded.push({ bytes, contentType });
  }
  const now = Date.now();
  const stored = await Promise.all(
    decoded.map((file) => state.store.put('assets', file.bytes, file.contentType, now)),
  );
  const urls = stored.map((file) => `${exchange.origin}/assets/${file.name}`);
  return answer(jsonAnswer(200, { urls, file_urls: urls, message: 'Files uploaded successfully' }));
}

/** `GET /assets/<name>` and `GET /files/<name>`: stored files, public like images.segmind.com (no key). */
export function fileEndpoint(kind: StoredKind) {
  return async (state: SandboxState, exchange: Exchange, name: string): Promise<Reply> => {
    const file = await state.store.read(kind, name, Date.now(), state.settings.resultTtlMs);
    if (!file) return answer(errorAnswer(404, `File ${name} not found`));
    return answer({ status: 200, headers: { 'content-type': file.contentType }, body: file.bytes });
  };
}
