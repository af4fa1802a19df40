import { Events, RESTJSONErrorCodes, type Interaction } from 'discord.js';
import { COMMANDS } from '../commands/index.ts';
import type { BotContext } from '../context.ts';
import { releaseInteraction } from '../discord-memory.ts';
import { BotRefusal, BUSY_MESSAGE, RESTARTING_REFUSAL, userMessage } from '../errors.ts';
import { handleButton } from '../interactions/buttons.ts';
import { handleModal } from '../interactions/modals.ts';
import { replyPrivately } from '../jobs/replies.ts';

export const name = Events.InteractionCreate;

/**
 * Routes every interaction, inside the one error boundary that answers the user privately. Copies of the
 * bot logged in as one shard all receive it: the copy that claims it answers, the others stay silent.
 */
export async function execute(interaction: Interaction, context: BotContext): Promise<void> {
  try {
    // Commands, buttons and forms read the store (settings, jobs) before they answer: with a shared
    // store unreachable they would wait past Discord's 3 seconds, so they are told at once instead.
    // No claim can be made then either: every copy tells the member, and Discord keeps the first.
    if (!context.queue.available()) {
      // Suggestions are not worth a "busy" reply from every copy: none are offered meanwhile.
      if (interaction.isAutocomplete()) return;
      throw new BotRefusal('busy', BUSY_MESSAGE);
    }
    const verdict = await context.copy.claim(interaction.id);
    if (verdict === 'elsewhere') {
      context.logger.debug({ interactionId: interaction.id }, 'answered by another copy');
      return;
    }
    if (verdict === 'last' && !interaction.isAutocomplete())
      throw new BotRefusal('shutting_down', RESTARTING_REFUSAL);
    if (interaction.isChatInputCommand()) {
      await COMMANDS.get(interaction.commandName)?.execute(interaction, context);
    } else if (interaction.isAutocomplete()) {
      await COMMANDS.get(interaction.commandName)?.autocomplete?.(interaction, context);
    } else if (interaction.isButton()) {
      await handleButton(interaction, context);
    } else if (interaction.isModalSubmit()) {
      await handleModal(interaction, context);
    }
  } catch (error) {
    const refusal = error instanceof BotRefusal || (error as { code?: unknown }).code === 'invalid_request';
    const log = {
      interactionId: interaction.id,
      userId: interaction.user.id,
      code: (error as { code?: unknown }).code,
    };
    if (refusal) context.logger.info(log, 'refused');
    else context.logger.error({ ...log, err: error }, 'interaction failed');
    if (!interaction.isRepliable()) return;
    await replyPrivately(interaction, userMessage(error)).catch((replyError: unknown) => {
      // Redis away, so unclaimed: another copy told the member first.
      const answered =
        (replyError as { code?: unknown }).code === RESTJSONErrorCodes.InteractionHasAlreadyBeenAcknowledged;
      context.logger[answered ? 'debug' : 'warn'](
        { interactionId: interaction.id, err: replyError },
        'could not tell the user',
      );
    });
  } finally {
    // A job goes on answering through its interaction: the service releases it when the job ends.
    if (!interaction.isRepliable() || !context.imagine.serves(interaction)) releaseInteraction(interaction);
  }
}
