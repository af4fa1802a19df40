import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_CHANNEL,
  API_KEY,
  ARTIST_ROLE,
  BOT_TOKEN,
  CHANNEL,
  GUILD,
  OTHER_CHANNEL,
  alice,
  bob,
  buttonIds,
  manager,
  startWorld,
  type World,
} from './world.ts';
import { BOT_MODES } from './implementations.ts';

function assertNoSecrets(world: World): void {
  const shown = world.everythingShown();
  const logs = world.logs.join('');
  for (const secret of [API_KEY, BOT_TOKEN]) {
    assert.ok(!shown.includes(secret), 'no secret in any Discord message');
    assert.ok(!logs.includes(secret), 'no secret in any log line');
  }
}

const adminPosts = (world: World) =>
  world.standin.messages.filter(
    (message) => message.channelId === ADMIN_CHANNEL && !message.interactionToken,
  );

describe('refusals: options, words, channels, roles', () => {
  let world: World;
  before(async () => {
    world = await startWorld({
      BOT_ALLOWED_CHANNELS: CHANNEL,
      BOT_ALLOWED_ROLES: ARTIST_ROLE,
      BOT_BANNED_WORDS: 'gore, forbidden phrase',
    });
  });
  after(async () => {
    assertNoSecrets(world);
    await world.close();
  });
  const artist = { ...alice, roles: [ARTIST_ROLE] };

  it('names the option and the range, privately, and sends nothing', async () => {
    const reply = await world.privateReply(world.imagine(artist, { prompt: 'a cat', steps: 500 }));
    assert.match(reply.content, /`steps`: 500 is not allowed; allowed: a whole number from 20 to 100/);
    const refiner = await world.privateReply(
      world.imagine(artist, { prompt: 'a cat', refiner: true, high_noise_fraction: 1 }),
    );
    assert.match(refiner.content, /`high_noise_fraction`/);
    const flag = await world.privateReply(world.imagine(artist, { prompt: 'a cat --seed banana' }));
    assert.match(flag.content, /--seed: "banana" is not allowed/);
    assert.equal(world.sandbox.requests.length, 0);
  });

  it('refuses banned words, other channels and members without the role', async () => {
    const banned = await world.privateReply(world.imagine(artist, { prompt: 'lots of GORE please' }));
    assert.match(banned.content, /does not allow: "gore"/);
    const phrase = await world.privateReply(world.imagine(artist, { prompt: 'a forbidden phrase here' }));
    assert.match(phrase.content, /forbidden phrase/);
    const elsewhere = await world.privateReply(
      world.imagine({ ...artist, channelId: OTHER_CHANNEL }, { prompt: 'a cat' }),
    );
    assert.match(elsewhere.content, new RegExp(`<#${CHANNEL}> only`));
    const noRole = await world.privateReply(world.imagine(bob, { prompt: 'a cat' }));
    assert.match(noRole.content, /need one of these roles/);
    assert.equal(world.sandbox.requests.length, 0);
    const allowed = await world.result(world.imagine(artist, { prompt: 'gorest of forests' }));
    assert.ok(allowed.attachments.length > 0, 'a word that merely contains a banned one is fine');
  });

  it('applies the same rules to U1–U4, which post publicly too', async () => {
    const message = await world.result(world.imagine(artist, { prompt: 'two owls', samples: 2 }));
    const u1 = world.standin.clickButton(bob, message, buttonIds(message)[0]!);
    assert.match((await world.privateReply(u1)).content, /need one of these roles/);
    const posted = [u1.originalMessageId, ...u1.followupIds].map((id) => id && world.standin.message(id));
    assert.ok(!posted.some((post) => post && !post.ephemeral && post.attachments.length > 0));
    const allowed = await world.result(world.standin.clickButton(artist, message, buttonIds(message)[0]!));
    assert.equal(allowed.attachments.length, 1);
  });

  it('keeps /sdxl-admin to server managers', async () => {
    const refused = await world.privateReply(
      world.standin.slash({ ...alice, guildId: GUILD, channelId: CHANNEL }, 'sdxl-admin', {}, 'queue'),
    );
    assert.match(refused.content, /server managers/);
  });
});

