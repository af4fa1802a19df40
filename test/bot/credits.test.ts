import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CreditMonitor } from '../../bot/src/credits.ts';
import { STORES } from './implementations.ts';

for (const kind of STORES) {
  describe(`the credit monitor on ${kind.name}`, { skip: kind.skip }, () => {
    it('a job finishing late with an older, higher balance does not re-arm the low-credit notice', async () => {
      const store = await kind.make();
      const notices: string[] = [];
      const monitor = new CreditMonitor({
        threshold: 1,
        store,
        inFlightImages: 2,
        notify: async (text) => void notices.push(text),
      });
      try {
        const finished = (remaining: number) => monitor.jobSucceeded({ remaining, cost: 0.008, images: 1 });
        assert.equal(await finished(1.004), false);
        assert.equal(await finished(0.996), true);
        // Started before the one above, finished after it: its balance is older.
        assert.equal(await finished(1.002), false);
        assert.equal(await finished(0.988), true);
        assert.equal(notices.length, 1, 'one crossing, one notice');
        // A real top-up (seen by /sdxl-admin credits), then a second crossing: a second notice.
        assert.equal(await monitor.balanceChecked({ credits: 5, total: 5 }), true);
        await finished(0.9);
        assert.equal(notices.length, 2);
      } finally {
        await store.close();
      }
    });

    it('several processes on one store seeing the same crossing at once post one notice, and one out-of-credits notice', async () => {
      const store = await kind.make();
      const notices: string[] = [];
      const monitors = Array.from(
        { length: 4 },
        () =>
          new CreditMonitor({
            threshold: 1,
            store,
            inFlightImages: 2,
            notify: async (text) => void notices.push(text),
          }),
      );
      try {
        await Promise.all(
          monitors.map((monitor) => monitor.jobSucceeded({ remaining: 0.5, cost: 0.008, images: 1 })),
        );
        assert.equal(notices.length, 1, 'one low-credit notice for one crossing');
        await Promise.all(monitors.map((monitor) => monitor.outOfCredits()));
        assert.equal(notices.length, 2, 'one out-of-credits notice');
        assert.match(notices[1]!, /ran out/);
      } finally {
        await store.close();
      }
    });
  });
}
