export { startSandbox } from './server.ts';
export { renderImage, type RenderInput } from './image.ts';
export {
  SANDBOX_DEFAULT_API_KEY,
  type ReceivedRequest,
  type Sandbox,
  type SandboxOptions,
} from './options.ts';