for (const mode of BOT_MODES)
  describe(
    `fairness: queue positions, per-user limit, daily quota (${mode.name})`,
    { skip: mode.skip },
    () => {
      let world: World;
      before(async () => {
        world = await startWorld(
          {
            ...(await mode.env()),
            BOT_MAX_IN_FLIGHT: '1',
            BOT_USER_QUEUE_LIMIT: '2',
            BOT_USER_DAILY_IMAGES: '5',
          },
          // Long enough that the first job is still running while the others are typed, even on a busy machine.
          { latencyMs: 2500 },
        );
      });
      after(async () => {
        assertNoSecrets(world);
        await world.close();
      });

      it('shows each waiting job its position, updates it, and refuses past the per-user limit', async () => {
        const first = world.imagine(alice, { prompt: 'first' });
        await world.standin.waitFor(
          () => world.standin.original(first)?.history.length,
          'the first job to start',
        );
        const second = world.imagine(bob, { prompt: 'second' });
        await world.standin.waitFor(
          () => world.standin.original(second)?.history.length,
          'the second job queued',
        );
        const third = world.imagine(alice, { prompt: 'third' });
        await world.standin.waitFor(
          () => world.standin.original(third)?.history.length,
          'the third job queued',
        );
        const fourth = world.imagine(alice, { prompt: 'fourth' });
        const refusal = await world.privateReply(fourth);
        assert.match(refusal.content, /already have 2 jobs in line \(the limit is 2 per person\)/);
        const waiting = await world.standin.waitFor(() => {
          const message = world.standin.original(third);
          return message?.history.some((state) => /position \*\*2\*\*/.test(state.content))
            ? message
            : undefined;
        }, 'the third job at position 2');
        await world.standin.waitFor(
          () => waiting.history.some((state) => /position \*\*1\*\*/.test(state.content)),
          'the third job moving up to position 1',
        );
        for (const record of [first, second, third])
          assert.ok((await world.result(record)).attachments.length > 0);
      });

      it('states the daily quota when a request would pass it', async () => {
        // alice has made 2 images; 5 per day.
        await world.result(world.imagine(alice, { prompt: 'two more', samples: 2 }));
        const refusal = await world.privateReply(world.imagine(alice, { prompt: 'too many', samples: 2 }));
        assert.match(refusal.content, /made 4 of your 5 images today and this asks for 2/);
        assert.ok((await world.result(world.imagine(alice, { prompt: 'just one' }))).attachments.length > 0);
      });
    },
  );

for (const mode of BOT_MODES)
  describe(`money: low credits, out of credits, API failures (${mode.name})`, { skip: mode.skip }, () => {
    let world: World;
    before(async () => {
      // 0.008 a call: the second call crosses 1.0.
      world = await startWorld({ ...(await mode.env()), SDXL_LOW_CREDITS: '1' }, { credits: 1.01 });
    });
    after(async () => {
      assertNoSecrets(world);
      await world.close();
    });

    it('warns on every low result but posts to the admin channel once per crossing', async () => {
      const above = await world.result(world.imagine(alice, { prompt: 'one' }));
      assert.doesNotMatch(above.content, /running low/);
      assert.equal(adminPosts(world).length, 0);
      const low = await world.result(world.imagine(alice, { prompt: 'two' }));
      assert.match(low.content, /Credits are running low \(0\.994 left\); the admins have been told/);
      const lower = await world.result(world.imagine(bob, { prompt: 'three' }));
      assert.match(lower.content, /running low/);
      assert.equal(adminPosts(world).length, 1);
      assert.match(adminPosts(world)[0]!.content, /credits are low: 0\.994 left/);
      // Topped up (a result above the threshold ends the crossing), then crossing again: a second notice.
      world.sandbox.credits = 2;
      assert.doesNotMatch(
        (await world.result(world.imagine(alice, { prompt: 'four' }))).content,
        /running low/,
      );
      world.sandbox.credits = 1.005;
      await world.result(world.imagine(alice, { prompt: 'five' }));
      assert.equal(adminPosts(world).length, 2);
    });

    it('out of credits: a clear private message, admins told once, no retry', async () => {
      world.sandbox.credits = 0;
      const before = world.sandbox.requests.length;
      // The last balance seen was low: the free balance call runs first and the refusal is private.
      const message = await world.privateReply(world.imagine(alice, { prompt: 'broke' }));
      assert.match(message.content, /out of image credits/);
      assert.equal(message.attachments.length, 0);
      assert.equal(
        world.sandbox.requests.filter((request, index) => index >= before && request.method === 'POST')
          .length,
        0,
      );
      const again = await world.privateReply(world.imagine(bob, { prompt: 'still broke' }));
      assert.match(again.content, /out of image credits/);
      assert.equal(
        world.sandbox.requests.filter((request, index) => index >= before && request.method === 'POST')
          .length,
        0,
        'neither job reached a billed call',
      );
      assert.equal(adminPosts(world).filter((post) => /ran out/.test(post.content)).length, 1);
    });

    it('an API failure tells the user and does not count against the quota', async () => {
      world.sandbox.credits = 50;
      world.sandbox.configure({ statuses: [500, 500, 500] });
      const record = world.imagine(alice, { prompt: 'unlucky' });
      const message = await world.standin.waitFor(() => {
        const original = world.standin.original(record);
        return original && /failed on its side/.test(original.content) ? original : undefined;
      }, 'the failure message');
      assert.equal(message.components.length, 0);
      assert.ok((await world.result(world.imagine(alice, { prompt: 'lucky' }))).attachments.length > 0);
    });

    it('/sdxl-admin shows credits, queue and settings to a server manager only', async () => {
      const actor = { ...manager, guildId: GUILD, channelId: CHANNEL };
      const answer = async (subcommand: string) => {
        const record = world.standin.slash(actor, 'sdxl-admin', {}, subcommand);
        return world.standin.waitFor(() => {
          const message = world.standin.original(record);
          return message?.content ? message : undefined;
        }, `/sdxl-admin ${subcommand}`);
      };
      const credits = await answer('credits');
      assert.equal(credits.ephemeral, true);
      assert.match(credits.content, /Credits:\*\* 49\.992/);
      assert.match(
        (await answer('queue')).content,
        /0 jobs running \(0 of at most 2 images at once\), 0 waiting/,
      );
      const settings = await answer('settings');
      assert.match(settings.content, /Images at once: 2/);
      assert.ok(!settings.content.includes(API_KEY));
      const refused = await world.privateReply(
        world.standin.slash({ ...bob, guildId: GUILD, channelId: CHANNEL }, 'sdxl-admin', {}, 'credits'),
      );
      assert.match(refused.content, /server managers/);
    });
  });

