import { Events, type Client } from 'discord.js';
import type { BotContext } from '../context.ts';

export const name = Events.ClientReady;

export async function execute(client: Client<true>, context: BotContext): Promise<void> {
  context.logger.info({ user: client.user.tag, guilds: client.guilds.cache.size }, 'logged in to Discord');
}
