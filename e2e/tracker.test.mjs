// Browser end-to-end tests of footfall's tracker: Playwright drives Debian's Chromium
// through a small test site (static pages, an SPA using pushState, a 404 page) that
// loads the tracker from a running footfall, then the Stats API must show what happened.
//
// Run by crates/footfall/tests/browser.rs, which starts the real binary and sets:
//   FOOTFALL_URL          http://127.0.0.1:<port> of the running footfall
//   FOOTFALL_STATS_KEYS   JSON object: site domain -> its stats key, for shop.test (live
//                         invitations on), other.test, cookie.test and parity.test
// Optional: CHROMIUM (default /usr/bin/chromium).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { chromium } from 'playwright-core';

const FF = process.env.FOOTFALL_URL;
const KEYS = JSON.parse(process.env.FOOTFALL_STATS_KEYS || '{}');
const SITE = 'shop.test';
const OTHER = 'other.test';
const COOKIE_SITE = 'cookie.test';
// Plausible's script extensions and SPA rules, as Plausible's own tracker tests use them.
const PARITY = 'parity.test';
const CHROME_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36';

const KEY = KEYS['shop.test'];
assert.ok(FF && KEY, 'FOOTFALL_URL and FOOTFALL_STATS_KEYS must be set (run through cargo test)');

let server;
let port;
let browser;

// ---------- the test site ----------

const tracker = (attrs, src = `${FF}/js/script.js`) =>
  `<script defer ${attrs} src="${src}"></script>`;

function html(title, body, head = '') {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>${head}</head>
<body style="margin:0;font:16px sans-serif">${body}</body></html>`;
}

const tall = (n) => Array.from({ length: n }, (_, i) => `<p style="height:120px">Paragraph ${i}</p>`).join('');

// Links that count but do not navigate (the tracker's listeners still see the click).
const stay = 'onclick="event.preventDefault()"';

function pages() {
  const out = `http://outbound.test:${port}/landing`;
  const queued = `<script>window.footfall=window.footfall||function(){(footfall.q=footfall.q||[]).push(arguments)};footfall('Queued',{props:{early:'yes'}})</script>`;
  return {
    '/': html(
      'Home',
      `<h1>Home</h1><a id="about" href="/about">About</a>`,
      queued + tracker(`data-domain="${SITE}" data-outbound-links data-file-downloads data-404`),
    ),
    // Options from the file name, as with Plausible's script.file-downloads.outbound-links.js.
    '/about': html(
      'About',
      `<h1>About</h1><a id="report" href="/files/report.pdf">Report</a>${tall(40)}<a id="app" href="/app/">App</a>`,
      tracker(`data-domain="${SITE}"`, `${FF}/js/script.file-downloads.outbound-links.js`),
    ),
    '/app/': html(
      'App',
      `<h1 id="view">app</h1>
<button id="settings" onclick="history.pushState({}, '', '/app/settings'); view.textContent='settings'">Settings</button>
<button id="profile" onclick="history.pushState({}, '', '/app/profile'); view.textContent='profile'">Profile</button>
<button id="tab" onclick="history.replaceState({}, '', '/app/profile?tab=2')">Tab</button>
<button id="signup" onclick="footfall('Signup', {props: {plan: 'pro'}, revenue: {currency: 'EUR', amount: 29}, callback: function (r) { document.body.dataset.signup = r.status || String(r.error) }})">Sign up</button>
<a id="out" href="${out}">Partner</a>`,
      tracker(`data-domain="${SITE}" data-outbound-links`),
    ),
    '/hash/': html(
      'Hash',
      `<h1>Hash routing</h1><a id="one" href="#/one">One</a>`,
      tracker(`data-domain="${SITE}" data-hash`),
    ),
    '/plain': html('Plain', `<h1>Plain</h1>`, tracker(`data-domain="${SITE}"`)),
    '/other/a': html(
      'A',
      `<h1>A</h1><a id="b" href="/other/b">B</a>`,
      `<script>addEventListener('pageshow', function (e) { window.restored = e.persisted })</script>` +
        tracker(`data-domain="${OTHER}"`),
    ),
    '/other/b': html('B', `<h1>B</h1>`, tracker(`data-domain="${OTHER}"`)),
    // Same origin through the /ff/ proxy below, so first-party cookies work.
    '/cookie/': html(
      'Cookie',
      `<h1>Cookie mode</h1><button id="next" onclick="history.pushState({}, '', '/cookie/next')">Next</button>`,
      tracker(`data-domain="${COOKIE_SITE}" data-cookie data-include-localhost`, '/ff/js/script.js'),
    ),
    // Plausible's tagged-events, outbound-links and file-downloads extensions (from the
    // file name), form submissions, and pageview-props (event-* attributes).
    '/p/tagged': html(
      'Tagged',
      `<a id="pay" ${stay} class="plausible-event-name=Payment+Complete should-ignore plausible-event-method=Credit+Card plausible-revenue-amount=29 plausible-revenue-currency=EUR" href="https://awesome.test/pay">Pay</a>
<button id="btn" class="plausible-event-name--Custom+Event plausible-event-foo=bar"><span id="inner">Inner</span></button>
<span id="untagged" class="plausible-event-name= plausible-event-foo=bar">Not tagged</span>
<form id="signup" class="plausible-event-name=Signup plausible-event-type=Newsletter" onsubmit="event.preventDefault()"><input id="email" value="a@b.c"><input id="join" type="submit" value="Join"></form>
<form id="contact" onsubmit="event.preventDefault()"><input id="send" type="submit" value="Send"></form>
<a id="dl-out" ${stay} href="https://files.test/file.pdf">Outbound PDF</a>
<a id="dl" ${stay} href="/files/report.pdf?v=2">Report</a>
<a id="iso" ${stay} href="/files/disk.iso">ISO</a>`,
      tracker(`data-domain="${PARITY}" data-form-submissions add-file-types="iso" event-author="Ann"`, `${FF}/js/script.tagged-events.outbound-links.file-downloads.js`),
    ),
    // History routing with data-exclude, the url option and replaceState.
    '/p/spa': html(
      'SPA',
      `<button id="virtual" onclick="plausible('Virtual', {url: '/p/virtual'})">Virtual</button>`,
      tracker(`data-domain="${PARITY}" data-exclude="/p/spa/private/**, /p/spa/drafts/*"`),
    ),
    // Hash routing: only hashchange makes page views.
    '/p/hash': html('Hash', `<a id="x" href="#/x">X</a>`, tracker(`data-domain="${PARITY}" data-hash`)),
    '/p/hidden': html('Hidden', `<h1>Opened in the background</h1>`, tracker(`data-domain="${PARITY}"`)),
    '/p/local': html('Local', `<h1>Local</h1>`, tracker(`data-domain="${PARITY}"`, `${FF}/js/script.local.js`)),
  };
}