for (const mode of BOT_MODES)
  describe(`low credits on an account holding free credits (${mode.name})`, { skip: mode.skip }, () => {
    it('one notice per crossing while the balance checks before each job report free credits too; a real top-up re-arms it', async () => {
      // Jobs report paid credits (x-remaining-credits); the balance call adds 0.5 free credits.
      const world = await startWorld(
        { ...(await mode.env()), SDXL_LOW_CREDITS: '1' },
        { credits: 1.004, freeCredits: 0.5 },
      );
      try {
        for (const prompt of ['crossing', 'after one', 'after two', 'after three']) {
          assert.match((await world.result(world.imagine(alice, { prompt }))).content, /running low/);
        }
        const lowNotices = () => adminPosts(world).filter((post) => /credits are low/.test(post.content));
        assert.equal(lowNotices().length, 1, 'four low results after one crossing: one notice');
        assert.match(lowNotices()[0]!.content, /0\.996 left/);
        // A real top-up: the balance check before the next job sees it and re-arms the notice.
        world.sandbox.credits = 2;
        assert.doesNotMatch(
          (await world.result(world.imagine(bob, { prompt: 'topped up' }))).content,
          /running low/,
        );
        world.sandbox.credits = 1.004;
        await world.result(world.imagine(bob, { prompt: 'crossing again' }));
        assert.equal(lowNotices().length, 2, 'a second crossing after the top-up: a second notice');
        assert.deepEqual(
          world.sandbox.billed.map((call) => call.cost),
          [0.008, 0.008, 0.008, 0.008, 0.008, 0.008],
        );
      } finally {
        await world.close();
      }
    });
  });

for (const mode of BOT_MODES)
  describe(`the daily quota under simultaneous requests (${mode.name})`, { skip: mode.skip }, () => {
    it('lets exactly as many images through as the quota allows', async () => {
      const world = await startWorld({
        ...(await mode.env()),
        BOT_USER_DAILY_IMAGES: '4',
        BOT_USER_QUEUE_LIMIT: '10',
      });
      try {
        const records = [1, 2, 3].map((n) => world.imagine(alice, { prompt: `at once ${n}`, samples: 2 }));
        const outcomes = await Promise.all(
          records.map((record) =>
            world.standin.waitFor(() => {
              const original = world.standin.original(record);
              if (original && !original.deleted && original.attachments.length > 0) return 'result';
              const refusal = record.followupIds
                .map((id) => world.standin.message(id))
                .find((m) => m?.ephemeral);
              return refusal && /Daily limit/.test(refusal.content) ? 'refused' : undefined;
            }, 'an outcome'),
          ),
        );
        assert.deepEqual(outcomes.sort(), ['refused', 'result', 'result']);
      } finally {
        await world.close();
      }
    });
  });

