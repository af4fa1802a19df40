import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { startSandbox } from '@sdxl-kit/sandbox';
import { startDiscordStandin } from '../../bot/test-support/discord-standin/server.ts';
import { SqliteBudget } from '../../bot/src/budget/sqlite-budget.ts';
import { saveMemberSettings } from '../../bot/src/member-settings.ts';
import { API_KEY, BOT_TOKEN, CHANNEL, GUILD, alice, bob, manager, moderator, startWorld } from './world.ts';

const MAIN = new URL('../../bot/src/main.ts', import.meta.url).pathname;

/** The bot as `npm start` runs it, its output collected into `log.text`. */
function startBot(env: Record<string, string>, log: { text: string }): ChildProcess {
  const child = spawn(process.execPath, ['--no-warnings', MAIN], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk: Buffer) => (log.text += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (log.text += chunk.toString()));
  return child;
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });

/** Polls a condition on the sandbox (the stand-in's waitFor hears only the stand-in's own changes). */
async function until(predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !predicate();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

it('kill -9 with jobs in flight: the restarted bot resumes the submitted ones by request id and runs the queued ones; each job billed once and posted', async () => {
  // Each job stays 2 s queued and 1 s processing at the image service: in flight when the bot dies.
  const sandbox = await startSandbox({ apiKey: API_KEY, queueMs: 2000, latencyMs: 1000 });
  const standin = await startDiscordStandin({
    token: BOT_TOKEN,
    guilds: [{ id: GUILD, channels: [CHANNEL] }],
  });
  const dir = await mkdtemp(join(tmpdir(), 'sdxl-bot-kill-'));
  const env = {
    DISCORD_TOKEN: BOT_TOKEN,
    DISCORD_API_URL: standin.apiUrl,
    SDXL_API_KEY: API_KEY,
    SDXL_BASE_URL: sandbox.url,
    BOT_DATABASE: join(dir, 'jobs.sqlite'),
    // Two images at a time: two jobs submitted, two waiting in the bot's own line.
    BOT_MAX_IN_FLIGHT: '2',
    BOT_REQUESTS_PER_MINUTE: '100',
    BOT_POLL_FIRST_MS: '50',
    // The composed-grid layout, whose content names the prompt; the gallery's is tested in gallery.test.ts.
    BOT_MEDIA_GALLERY: 'false',
    // Each job holds its estimate when accepted: the restarted bot settles the holds the dead one took.
    BOT_BUDGET_SERVER_DAY: '1',
    LOG_LEVEL: 'debug',
  };
  const first = { text: '' };
  const second = { text: '' };
  let child = startBot(env, first);
  try {
    // Generous waits: two bot processes start here, and a loaded machine may take seconds for each.
    await standin.waitForGateway(30_000);
    const actors = [alice, bob, moderator, manager];
    const records = actors.map((actor, n) =>
      standin.slash({ ...actor, guildId: GUILD, channelId: CHANNEL }, 'imagine', {
        prompt: `harbour number ${n}`,
      }),
    );
    const submits = () =>
      sandbox.requests.filter((request) => request.method === 'POST' && request.path.startsWith('/v2/'));
    await until(() => submits().length === 2, 'two jobs submitted');
    for (const record of records.slice(2)) {
      await standin.waitFor(
        () => /queued, position/.test(standin.original(record)?.content ?? ''),
        'the waiting jobs to show their place',
        30_000,
      );
    }
    // The request ids are stored before the first status check: wait for that check, then kill.
    await until(
      () => sandbox.requests.filter((request) => request.path.endsWith('/status')).length >= 2,
      'the first status checks',
    );
    child.kill('SIGKILL');
    await exited(child);
    assert.ok(
      records.every((record) => !standin.original(record)?.attachments.length),
      'no result was posted before the kill',
    );
    // Bob's reply can no longer be edited (as 15 minutes after his command): his result goes to the channel.
    standin.expireToken(records[1]!);

    child = startBot(env, second);
    const done = (n: number) => {
      const original = standin.original(records[n]!);
      return original && !original.deleted && original.attachments.length > 0 ? original : undefined;
    };
    for (const n of [0, 2, 3]) {
      const message = await standin.waitFor(() => done(n), `job ${n} posted in its reply`, 60_000);
      assert.match(message.content, new RegExp(`harbour number ${n}`));
    }
    const inChannel = await standin.waitFor(
      () =>
        standin.messages.find(
          (message) =>
            message.channelId === CHANNEL &&
            !message.interactionToken &&
            message.attachments.length > 0 &&
            /harbour number 1/.test(message.content),
        ),
      "bob's result posted in the channel",
      60_000,
    );
    assert.deepEqual(inChannel.pings, [bob.userId], 'the channel post notifies bob, and only him');
    // His old reply no longer says "making…": the bot edits its own message through the channel.
    const old = standin.original(records[1]!)!;
    assert.match(old.content, /posted in the channel/);
    assert.ok(old.content.includes(inChannel.id), 'it links to the post');
    assert.equal(old.attachments.length, 0);

    assert.deepEqual(
      sandbox.billed.map((call) => call.prompt).sort(),
      records.map((_, n) => `harbour number ${n}`),
      'each job billed once',
    );
    assert.equal(submits().length, 4, 'no job was submitted twice');
    assert.match(second.text, /resuming a submitted job/);
    assert.match(second.text, /job back in line after a restart/);

    child.kill('SIGTERM');
    assert.equal(await exited(child), 0);
    const ledger = new SqliteBudget(env.BOT_DATABASE);
    const usage = await ledger.usage({ id: `guild:${GUILD}`, credits: 1, window: 'day' });
    ledger.close();
    const billed = Math.round(sandbox.billed.reduce((total, call) => total + call.cost, 0) * 1e6) / 1e6;
    assert.deepEqual(
      { spent: usage.spent, held: usage.reserved },
      { spent: billed, held: 0 },
      "the server's daily spend is what was billed, every hold settled",
    );
    const output = first.text + second.text;
    const shown = standin.messages.map((message) => JSON.stringify(message.history)).join('\n');
    for (const secret of [API_KEY, BOT_TOKEN, ...records.map((record) => record.token)]) {
      assert.ok(!output.includes(secret), 'no secret or interaction token in the log');
      assert.ok(!shown.includes(secret), 'no secret or interaction token in a message');
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await standin.close();
    await sandbox.close();
    await rm(dir, { recursive: true, force: true });
  }
});

it('a result that comes after the reply can no longer be edited is posted in the channel mentioning the requester, or sent to them when their results are private', async () => {
  const world = await startWorld({}, { latencyMs: 1500 });
  try {
    await saveMemberSettings(world.bot.context.store, bob.userId, { private: true });
    const open = world.imagine(alice, { prompt: 'a public lighthouse' });
    const hidden = world.imagine(bob, { prompt: 'a private lighthouse' });
    for (const record of [open, hidden]) {
      await world.standin.waitFor(
        () => /making/.test(world.standin.original(record)?.content ?? ''),
        'the job to start',
      );
      // As 15 minutes after the command: the reply can no longer be edited.
      world.standin.expireToken(record);
    }
    const posted = await world.standin.waitFor(
      () =>
        world.standin.messages.find(
          (message) =>
            message.channelId === CHANNEL && !message.interactionToken && message.attachments.length,
        ),
      'the public result posted in the channel',
    );
    assert.match(posted.content, /a public lighthouse/);
    assert.deepEqual(posted.pings, [alice.userId]);
    const sent = await world.standin.waitFor(() => {
      const dm = world.standin.dmChannelOf(bob.userId);
      return world.standin.messages.find((message) => message.channelId === dm && message.attachments.length);
    }, 'the private result sent to bob');
    assert.match(sent.content, /a private lighthouse/);
    assert.ok(
      !world.standin.messages.some(
        (message) =>
          message.channelId === CHANNEL && !message.ephemeral && /a private lighthouse/.test(message.content),
      ),
      'the private result never shows in the channel',
    );
  } finally {
    await world.close();
  }
});

it('a stop (SIGTERM) that outlasts the grace leaves a submitted job for the next start, which posts it, billed once; one caught before its request id was stored is told, not sent again', async () => {
  const world = await startWorld({ BOT_SHUTDOWN_GRACE_MS: '0' }, { latencyMs: 2000 });
  try {
    const kept = world.imagine(alice, { prompt: 'a lighthouse after the restart' });
    const caught = world.imagine(bob, { prompt: 'a lighthouse lost in the restart' });
    const store = world.bot.context.store;
    const idOf = async (prompt: string) => {
      for (;;) {
        const job = (await store.unfinished()).find((record) => record.input.prompt === prompt);
        if (job?.requestId) return job.id;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    await idOf('a lighthouse after the restart');
    // As if the bot had died between sending bob's job and storing its request id.
    await store.update(await idOf('a lighthouse lost in the restart'), { requestId: undefined });
    await world.restart();
    assert.ok(
      world.standin
        .original(kept)!
        .history.some((state) =>
          /already sent and its images are posted when the bot is back/.test(state.content),
        ),
      'told at the stop that the job goes on',
    );
    const posted = await world.result(kept);
    assert.match(posted.content, /a lighthouse after the restart/);
    const told = await world.standin.waitFor(() => {
      const message = world.standin.original(caught);
      return message && /restarted while this job was being sent/.test(message.content) ? message : undefined;
    }, 'bob told his job was stopped');
    assert.equal(told.attachments.length, 0);
    // Each job was submitted once, and neither again after the restart.
    assert.equal(
      world.sandbox.requests.filter((request) => request.method === 'POST' && request.path.startsWith('/v2/'))
        .length,
      2,
    );
  } finally {
    await world.close();
  }
});

it('a job a crash left waiting in line past its deadline is told it was stopped at the next start, not run', async () => {
  const world = await startWorld({ BOT_JOB_DEADLINE_MS: '60000' });
  try {
    const record = world.imagine(alice, { prompt: 'an old request' });
    await world.result(record);
    // What a crash leaves: a job still queued, asked for two minutes ago, its reply's token alive.
    await world.bot.context.store.createWithinQuota(
      {
        id: 'left0in0line0by0a0crash',
        userId: alice.userId,
        guildId: GUILD,
        channelId: CHANNEL,
        input: { prompt: 'an old request' },
        samples: 1,
        status: 'queued',
        createdAt: Date.now() - 120_000,
        reply: {
          applicationId: world.standin.applicationId,
          token: record.token,
          expiresAt: Date.now() + 600_000,
        },
      },
      { since: 0, limit: 1000 },
    );
    const before = world.sandbox.billed.length;
    await world.restart();
    await world.standin.waitFor(
      () => /15-minute window/.test(world.standin.original(record)?.content ?? ''),
      'the stopped message',
    );
    assert.equal((await world.bot.context.store.get('left0in0line0by0a0crash'))?.status, 'failed');
    assert.equal(world.sandbox.billed.length, before, 'nothing sent');
  } finally {
    await world.close();
  }
});