function startSite() {
  return new Promise((resolve) => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url, 'http://x');
      if (url.pathname.startsWith('/ff/')) return proxy(req, res, url);
      if (url.pathname === '/files/report.pdf') {
        res.writeHead(200, { 'Content-Type': 'application/pdf', 'Content-Disposition': 'attachment; filename=report.pdf' });
        return res.end('%PDF-1.4\n%%EOF\n');
      }
      if (url.pathname === '/landing') {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        return res.end(html('Partner', '<h1>Partner site</h1>'));
      }
      const page = pages()[url.pathname];
      const status = page ? 200 : 404;
      // No `Cache-Control: no-store`: it would keep pages out of the back/forward cache.
      res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(
        page ||
          html(
            'Not found',
            '<h1>404</h1>',
            tracker(`data-domain="${SITE}" data-outbound-links data-file-downloads data-404`),
          ),
      );
    });
    server.listen(0, '127.0.0.1', () => {
      port = server.address().port;
      resolve();
    });
  });
}

// A reverse proxy in front of footfall, as a same-origin (cookie mode) setup has.
function proxy(req, res, url) {
  const target = new URL(url.pathname.slice(3) + url.search, FF);
  const up = http.request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.pipe(res);
  });
  up.on('error', () => {
    res.writeHead(502);
    res.end();
  });
  req.pipe(up);
}

// ---------- footfall's APIs ----------

/** The UTC date `days` from today (the test sites' timezone is UTC). */
const utcDate = (days) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);

