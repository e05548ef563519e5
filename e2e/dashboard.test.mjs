// Browser end-to-end test of footfall's web dashboard (/dashboard): Playwright drives
// Debian's Chromium against the real binary. Run by crates/footfall/tests/browser.rs after
// tracker.test.mjs (same server, same env), which leaves page views on shop.test today.
//   FOOTFALL_URL          http://127.0.0.1:<port> of the running footfall
//   FOOTFALL_STATS_KEYS   JSON object: site domain -> its stats key
//   FOOTFALL_SHARED_LINK  the path `footfall site share shop.test` printed
//   FOOTFALL_USER         EMAIL:PASSWORD of a viewer of shop.test (`footfall user add`)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const FF = process.env.FOOTFALL_URL;
const KEYS = JSON.parse(process.env.FOOTFALL_STATS_KEYS || '{}');
const SITE = 'shop.test';
const KEY = KEYS[SITE];
assert.ok(FF && KEY, 'FOOTFALL_URL and FOOTFALL_STATS_KEYS must be set (run through cargo test)');

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
});

// Today as the dashboard's "Last 7 days" asks for it: the browser's local dates.
function lastDays(days) {
  const iso = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  const today = new Date();
  const first = new Date(today.getFullYear(), today.getMonth(), today.getDate() - (days - 1));
  return [iso(first), iso(today)];
}

async function stats(q) {
  const r = await fetch(`${FF}/api/v2/query`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ site_id: SITE, ...q }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}

const kpi = (page, metric) => page.locator(`[data-metric="${metric}"] .value`);

async function signIn(page) {
  await page.goto(`${FF}/`);
  assert.match(page.url(), /\/dashboard$/, 'the server address leads to the dashboard');
  await page.locator('#signin').waitFor();
  await page.fill('#key', 'ff_stats_wrong');
  await page.fill('#site-input', SITE);
  await page.click('#signin-form button[type=submit]');
  await page.locator('#signin-error').waitFor();
  assert.match(await page.textContent('#signin-error'), /key|token/i, 'a wrong key says so');
  await page.fill('#key', KEY);
  await page.click('#signin-form button[type=submit]');
  await page.locator('#app').waitFor();
  await page.selectOption('#range', 'last7');
}

test('the dashboard shows what the Stats API counts, and filters by a click', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const failed = [];
  page.on('pageerror', (e) => failed.push(e.message));
  await signIn(page);
  const range = lastDays(7);
  const want = (await stats({ metrics: ['visitors', 'pageviews'], date_range: range })).results[0].metrics;
  assert.ok(want[1] > 0, 'the tracker tests left page views today');
  await page.waitForFunction(
    ([v, p]) => document.querySelector('[data-metric="visitors"] .value')?.textContent === String(v)
      && document.querySelector('[data-metric="pageviews"] .value')?.textContent === String(p),
    want,
  );
  // Under each figure, its change against the previous period, as the Stats API gives it.
  const change = (await stats({ metrics: ['visitors'], date_range: range,
    include: { comparisons: { mode: 'previous_period' } } })).results[0].comparison.change[0];
  await page.waitForFunction(
    (c) => document.querySelector('[data-metric="visitors"] .change')?.textContent
      === `${c > 0 ? '↑' : c < 0 ? '↓' : '→'} ${Math.abs(c)}%`,
    change,
  );
  // The visitor list has the visitors of the range; a click lists one's visits.
  const visitors = await (await fetch(`${FF}/api/v1/sites/${SITE}/visitors?date_range=${range.join(',')}`,
    { headers: { Authorization: `Bearer ${KEY}` } })).json();
  assert.ok(visitors.total > 0, JSON.stringify(visitors));
  await page.waitForFunction(
    (t) => document.querySelectorAll('#visitor-table tr.pick').length === Math.min(20, t),
    visitors.total,
  );
  await page.locator('#visitor-table tr.pick').first().click();
  await page.locator('#visitor-sessions table tr td').first().waitFor();
  // The top pages panel lists the Stats API's top page with its visitors.
  const top = (await stats({ metrics: ['visitors'], dimensions: ['event:page'], date_range: range })).results[0];
  const row = page.locator(`[data-dimension="event:page"] tr.row[data-value="${top.dimensions[0]}"]`);
  await row.waitFor();
  assert.equal((await row.locator('td.num').textContent()).trim(), String(top.metrics[0]));
  // The tracker's hits come from 127.0.0.1, without a country: the Stats API counts them
  // as a "" row, which the location panels leave out, as Plausible's dashboard does.
  const countries = (await stats({ metrics: ['visitors'], dimensions: ['visit:country_name'], date_range: range })).results;
  assert.ok(countries.some((r) => r.dimensions[0] === ''), JSON.stringify(countries));
  await page.waitForFunction(() => {
    const card = document.querySelector('[data-dimension="visit:country_name"]');
    return card?.querySelector('table') || card?.querySelector('.empty')?.textContent === 'No data for this range';
  });
  assert.equal(await page.locator('[data-dimension="visit:country_name"] tr.row').count(),
    countries.filter((r) => r.dimensions[0] !== '').length);
  // A click filters everything by that page.
  await row.click();
  await page.locator('.chip').waitFor();
  const filtered = (await stats({
    metrics: ['visitors', 'pageviews'], date_range: range,
    filters: [['is', 'event:page', [top.dimensions[0]]]],
  })).results[0].metrics;
  await page.waitForFunction(
    ([p]) => document.querySelector('[data-metric="pageviews"] .value')?.textContent === String(p),
    [filtered[1]],
  );
  assert.deepEqual(failed, [], 'no script errors');
  await context.close();
});

