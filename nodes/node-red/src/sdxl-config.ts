import {
  readAccountSettings,
  type AccountConfig,
  type AccountCredentials,
  type AccountSettings,
} from './account.ts';
import type { NodeAPI, RuntimeNode } from './red.ts';

interface SdxlConfigNode extends RuntimeNode<AccountCredentials> {
  settings: AccountSettings | undefined;
  refused?: string;
}

/**
 * The `sdxl-config` node: the API key (a password credential, never sent back to the editor nor
 * exported) and the account's limits. It holds settings only; the SDXL nodes build one client per
 * config node from them, so the limiter is shared by every node that uses this account.
 */
export default function register(RED: NodeAPI): void {
  function SdxlConfig(this: SdxlConfigNode, config: AccountConfig): void {
    RED.nodes.createNode(this, config);
    this.name = config.name;
    try {
      this.settings = readAccountSettings(config);
    } catch (error) {
      // The editor refuses such values; a hand-edited flow file still deserves a clear word. No
      // fallback to defaults: that would drop the base URL and send the key to the hosted API.
      this.refused = (error as Error).message;
      this.settings = undefined;
      this.error(`The SDXL account's settings are refused: ${this.refused}`);
    }
  }
  RED.nodes.registerType('sdxl-config', SdxlConfig as never, {
    credentials: { apiKey: { type: 'password' } },
  });
}