async function query(q) {
  const r = await fetch(`${FF}/api/v2/query`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${KEYS[q.site_id]}`, 'Content-Type': 'application/json' },
    // Yesterday and today rather than "day": a run that crosses midnight UTC sent its
    // first hits yesterday and asks today (a CI run at 23:59 found no page views).
    body: JSON.stringify({ date_range: [utcDate(-1), utcDate(0)], ...q }),
  });
  const body = await r.json();
  assert.equal(r.status, 200, `query ${JSON.stringify(q)}: ${JSON.stringify(body)}`);
  return body.results;
}

/** Polls `fn` until it returns a truthy value (events become visible after the store's batch). */
async function eventually(what, fn, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last && last.ok) return last.value;
    if (Date.now() > deadline) assert.fail(`${what}: gave up waiting; last saw ${JSON.stringify(last && last.value)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const byDim = (rows) => Object.fromEntries(rows.map((r) => [r.dimensions.join(' | '), r.metrics]));

/** Reads a text/event-stream response into a queue of {event, data} objects. */
function sseReader(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const queue = [];
  const waiters = [];
  let buf = '';
  (async () => {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch {
        return;
      }
      if (chunk.done) return;
      buf += decoder.decode(chunk.value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = { event: 'message', data: '' };
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) ev.event = line.slice(6).trim();
          else if (line.startsWith('data:')) ev.data += line.slice(5).trim();
        }
        if (block.split('\n').every((l) => l.startsWith(':'))) continue;
        queue.push(ev);
        waiters.splice(0).forEach((w) => w());
      }
    }
  })();
  return {
    async next(pred, timeoutMs = 15000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = queue.findIndex(pred);
        if (i >= 0) return queue.splice(i, 1)[0];
        const left = deadline - Date.now();
        if (left <= 0) assert.fail(`no matching live event; queued: ${JSON.stringify(queue)}`);
        await new Promise((r) => {
          waiters.push(r);
          setTimeout(r, Math.min(left, 500));
        });
      }
    },
    close: () => reader.cancel().catch(() => {}),
  };
}

// ---------- the browser ----------

before(async () => {
  await startSite();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // Playwright turns off the back/forward cache and marks the browser as automated;
    // the tracker (rightly) sends nothing for automated browsers.
    ignoreDefaultArgs: ['--disable-back-forward-cache', '--enable-automation'],
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-blink-features=AutomationControlled',
      `--host-resolver-rules=MAP ${SITE} 127.0.0.1, MAP outbound.test 127.0.0.1`,
      // For the whole browser: a context's user agent misses requests sent while a page
      // unloads, and headless Chromium's own says HeadlessChrome (dropped as a bot).
      `--user-agent=${CHROME_UA}`,
    ],
  });
});

after(async () => {
  await browser?.close();
  server?.close();
});

async function newPage(init) {
  const context = await browser.newContext({ userAgent: CHROME_UA, acceptDownloads: true });
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  const hits = [];
  context.on('request', (r) => {
    if (r.url().startsWith(FF) || r.url().includes('/ff/api/')) {
      if (r.url().includes('/api/event')) hits.push(JSON.parse(r.postData() || '{}'));
    }
  });
  return { context, page, hits };
}

const settle = (page, ms = 400) => page.waitForTimeout(ms);

