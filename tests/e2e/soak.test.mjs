// The short churn-and-soak run of `make test` (tests/soak/soak.mjs says
// what it does and checks; `make soak` is the long one).

import test from 'node:test';
import { soak } from '../soak/soak.mjs';

const SECONDS = Number(process.env.SOAK_SECONDS || 75);

test(`churn and soak for ${SECONDS} s: product rules hold, RSS, descriptors and relay.db stay bounded, no sanitizer report`, { timeout: (SECONDS + 120) * 1000 }, async (t) => {
  const { summary } = await soak({ seconds: SECONDS, log: (line) => t.diagnostic(line) });
  t.diagnostic(JSON.stringify(summary));
});
