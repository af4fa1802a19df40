import { REST, Routes } from 'discord.js';
import { COMMANDS } from './commands/index.ts';
import { ConfigError, loadConfig } from './config.ts';

/** The commands' JSON as Discord registers it. */
export function commandBodies(): unknown[] {
  return [...COMMANDS.values()].map((command) => command.data.toJSON());
}

/**
 * Registers (overwrites) the commands: in DISCORD_GUILD_ID when set (instant, for development),
 * else globally. Needs DISCORD_TOKEN and DISCORD_APPLICATION_ID.
 */
export async function deployCommands(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ scope: string; count: number }> {
  // Registering commands talks to Discord only: no SDXL settings needed.
  const config = loadConfig(env, { requireSdxl: false });
  if (!config.applicationId) {
    throw new ConfigError(
      'DISCORD_APPLICATION_ID',
      'required: the application id from the Discord developer portal',
    );
  }
  const rest = new REST(config.discordApiUrl ? { api: config.discordApiUrl } : {}).setToken(
    config.discordToken,
  );
  const route = config.deployGuildId
    ? Routes.applicationGuildCommands(config.applicationId, config.deployGuildId)
    : Routes.applicationCommands(config.applicationId);
  const registered = (await rest.put(route, { body: commandBodies() })) as unknown[];
  return {
    scope: config.deployGuildId ? `guild ${config.deployGuildId}` : 'global',
    count: registered.length,
  };
}

if (import.meta.main) {
  try {
    const { scope, count } = await deployCommands();
    process.stdout.write(`Registered ${count} commands (${scope}).\n`);
  } catch (error) {
    process.stderr.write(
      `${error instanceof ConfigError ? 'Configuration error: ' : ''}${(error as Error).message}\n`,
    );
    process.exitCode = 1;
  }
}