test('a visit through static pages, an SPA, downloads, outbound links, a 404 and a live invitation', { timeout: 120000 }, async () => {
  const { context, page, hits } = await newPage();
  const site = `http://${SITE}:${port}`;
  assert.equal(await page.evaluate(() => navigator.webdriver), false);

  // Static pages: a page view each, the queued custom event, engagement on leaving.
  await page.goto(`${site}/`);
  await settle(page);
  await page.click('#about');
  await page.waitForURL(`${site}/about`);
  await page.waitForTimeout(1500);
  await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await settle(page);
  await Promise.all([page.waitForEvent('download'), page.click('#report')]);
  await settle(page);
  await page.click('#app');
  await page.waitForURL(`${site}/app/`);
  await settle(page);

  // SPA: pushState and popstate are page views; replaceState of the same path is not.
  await page.click('#settings');
  await settle(page);
  await page.goBack();
  await page.waitForURL(`${site}/app/`);
  await settle(page);
  await page.click('#profile');
  await settle(page);
  await page.click('#tab');
  await settle(page);

  // A custom event with props, revenue and a callback.
  await page.click('#signup');
  await page.waitForFunction(() => document.body.dataset.signup);
  assert.equal(await page.evaluate(() => document.body.dataset.signup), '202');

  // The dashboard's live feed sees this visitor with an open channel and invites them.
  const feed = await fetch(`${FF}/api/v1/sites/${SITE}/live`, { headers: { Authorization: `Bearer ${KEY}` } });
  assert.equal(feed.status, 200);
  assert.match(feed.headers.get('content-type'), /text\/event-stream/);
  const events = sseReader(feed);
  await events.next((e) => e.event === 'ready');
  const me = JSON.parse(
    (await events.next((e) => (e.event === 'arrival' || e.event === 'channel') && JSON.parse(e.data).invitable)).data,
  );
  assert.equal(me.page, '/app/profile');
  const invite = await fetch(`${FF}/api/v1/sites/${SITE}/live/${me.visitor}/invite`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ text: 'Questions? Talk to us live.', url: 'https://meet.example.com/r/42', label: 'Join the call' }),
  });
  assert.equal(invite.status, 202, await invite.text());
  const prompt = page.locator('#footfall-invite');
  await prompt.waitFor({ state: 'visible', timeout: 10000 });
  assert.match(await prompt.innerText(), /Questions\? Talk to us live\./);
  assert.equal(await prompt.locator('a').getAttribute('href'), 'https://meet.example.com/r/42');
  await prompt.locator('button').click();
  await prompt.waitFor({ state: 'detached' });

  // Another page view is a `page` event on the feed.
  await page.click('#settings');
  const moved = await events.next((e) => e.event === 'page' && JSON.parse(e.data).visitor === me.visitor);
  assert.equal(JSON.parse(moved.data).page, '/app/settings');

  // Hash routing (data-hash), then an outbound link that leaves the site.
  await page.goto(`${site}/hash/`);
  await settle(page);
  await page.click('#one');
  await settle(page);
  await page.goto(`${site}/app/`);
  await settle(page);
  await page.click('#out');
  await page.waitForURL(/outbound\.test/);
  await settle(page);

  // A missing page (data-404), then leave it: the page hides and says how long it was read.
  await page.goto(`${site}/nope`);
  await settle(page);
  await page.goto('about:blank');
  await settle(page, 800);
  await context.close();

  // Leaving the site closes the live channel: the visitor departs from the feed.
  const gone = await events.next((e) => e.event === 'departure' && JSON.parse(e.data).visitor === me.visitor, 30000);
  assert.ok(gone);
  events.close();

  // What the browser sent: Plausible's short keys.
  const pv = hits.find((h) => h.n === 'pageview');
  assert.deepEqual(Object.keys(pv).sort(), ['d', 'n', 'r', 'u']);
  assert.equal(pv.d, SITE);
  // (Requests sent while a page unloads, like most engagement events, never reach
  // Playwright's request events: the Stats API checks below see them.)
  assert.ok(hits.some((h) => h.n === 'pageview' && h.h === 1 && h.u.endsWith('#/one')));

  // And what footfall made of it.
  const pages = await eventually('page views', async () => {
    const rows = byDim(await query({ site_id: SITE, metrics: ['pageviews'], dimensions: ['event:page'] }));
    return { ok: rows['/nope'] && rows['/app/settings']?.[0] === 2, value: rows };
  });
  assert.deepEqual(pages, {
    '/': [1],
    '/about': [1],
    '/app/': [3],
    '/app/settings': [2],
    '/app/profile': [1],
    '/hash/': [1],
    '/hash/#/one': [1],
    '/nope': [1],
  });
  const [agg] = await query({ site_id: SITE, metrics: ['visitors', 'visits', 'pageviews'] });
  assert.deepEqual(agg.metrics, [1, 1, 11]);

  const goals = byDim(await query({ site_id: SITE, metrics: ['events'], dimensions: ['event:goal'] }));
  for (const goal of ['Queued', 'Signup', 'File Download', 'Outbound Link: Click', '404']) {
    assert.deepEqual(goals[goal], [1], `goal ${goal} in ${JSON.stringify(goals)}`);
  }
  const plan = await query({
    site_id: SITE, metrics: ['events'], dimensions: ['event:props:plan'], filters: [['is', 'event:goal', ['Signup']]],
  });
  assert.deepEqual(byDim(plan), { pro: [1] });
  const urls = byDim(await query({
    site_id: SITE, metrics: ['events'], dimensions: ['event:props:url'], filters: [['is', 'event:goal', ['Outbound Link: Click', 'File Download']]],
  }));
  assert.deepEqual(urls, { [`http://outbound.test:${port}/landing`]: [1], [`${site}/files/report.pdf`]: [1] });
  const missing = await query({
    site_id: SITE, metrics: ['events'], dimensions: ['event:props:path'], filters: [['is', 'event:goal', ['404']]],
  });
  assert.deepEqual(byDim(missing), { '/nope': [1] });

  const about = await eventually('engagement on /about', async () => {
    const rows = await query({
      site_id: SITE, metrics: ['time_on_page', 'scroll_depth'], filters: [['is', 'event:page', ['/about']]],
    });
    return { ok: rows[0] && rows[0].metrics[0] > 0, value: rows[0] && rows[0].metrics };
  });
  assert.ok(about[0] >= 1, `time_on_page on /about: ${about[0]}`);
  assert.equal(about[1], 100, 'scroll_depth on /about');
  const read = byDim(await query({ site_id: SITE, metrics: ['time_on_page'], dimensions: ['event:page'] }));
  assert.ok(read['/app/profile'][0] > 0, `time_on_page by page: ${JSON.stringify(read)}`);

  // Nothing the browser sent was taken for a bot.
  const drops = await fetch(`${FF}/api/v1/sites/${SITE}/drops`, { headers: { Authorization: `Bearer ${KEY}` } });
  assert.equal((await drops.json()).bots_dropped, 0);
});

