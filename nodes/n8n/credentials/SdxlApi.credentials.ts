import type { IAuthenticateGeneric, ICredentialType, INodeProperties, Icon } from 'n8n-workflow';

/**
 * The SDXL API key and where the API lives. n8n adds the key to every request as `x-api-key`.
 * It has no declarative `test`: n8n would prefer that to the node's `sdxlApiCredentialTest`, which
 * calls the free balance endpoint and, when the key does not work, says why (refused, unreachable,
 * not the API). On success n8n 2.x's editor shows only its own "Connection tested successfully";
 * the credits left reach only callers of the REST API.
 */
export class SdxlApi implements ICredentialType {
  name = 'sdxlApi';

  displayName = 'SDXL API';

  icon: Icon = { light: 'file:../icons/sdxl.svg', dark: 'file:../icons/sdxl.dark.svg' };

  documentationUrl = 'https://www.npmjs.com/package/n8n-nodes-sdxl#credentials';

  properties: INodeProperties[] = [
    {
      displayName: 'API Key',
      name: 'apiKey',
      type: 'string',
      typeOptions: { password: true },
      required: true,
      default: '',
      description: 'Your API key from the Segmind console (API Keys page)',
    },
    {
      displayName: 'Base URL',
      name: 'baseUrl',
      type: 'string',
      default: 'https://api.segmind.com/v1',
      description:
        'Where the API lives. Keep the default for the hosted API; to try the node offline, run "sdxl sandbox" and use its address, e.g. http://127.0.0.1:8787/v1 (key: sandbox-key).',
    },
  ];

  authenticate: IAuthenticateGeneric = {
    type: 'generic',
    properties: { headers: { 'x-api-key': '={{$credentials.apiKey}}' } },
  };
}