describe('no daily quota', () => {
  it('takes BOT_USER_DAILY_IMAGES=0 to mean no daily limit, and says so to admins', async () => {
    const world = await startWorld({ BOT_USER_DAILY_IMAGES: '0' });
    try {
      for (const prompt of ['one', 'two']) {
        const result = await world.result(world.imagine(alice, { prompt, samples: 4 }));
        assert.equal(result.attachments.length, 5, 'four images and the grid');
      }
      const record = world.standin.slash(
        { ...manager, guildId: GUILD, channelId: CHANNEL },
        'sdxl-admin',
        {},
        'settings',
      );
      const settings = await world.standin.waitFor(
        () => world.standin.original(record)?.content || undefined,
        '/sdxl-admin settings',
      );
      assert.match(settings, /Per person: 3 in line, no daily limit/);
    } finally {
      await world.close();
    }
  });
});

describe('a balance left below the price of one image', () => {
  it('counts as out: admins told once, later requests refused privately without a billed call', async () => {
    // 0.008 a call: one image leaves 0.004, which pays for nothing.
    const world = await startWorld({ SDXL_LOW_CREDITS: '1' }, { credits: 0.012 });
    try {
      await world.result(world.imagine(alice, { prompt: 'the last one' }));
      const posts = () => world.sandbox.requests.filter((request) => request.method === 'POST').length;
      const billed = posts();
      for (const prompt of ['first refused', 'two', 'three']) {
        const refusal = await world.privateReply(world.imagine(bob, { prompt }));
        assert.match(refusal.content, /out of image credits/);
      }
      assert.equal(posts(), billed, 'no call was sent for a balance that cannot pay for an image');
      assert.equal(adminPosts(world).filter((post) => /ran out/.test(post.content)).length, 1);
      world.sandbox.credits = 0.5;
      assert.ok((await world.result(world.imagine(alice, { prompt: 'topped up' }))).attachments.length > 0);
    } finally {
      await world.close();
    }
  });
});

describe('credit messages without an admin channel', () => {
  it('do not say the admins have been told', async () => {
    const world = await startWorld({ BOT_ADMIN_CHANNEL_ID: '', SDXL_LOW_CREDITS: '1' }, { credits: 0.5 });
    try {
      const low = await world.result(world.imagine(alice, { prompt: 'low' }));
      assert.match(low.content, /running low \(0\.492 left\); an admin needs to top up the account/);
      world.sandbox.credits = 0;
      const refused = await world.privateReply(world.imagine(alice, { prompt: 'broke' }));
      assert.match(refused.content, /out of image credits/);
      const again = await world.privateReply(world.imagine(bob, { prompt: 'still broke' }));
      for (const message of [low, refused, again])
        assert.doesNotMatch(message.content, /admins have been told/);
      assert.match(again.content, /An admin needs to top up the account/);
    } finally {
      await world.close();
    }
  });
});

describe('the first request the account cannot pay for', () => {
  /** Messages anyone in the channel can read: not ephemeral, not deleted. */
  const publicMessages = (world: World) =>
    world.standin.messages.filter((message) => !message.ephemeral && !message.deleted);

  it('right after a start (balance unknown) is refused privately, never as a public "thinking…"', async () => {
    const world = await startWorld({ SDXL_LOW_CREDITS: '1' }, { credits: 0 });
    try {
      const record = world.imagine(alice, { prompt: 'the very first' });
      const refusal = await world.privateReply(record);
      assert.match(refusal.content, /out of image credits/);
      assert.equal(refusal.ephemeral, true);
      assert.ok(
        record.callbacks.every(
          (callback) => callback.type !== 5 || (Number(callback.data?.flags) & 64) !== 0,
        ),
        'never acknowledged with a public "is thinking…"',
      );
      assert.deepEqual(
        publicMessages(world).filter((message) => message.channelId === CHANNEL),
        [],
        'nothing public left in the channel',
      );
      assert.equal(world.sandbox.requests.filter((request) => request.method === 'POST').length, 0);
      assert.equal(adminPosts(world).filter((post) => /ran out/.test(post.content)).length, 1);
    } finally {
      await world.close();
    }
  });

  it('with a healthy balance last seen, refused by the API: the public reply is removed, the refusal is private', async () => {
    const world = await startWorld({ SDXL_LOW_CREDITS: '1' }, { credits: 50 });
    try {
      await world.result(world.imagine(alice, { prompt: 'paid for' }));
      // Spent elsewhere: the bot still believes the balance is healthy.
      world.sandbox.credits = 0;
      const record = world.imagine(bob, { prompt: 'refused by the API' });
      const refusal = await world.privateReply(record);
      assert.match(refusal.content, /out of image credits/);
      await world.standin.waitFor(() => world.standin.original(record)?.deleted, 'the public reply removed');
      assert.ok(
        publicMessages(world).every((message) => !/out of image credits|thinking/i.test(message.content)),
        'no public refusal or "thinking…" left',
      );
    } finally {
      await world.close();
    }
  });
});