test('the dashboard fits a phone', async () => {
  const context = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await signIn(page);
  await page.locator('[data-dimension="visit:browser"] tr.row').first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling on a phone (${overflow}px too wide)`);
  // One column of panels on a phone.
  const [a, b] = await page.locator('#panels > .card').evaluateAll((cards) =>
    cards.slice(0, 2).map((c) => c.getBoundingClientRect().left));
  assert.equal(a, b, 'panels stack');
  await context.close();
});

test('a shared link opens the dashboard without signing in', async () => {
  const link = process.env.FOOTFALL_SHARED_LINK;
  assert.ok(link && link.startsWith('/dashboard#'), `FOOTFALL_SHARED_LINK: ${link}`);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${FF}${link}`);
  await page.locator('#app').waitFor();
  await page.selectOption('#range', 'last7');
  const want = (await stats({ metrics: ['visitors'], date_range: lastDays(7) })).results[0].metrics[0];
  await page.waitForFunction(
    (v) => document.querySelector('[data-metric="visitors"] .value')?.textContent === String(v),
    want,
  );
  assert.equal(new URL(page.url()).hash, '', 'the key is taken out of the address bar');
  assert.equal(await page.inputValue('#site'), SITE);
  await context.close();
});

test('a user signs in with email and password, stays signed in, and signs out', async () => {
  const [email, password] = (process.env.FOOTFALL_USER || '').split(/:(.*)/s);
  assert.ok(email && password, `FOOTFALL_USER: ${process.env.FOOTFALL_USER}`);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${FF}/dashboard`);
  await page.fill('#email', email);
  await page.fill('#password', 'not the password');
  await page.click('#login-form button[type=submit]');
  await page.locator('#login-error').waitFor();
  await page.fill('#password', password);
  await page.click('#login-form button[type=submit]');
  await page.locator('#app').waitFor();
  assert.equal(await page.inputValue('#site'), SITE);
  await page.selectOption('#range', 'last7');
  const want = (await stats({ metrics: ['visitors'], date_range: lastDays(7) })).results[0].metrics[0];
  await page.waitForFunction(
    (v) => document.querySelector('[data-metric="visitors"] .value')?.textContent === String(v),
    want,
  );
  // The session cookie (HttpOnly: not readable by scripts) keeps the user signed in.
  assert.equal(await page.evaluate(() => document.cookie.includes('ff_session')), false);
  await page.reload();
  await page.locator('#app').waitFor();
  await page.click('#signout');
  await page.locator('#signin').waitFor();
  await page.waitForTimeout(300);
  await page.reload();
  await page.locator('#signin').waitFor();
  assert.equal(await page.isVisible('#app'), false, 'signed out for good');
  await context.close();
});

test('the live panel lists a visitor who just arrived and invites them over a WebSocket', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await signIn(page);
  await page.locator('#live-card').waitFor();
  const r = await fetch(`${FF}/api/event`, {
    method: 'POST',
    headers: {
      'Content-Type': 'text/plain',
      'User-Agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36',
      'X-Forwarded-For': '198.51.100.77',
    },
    body: JSON.stringify({ n: 'pageview', u: `https://${SITE}/live-panel`, d: SITE }),
  });
  assert.equal(r.status, 202);
  const item = page.locator('#livelist li', { hasText: '/live-panel' });
  await item.waitFor({ timeout: 15000 });
  assert.match(await item.textContent(), /Chrome/);
  assert.ok(sockets.some((u) => u.endsWith(`/api/v1/sites/${SITE}/live`)), `the feed is a WebSocket: ${sockets}`);

  // The visitor's tracker opens its channel (as tracker/live.js does): the panel offers
  // an invitation, which reaches the channel through the dashboard's WebSocket.
  const token = r.headers.get('x-footfall-live');
  assert.ok(token, 'shop.test has live invitations on');
  const abort = new AbortController();
  const channel = await fetch(`${FF}/api/live/visitor?t=${token}`, { signal: abort.signal });
  assert.equal(channel.status, 200);
  const reader = channel.body.pipeThrough(new TextDecoderStream()).getReader();
  const button = item.locator('button', { hasText: 'Invite' });
  await button.waitFor({ timeout: 15000 });
  await button.click();
  await item.locator('.invite input').fill('Hello from the dashboard');
  await item.locator('.invite button').click();
  await item.locator('.note', { hasText: 'sent (1 tab)' }).waitFor({ timeout: 10000 });
  let received = '';
  while (!received.includes('event: invite')) {
    const { value, done } = await reader.read();
    if (done) break;
    received += value;
  }
  assert.match(received, /event: invite\ndata: \{"text":"Hello from the dashboard"\}/);
  abort.abort();
  await context.close();
});