test('automated browsers, the local opt-out and localhost send nothing', async () => {
  const cases = [
    ['webdriver', () => Object.defineProperty(navigator, 'webdriver', { get: () => true }), `http://${SITE}:${port}/plain`],
    ['PhantomJS', () => { window._phantom = {}; }, `http://${SITE}:${port}/plain`],
    ['Nightmare', () => { window.__nightmare = {}; }, `http://${SITE}:${port}/plain`],
    ['Plausible\'s opt-out', () => localStorage.setItem('plausible_ignore', 'true'), `http://${SITE}:${port}/plain`],
    ['opt-out', () => localStorage.setItem('footfall_ignore', 'true'), `http://${SITE}:${port}/plain`],
    ['localhost', null, `http://127.0.0.1:${port}/plain`],
  ];
  for (const [what, init, url] of cases) {
    const { context, page, hits } = await newPage(init);
    await page.goto(url);
    await page.evaluate(() => window.footfall('Ignored?'));
    await settle(page, 800);
    assert.deepEqual(hits, [], `${what}: the tracker sent ${JSON.stringify(hits)}`);
    await context.close();
  }
});

test('a page restored from the back/forward cache is a page view', async () => {
  const { context, page, hits } = await newPage();
  await page.goto(`http://${SITE}:${port}/other/a`);
  await settle(page);
  await page.click('#b');
  await page.waitForURL(/other\/b/);
  await settle(page);
  // A page from the back/forward cache fires no `load`.
  await page.goBack({ waitUntil: 'commit' });
  await page.waitForURL(/other\/a/, { waitUntil: 'commit' });
  await settle(page);
  const restored = await page.evaluate(() => window.restored);
  await context.close();
  assert.equal(restored, true, 'Chromium restored the page from the back/forward cache');
  assert.deepEqual(hits.filter((h) => h.n === 'pageview').map((h) => new URL(h.u).pathname), ['/other/a', '/other/b', '/other/a']);
  const [agg] = await eventually('other.test page views', async () => {
    const rows = await query({ site_id: OTHER, metrics: ['pageviews'] });
    return { ok: rows[0].metrics[0] === 3, value: rows };
  });
  assert.deepEqual(agg.metrics, [3]);
});

