export { startSandbox } from './server.ts';
export { renderImage, type Look, type RenderInput } from './image.ts';
export { ELIDE_OVER, elisionMarker } from './record.ts';
export {
  SANDBOX_DEFAULT_API_KEY,
  type BilledCall,
  type ReceivedRequest,
  type Sandbox,
  type SandboxOptions,
} from './options.ts';
