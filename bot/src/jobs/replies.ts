import { MessageFlags, type RepliableInteraction } from 'discord.js';

/** Interactions this bot answered with a public "is thinking…" reply of its own (not a deferUpdate). */
const publicDeferrals = new WeakSet<RepliableInteraction>();

/**
 * Acknowledges at once with a public "is thinking…" reply that the job's status and result replace; with
 * `private` (a member whose /settings keep results to themselves) only the member sees it. Resolves with
 * the public reply's message id when Discord says it.
 */
export async function deferPublicly(
  interaction: RepliableInteraction,
  options: { private?: boolean | undefined } = {},
): Promise<string | undefined> {
  if (options.private) {
    await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    return undefined;
  }
  const response = await interaction.deferReply({ withResponse: true });
  publicDeferrals.add(interaction);
  return response.resource?.message?.id;
}

/**
 * Tells only the user: a fresh ephemeral reply, or, when a public "is thinking…" is already showing,
 * removes it and follows up privately so the channel does not keep a refusal.
 */
export async function replyPrivately(interaction: RepliableInteraction, content: string): Promise<void> {
  const options = { content, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } } as const;
  if (publicDeferrals.has(interaction)) {
    await interaction.deleteReply().catch(() => undefined);
    await interaction.followUp(options);
  } else if (interaction.deferred && interaction.ephemeral && !interaction.replied) {
    await interaction.editReply({ content, allowedMentions: { parse: [] } });
  } else if (interaction.deferred || interaction.replied) {
    await interaction.followUp(options);
  } else {
    await interaction.reply(options);
  }
}