test('cookie mode on a same-origin setup sets first-party HttpOnly cookies', async () => {
  const { context, page } = await newPage();
  // localhost: Chromium keeps Secure cookies only on secure origins, and localhost is one.
  await page.goto(`http://localhost:${port}/cookie/`);
  const cookies = await eventually('ff_vid and ff_sid', async () => {
    const c = await context.cookies();
    return { ok: c.some((x) => x.name === 'ff_sid'), value: c };
  });
  const vid = cookies.find((c) => c.name === 'ff_vid');
  const sid = cookies.find((c) => c.name === 'ff_sid');
  for (const c of [vid, sid]) {
    assert.ok(c && c.httpOnly && c.secure && c.sameSite === 'Lax', JSON.stringify(c));
  }
  assert.ok(vid.expires - Date.now() / 1000 > 364 * 86400, 'ff_vid lasts a year');
  assert.ok(sid.expires - Date.now() / 1000 <= 1800, 'ff_sid lasts 30 minutes');
  assert.equal(await page.evaluate(() => document.cookie), '', 'the page cannot read them');
  await page.click('#next');
  await settle(page, 600);
  const after = await context.cookies();
  assert.equal(after.find((c) => c.name === 'ff_vid').value, vid.value);
  assert.equal(after.find((c) => c.name === 'ff_sid').value, sid.value, 'same visit');
  await context.close();
  const [agg] = await eventually('cookie.test page views', async () => {
    const rows = await query({ site_id: COOKIE_SITE, metrics: ['visitors', 'visits', 'pageviews'] });
    return { ok: rows[0].metrics[2] === 2, value: rows };
  });
  assert.deepEqual(agg.metrics, [1, 1, 2]);
});

// ---------- parity with Plausible's script (parity.test) ----------

const onParity = (path) => `http://${SITE}:${port}${path}`;

test("Plausible's tagged events, form submissions, outbound links before downloads, pageview props", async () => {
  const { context, page, hits } = await newPage();
  await page.goto(onParity('/p/tagged'));
  // extras.js (these options' code) has loaded before the page's load event.
  await page.waitForFunction(() => document.querySelector('script[src$="/extras.js"]'));
  await settle(page);
  await page.click('#pay'); // tagged and outbound: only the tagged event, with the link's url
  await page.click('#inner'); // inside a tagged button
  await page.click('#untagged'); // an empty name is no tag
  await page.click('#email'); // clicks inside a tagged form are not events...
  await page.click('#join'); // ...its submission is
  await page.click('#send'); // an untagged form: Form: Submission
  await page.click('#dl-out'); // outbound and a PDF: only the outbound click
  await page.click('#dl'); // a download: its url without the query
  await page.click('#iso'); // add-file-types="iso"
  await settle(page, 600);
  await context.close();

  const sent = hits.filter((h) => h.n !== 'engagement').map((h) => [h.n, h.p, h.$]);
  const [, pvProps] = sent.shift();
  assert.deepEqual(pvProps, { author: 'Ann' }, 'event-author on the script tag');
  assert.deepEqual(sent, [
    ['Payment Complete', { method: 'Credit Card', url: 'https://awesome.test/pay', author: 'Ann' }, { amount: '29', currency: 'EUR' }],
    ['Custom Event', { foo: 'bar', author: 'Ann' }, undefined],
    ['Signup', { type: 'Newsletter', author: 'Ann' }, undefined],
    ['Form: Submission', { author: 'Ann' }, undefined],
    ['Outbound Link: Click', { url: 'https://files.test/file.pdf', author: 'Ann' }, undefined],
    ['File Download', { url: onParity('/files/report.pdf'), author: 'Ann' }, undefined],
    ['File Download', { url: onParity('/files/disk.iso'), author: 'Ann' }, undefined],
  ]);

  const goals = await eventually('parity.test goals', async () => {
    const rows = byDim(await query({ site_id: PARITY, metrics: ['events'], dimensions: ['event:goal'], filters: [['is', 'event:page', ['/p/tagged']]] }));
    return { ok: rows['File Download']?.[0] === 2, value: rows };
  });
  assert.deepEqual(goals, {
    'Payment Complete': [1], 'Custom Event': [1], Signup: [1], 'Form: Submission': [1], 'Outbound Link: Click': [1], 'File Download': [2],
  });
  // The page view and the seven events all carry author=Ann.
  const authors = await query({ site_id: PARITY, metrics: ['events'], dimensions: ['event:props:author'], filters: [['is', 'event:page', ['/p/tagged']]] });
  assert.deepEqual(byDim(authors), { Ann: [8] });
});

test("SPA page views as Plausible's: pushState and popstate, not replaceState; data-exclude; hash mode only on hashchange", async () => {
  const { context, page, hits } = await newPage();
  await page.goto(onParity('/p/spa'));
  await settle(page);
  const go = async (how, path) => {
    await page.evaluate(([how, path]) => history[how]({}, '', path), [how, path]);
    await settle(page, 250);
  };
  await go('pushState', '/p/spa/a'); // a page view
  await go('replaceState', '/p/spa/b'); // none: Plausible does not follow replaceState
  await go('pushState', '/p/spa/private/x/y'); // excluded by /p/spa/private/**
  await go('pushState', '/p/spa/drafts/one'); // excluded by /p/spa/drafts/*
  await go('pushState', '/p/spa/drafts/one/two'); // * is one segment: a page view
  await go('pushState', '/p/spa/drafts/one/two'); // the same path again: none
  await page.goBack(); // popstate to the same path: none
  await settle(page, 250);
  await page.click('#virtual'); // the url option
  await settle(page);
  // Excluded pages send no engagement either; the page before them still does.
  assert.ok(!hits.some((h) => /private|drafts\/one$/.test(h.u)), JSON.stringify(hits));
  assert.ok(hits.some((h) => h.n === 'engagement' && h.u === onParity('/p/spa/a')));

  await page.goto(onParity('/p/hash'));
  await settle(page);
  await page.click('#x'); // hashchange: a page view of /p/hash#/x
  await settle(page);
  await page.goBack(); // hashchange back to /p/hash: a page view again (Plausible counts every one)
  await settle(page);
  await go('pushState', '/p/hash/elsewhere'); // hash mode follows only the fragment: none
  await page.evaluate(() => { location.hash = '#/y'; }); // a page view of /p/hash/elsewhere#/y
  await settle(page);
  await context.close();

  const pages = await eventually('parity.test SPA page views', async () => {
    const rows = byDim(await query({ site_id: PARITY, metrics: ['pageviews'], dimensions: ['event:page'], filters: [['contains', 'event:page', ['/p/spa', '/p/hash']]] }));
    return { ok: rows['/p/hash/elsewhere#/y'] && rows['/p/hash']?.[0] === 2, value: rows };
  });
  assert.deepEqual(pages, {
    '/p/spa': [1], '/p/spa/a': [1], '/p/spa/drafts/one/two': [1], '/p/hash': [2], '/p/hash#/x': [1], '/p/hash/elsewhere#/y': [1],
  });
  const virtual = await query({ site_id: PARITY, metrics: ['events'], dimensions: ['event:page'], filters: [['is', 'event:goal', ['Virtual']]] });
  assert.deepEqual(byDim(virtual), { '/p/virtual': [1] });
});

test('a page opened in the background counts once shown; script.local.js counts automated browsers', async () => {
  // A background tab: hidden until the visitor switches to it (Plausible waits too).
  const hidden = await newPage(() => {
    let state = 'hidden';
    Object.defineProperty(document, 'visibilityState', { get: () => state });
    window.show = () => {
      state = 'visible';
      document.dispatchEvent(new Event('visibilitychange'));
    };
  });
  await hidden.page.goto(onParity('/p/hidden'));
  await settle(hidden.page, 600);
  assert.deepEqual(hidden.hits, [], 'nothing while hidden');
  await hidden.page.evaluate(() => window.show());
  await settle(hidden.page);
  assert.deepEqual(hidden.hits.map((h) => h.n), ['pageview']);
  await hidden.context.close();

  // Plausible's local build is for development and tests: automation does not stop it.
  const local = await newPage(() => Object.defineProperty(navigator, 'webdriver', { get: () => true }));
  await local.page.goto(onParity('/p/local'));
  await settle(local.page);
  assert.deepEqual(local.hits.map((h) => h.n), ['pageview']);
  await local.context.close();

  const rows = await eventually('parity.test hidden and local page views', async () => {
    const r = byDim(await query({ site_id: PARITY, metrics: ['pageviews'], dimensions: ['event:page'], filters: [['is', 'event:page', ['/p/hidden', '/p/local']]] }));
    return { ok: r['/p/hidden'] && r['/p/local'], value: r };
  });
  assert.deepEqual(rows, { '/p/hidden': [1], '/p/local': [1] });
});
