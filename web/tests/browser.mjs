// Browser test: a customer (Finnish browser, widget embedded in a page of another origin)
// and an agent (English browser) go through join → activity notice (while another
// organization is selected) → pick → messages both ways → /key + space → tag → note
// (absent from the customer's page) → video calls (console calls, widget answers; ended from
// each side) → transfer → end → rating → presence status → password change → two-factor
// enrolment (QR code, a code computed here) and a login's code step → single sign-on through a
// real OpenID provider on loopback (tests/oidc-provider.mjs). Saves screenshots
// in tests/out/.
//
// By default `jono serve` itself serves the built console and widget (`--web dist`), as in
// production. PREVIEW=1 puts `vite preview` on 4173 in front instead (proxying /v1).
// BASE=http://host:port  test an already running console at that origin.
import { chromium } from 'playwright-core';
import http from 'node:http';
import { mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { createHmac } from 'node:crypto';

// An authenticator app of the test's own (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps), not the
// server's code: the secret is the enrolment's base 32 key.
const totp = (base32, step = Math.floor(Date.now() / 30000)) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha1', key).update(counter).digest();
  const o = h[h.length - 1] & 0xf;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
};

// Free ports of 127.0.0.1, never fixed ones: a port another program holds must not fail the test.
const freePort = () => new Promise((resolve, reject) => {
  const s = net.createServer();
  s.once('error', reject);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

const PREVIEW = process.env.PREVIEW === '1';
// The port `jono serve` listens on; the same one again when the test restarts it.
const PORT = process.env.BASE ? 0 : await freePort();
const BASE = process.env.BASE ?? (PREVIEW ? 'http://localhost:4173' : `http://127.0.0.1:${PORT}`);
const OUT = new URL('./out/', import.meta.url).pathname;
mkdirSync(OUT, { recursive: true });
rmSync(`${OUT}jono.log`, { force: true });
const uniq = Date.now().toString(36);
const step = (s) => console.log(`• ${s}`);

// Without BASE: start `jono serve` (../target/debug/jono, or JONO_BIN) on a fresh data
// directory and `vite preview` (serving dist/ as the gateway does) proxying /v1 to it.
const children = [];
let startBackend = null;
let backendProc = null;
if (!process.env.BASE) {
  const root = new URL('..', import.meta.url).pathname;
  const bin = process.env.JONO_BIN ?? new URL('../../target/debug/jono', import.meta.url).pathname;
  const data = mkdtempSync(join(tmpdir(), 'jono-web-test-'));
  const backend = `http://127.0.0.1:${PORT}`;
  const log = openSync(`${OUT}jono.log`, 'a'); // the server's output, for diagnosing failures
  const args = ['serve', '--data', data, '--listen', `127.0.0.1:${PORT}`, '--web', join(root, 'dist')];
  startBackend = () => spawn(bin, args, { stdio: ['ignore', log, log], env: { ...process.env, JONO_SIGNUP: 'open' } });
  backendProc = startBackend();
  if (PREVIEW) {
    children.push(spawn(join(root, 'node_modules/.bin/vite'), ['preview', '--port', '4173', '--strictPort'], { stdio: 'ignore', cwd: root, env: { ...process.env, JONO_BACKEND: backend } }));
  }
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${backend}/healthz`)).ok && (await fetch(`${BASE}/`)).ok) break; } catch {}
    if (i > 100) throw new Error('jono serve or vite preview did not start');
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function api(method, path, token, body) {
  const r = await fetch(`${BASE}${path}`, {
    method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// The host site, on another origin, embedding the widget with one script tag.
let queueId;
let serverDown = false;
let expectStatus = 0; // an HTTP status the step provokes on purpose (Chromium logs every 4xx as a console error)
const host = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.end(`<!doctype html><html><head><title>Shop</title></head><body><h1>Example shop</h1><p>Products…</p>
<script src="${BASE}/loader.js" data-queue="${queueId}" async></script></body></html>`);
});
await new Promise((r) => host.listen(0, '127.0.0.1', r));
const HOST = `http://127.0.0.1:${host.address().port}`;

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'] });
const errors = [];
const watch = (page, who) => {
  page.on('pageerror', (e) => errors.push(`${who}: ${e.message}`));
  // While the test has stopped the server on purpose, refused connections are expected.
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (serverDown && m.text().includes('ERR_CONNECTION_REFUSED')) return;
    if (expectStatus && m.text().includes(`status of ${expectStatus} `)) return;
    errors.push(`${who}: ${m.text()}`);
  });
  page.on('response', (r) => { if (r.status() >= 500) errors.push(`${who}: ${r.status()} ${r.request().method()} ${r.url()}`); });
};
let failed = false;
try {
  // Agent: sign up through the console.
  const agentCtx = await browser.newContext({ locale: 'en-US', viewport: { width: 1400, height: 850 } });
  const agent = await agentCtx.newPage();
  watch(agent, 'agent');
  await agent.goto(`${BASE}/`);
  step('sign up');
  await agent.getByRole('button', { name: 'Create an organization and account' }).click();
  await agent.fill('input[name=organization]', `Acme ${uniq}`);
  await agent.fill('input[name=name]', 'Aino Agent');
  await agent.fill('input[name=email]', `aino-${uniq}@example.com`);
  await agent.fill('input[name=password]', 'correct horse battery');
  await agent.getByRole('button', { name: 'Sign up' }).click();
  await agent.waitForSelector('.console');
  const token = await agent.evaluate(() => localStorage.getItem('jono.token'));
  const me = await api('GET', '/v1/me', token);
  const orgA = me.organizations[0].id;

  step('organization section: create a queue, welcome message, handler; canned-response page');
  await agent.getByRole('button', { name: 'Organization', exact: true }).click();
  await agent.fill('input[name=queue-name]', 'Support');
  await agent.getByRole('button', { name: 'Create', exact: true }).click();
  await agent.waitForSelector('.queue-admin summary:has-text("Support")');
  queueId = await agent.getAttribute('.queue-admin', 'data-queue-admin');
  await agent.click('.queue-admin summary');
  await agent.getByLabel('Welcome message').fill('Welcome to Acme support!');
  // The host site may embed the widget: without this its frame is refused (frame-ancestors),
  // and the embed section says so until a site is saved.
  await agent.waitForSelector('.queue-admin .warning:has-text("No site may show this widget yet")');
  await agent.getByLabel('Sites that may embed the widget (one per line)').fill(HOST);
  await agent.getByRole('button', { name: 'Save', exact: true }).click();
  await agent.waitForSelector('.queue-admin [role=status]:has-text("Saved.")');
  await agent.waitForSelector('.queue-admin .warning', { state: 'detached' });
  await agent.getByRole('checkbox', { name: 'Aino Agent' }).check();
  await agent.waitForFunction(async (q) => {
    const r = await fetch(`/v1/queues/${q}`, { headers: { authorization: `Bearer ${localStorage.getItem('jono.token')}` } });
    return (await r.json()).handlers.length === 1;
  }, queueId);
  await agent.getByRole('button', { name: 'Canned responses', exact: true }).click();
  await agent.fill('input[name=new-key]', 'Terve');
  await agent.fill('textarea[name=new-text]', 'Welcome to the chat! How can I help?');
  await agent.getByRole('button', { name: 'Save', exact: true }).click();
  await agent.waitForSelector('td code:has-text("/Terve")');
  await agent.getByRole('button', { name: 'Chats', exact: true }).click();

  step('a second organization invites the agent; accept at /invite/TOKEN');
  const other = await api('POST', '/v1/signup', null, { organization: `Beta ${uniq}`, name: 'Bert', email: `bert-${uniq}@example.com`, password: 'correct horse battery' });
  const betaQueue = await api('POST', `/v1/orgs/${other.organization_id}/queues`, other.token, { name: 'Beta desk' });
  const inv = await api('POST', `/v1/orgs/${other.organization_id}/invitations`, other.token, { email: me.email, role: 'agent' });
  await agent.goto(`${BASE}/invite/${inv.token}`);
  await agent.getByRole('button', { name: /Accept with my current account/ }).click();
  await agent.waitForSelector('.console');
  await agent.waitForFunction(() => document.querySelectorAll('select[name=organization] option').length === 2);

  step('the queue opens from the queue menu');
  await agent.selectOption('select[name=organization]', orgA);
  await agent.click(`[data-queue="${queueId}"] .queue-name`);
  await agent.getByRole('menuitem', { name: 'Open the queue' }).click();
  await agent.waitForSelector(`[data-queue="${queueId}"].is-open`);

  step('queue menu (owner): queue settings and queue statistics open on that queue');
  await agent.click(`[data-queue="${queueId}"] .queue-name`);
  await agent.getByRole('menuitem', { name: 'Queue settings' }).click();
  await agent.waitForSelector(`.queue-admin[data-queue-admin="${queueId}"][open] form`, { state: 'visible' });
  // The form is shown at once and filled when the queue's settings arrive: wait for them.
  const welcomeField = agent.locator(`[data-queue-admin="${queueId}"]`).getByLabel('Welcome message');
  let welcome = '';
  for (let i = 0; i < 100 && welcome !== 'Welcome to Acme support!'; i++) {
    welcome = await welcomeField.inputValue();
    if (welcome !== 'Welcome to Acme support!') await new Promise((r) => setTimeout(r, 100));
  }
  if (welcome !== 'Welcome to Acme support!') throw new Error(`queue settings form shows ${JSON.stringify(welcome)}`);
  await agent.getByRole('button', { name: 'Chats', exact: true }).click();
  await agent.click(`[data-queue="${queueId}"] .queue-name`);
  await agent.getByRole('menuitem', { name: 'Queue statistics' }).click();
  await agent.waitForSelector(`.queue-admin[data-queue-admin="${queueId}"][open] .stats svg.bars`, { state: 'visible' });
  await agent.getByRole('button', { name: 'Chats', exact: true }).click();

  step('look at the other organization');
  await agent.selectOption('select[name=organization]', other.organization_id);
  await agent.waitForSelector('.org-name:has-text("Beta")');

  step('queue menu (role agent in Beta): no queue settings or statistics');
  await agent.click(`[data-queue="${betaQueue.queue_id}"] .queue-name`);
  const betaMenu = agent.locator(`[data-queue="${betaQueue.queue_id}"] [role=menu]`);
  await betaMenu.getByRole('menuitem', { name: 'Open the queue' }).waitFor();
  const items = await betaMenu.getByRole('menuitem').allInnerTexts();
  if (items.some((x) => /settings|statistics/i.test(x))) throw new Error(`an agent-role member sees ${JSON.stringify(items)}`);
  await agent.click(`[data-queue="${betaQueue.queue_id}"] .queue-name`); // closes the menu

  step('customer joins from the widget embedded on another origin (Finnish browser)');
  const custCtx = await browser.newContext({ locale: 'fi-FI', viewport: { width: 900, height: 700 } });
  const cust = await custCtx.newPage();
  watch(cust, 'customer');
  if (process.env.DEBUG) cust.on('response', (r) => { if (r.url().includes('/v1/')) console.log('cust http', r.request().method(), r.url().slice(-60), r.status()); });
  if (process.env.DEBUG) cust.on('websocket', (ws) => { ws.on('framereceived', (f) => console.log('cust ws <', String(f.payload).slice(0, 200))); ws.on('framesent', (f) => console.log('cust ws >', String(f.payload).slice(0, 200))); ws.on('close', () => console.log('cust ws closed')); });
  await cust.goto(`${HOST}/products/42`);
  // The widget starts minimised behind its launcher, which shows once the widget is ready.
  await cust.waitForSelector('#jono-launcher');
  await cust.screenshot({ path: `${OUT}widget-launcher.png` });
  await cust.click('#jono-launcher');
  const w = cust.frameLocator('#jono-widget');
  await w.locator('input[name=name]').fill('Kalle Asiakas');
  await w.locator('input[name=email]').fill('kalle@example.com');
  await w.locator('textarea[name=question]').fill('Missä tilaukseni on?');
  await w.getByRole('button', { name: 'Aloita keskustelu' }).click();
  await w.getByText('Olet jonossa 1.').waitFor();
  await cust.screenshot({ path: `${OUT}widget-waiting.png` });

  step('activity notice, highlighted, while another organization is selected; an alert for a queue the agent handles');
  await agent.waitForSelector('.activity li.hot[data-type=CustomerJoinedQueue]:has-text("Kalle Asiakas joined the queue Support")');
  await agent.waitForFunction(() => (window.jonoAlerts ?? 0) >= 1);
  await agent.screenshot({ path: `${OUT}console-activity.png` });

  step('pick from the queue menu; the conversation opens at once');
  await agent.selectOption('select[name=organization]', orgA);
  await agent.waitForSelector(`[data-queue="${queueId}"] .badge.waiting`);
  await agent.click(`[data-queue="${queueId}"] .queue-name`);
  await agent.getByRole('menuitem', { name: 'Pick person from queue' }).click();
  await agent.waitForSelector('.conv-head h2:has-text("Kalle Asiakas")');
  await agent.waitForSelector('.customer-info dd:has-text("kalle@example.com")');
  await agent.waitForSelector(`.customer-info dd:has-text("${HOST}/products/42")`); // live metadata via postMessage
  await agent.waitForSelector('.messages .text:has-text("Missä tilaukseni on?")');
  await w.getByText('Aino Agent auttaa sinua.').waitFor();

  const field = agent.locator('.conversation textarea[name=message]');
  if (startBackend) {
    step('restart the server: both WebSockets reconnect and resume with `after`');
    serverDown = true;
    backendProc.kill();
    await new Promise((r) => backendProc.once('exit', r));
    await agent.waitForSelector('.offline');
    backendProc = startBackend();
    for (let i = 0; ; i++) {
      try { if ((await fetch(`http://127.0.0.1:${PORT}/readyz`)).ok) break; } catch {}
      if (i > 100) throw new Error('jono serve did not restart');
      await new Promise((r) => setTimeout(r, 200));
    }
    await agent.waitForSelector('.offline', { state: 'detached', timeout: 20000 });
    serverDown = false;
  }

  step('messages both ways');
  await field.fill('Hei Kalle, katson asiaa.');
  await field.press('Enter');
  await w.locator('.messages .text', { hasText: 'Hei Kalle, katson asiaa.' }).waitFor();
  await w.locator('textarea[name=message]').fill('Kiitos!');
  await w.locator('textarea[name=message]').press('Enter');
  await agent.waitForSelector('.messages .text:has-text("Kiitos!")');

  step('a message while the agent is on another page raises an alert; back in the chat it is read');
  const before = await agent.evaluate(() => window.jonoAlerts ?? 0);
  await agent.getByRole('button', { name: 'My account', exact: true }).click();
  await agent.waitForSelector('.alert-settings input[name=alert-sound]:checked');
  await w.locator('textarea[name=message]').fill('Vielä yksi asia');
  await w.locator('textarea[name=message]').press('Enter');
  await agent.waitForFunction((n) => (window.jonoAlerts ?? 0) > n, before);
  // While the tab is hidden, the title counts what arrives; shown again, it is plain.
  await agent.evaluate(() => Object.defineProperty(document, 'hidden', { configurable: true, get: () => true }));
  await w.locator('textarea[name=message]').fill('Oletko siellä?');
  await w.locator('textarea[name=message]').press('Enter');
  await agent.waitForFunction(() => document.title.startsWith('(1) '));
  await agent.evaluate(() => { Object.defineProperty(document, 'hidden', { configurable: true, get: () => false }); document.dispatchEvent(new Event('visibilitychange')); });
  await agent.waitForFunction(() => !document.title.startsWith('('));
  await agent.getByRole('button', { name: 'Chats', exact: true }).click();
  await agent.waitForSelector('.messages .text:has-text("Vielä yksi asia")');
  await agent.waitForSelector('.conv.selected .unread', { state: 'detached' });

  step('the customer minimises the widget; the launcher counts the agent\'s new messages; it opens again');
  await cust.click('#jono-launcher');
  await cust.waitForSelector('#jono-widget', { state: 'hidden' });
  await field.fill('Oletko vielä siellä?');
  await field.press('Enter');
  await cust.waitForSelector('#jono-launcher:has-text("(1)")');
  await cust.screenshot({ path: `${OUT}widget-launcher-unread.png` });
  await cust.click('#jono-launcher');
  await w.locator('.messages .text', { hasText: 'Oletko vielä siellä?' }).waitFor();

  step('/key + space expands a canned response');
  await agent.waitForFunction(() => document.querySelector('.conversation textarea[name=message]').value === '');
  await field.click();
  await field.pressSequentially('/Terve ');
  const expanded = await field.inputValue();
  if (expanded !== 'Welcome to the chat! How can I help?') throw new Error(`canned expansion gave ${JSON.stringify(expanded)}`);
  await field.press('Enter');
  await w.locator('.messages .text', { hasText: 'Welcome to the chat! How can I help?' }).waitFor();

  step('attachment: upload, image preview on both sides');
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
  await agent.locator('.conversation input[type=file]').setInputFiles({ name: 'dot.png', mimeType: 'image/png', buffer: png });
  await agent.waitForSelector('.pending li:has-text("dot.png")');
  await field.fill('Kuva liitteenä');
  await field.press('Enter');
  await agent.waitForSelector('.messages .attachment img[alt="dot.png"]');
  await w.locator('.messages .attachment img[alt="dot.png"]').waitFor();

  step('a file alone is sent; a file over 10 MiB is refused before upload; a failed send keeps the draft');
  await agent.locator('.conversation input[type=file]').setInputFiles({ name: 'only.png', mimeType: 'image/png', buffer: png });
  await agent.waitForSelector('.pending li:has-text("only.png")');
  await agent.locator('.conversation .composer-bar button.primary').click();
  await agent.waitForSelector('.messages .attachment img[alt="only.png"]');
  await w.locator('.messages .attachment img[alt="only.png"]').waitFor();
  await agent.locator('.conversation input[type=file]').setInputFiles({ name: 'huge.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(10 * 1024 * 1024 + 1) });
  await agent.waitForSelector('.composer [role=alert]:has-text("huge.bin is larger than 10 MiB")');
  const long = 'x'.repeat(10_001);
  await field.fill(long);
  await agent.waitForSelector('.composer .counter.over:has-text("10001 / 10000")');
  expectStatus = 422;
  await field.press('Enter');
  await agent.waitForSelector('.conversation [role=alert]:has-text("longer than 10000")');
  expectStatus = 0;
  if ((await field.inputValue()).length !== long.length) throw new Error('a failed send wiped the draft');
  await field.fill('');

  step('tag and note');
  await agent.fill('input[name=tag]', 'delivery');
  await agent.press('input[name=tag]', 'Enter');
  await agent.waitForSelector('.tags .tag:has-text("delivery")');
  await agent.fill('textarea[name=note]', 'Secret note: VIP customer');
  await agent.getByRole('button', { name: 'Add note' }).click();
  await agent.waitForSelector('.notes li:has-text("Secret note: VIP customer")');
  await agent.screenshot({ path: `${OUT}console-conversation.png` });
  await cust.waitForTimeout(500);
  const widgetText = await w.locator('body').innerText();
  if (widgetText.includes('Secret note') || widgetText.includes('delivery')) throw new Error('a note or tag reached the customer');

  step('addresses: a reload keeps the open conversation; the back button returns to it from another page');
  if (!/#\/[^/]+\/c\/[0-9a-f-]+$/.test(agent.url())) throw new Error(`the open conversation has no address: ${agent.url()}`);
  await agent.reload();
  await agent.waitForSelector('.conv-head h2:has-text("Kalle Asiakas")');
  await agent.waitForSelector('.notes li');
  await agent.getByRole('button', { name: 'Organization', exact: true }).click();
  await agent.waitForSelector('main.page');
  if (!agent.url().endsWith('/org')) throw new Error(`the organization page has no address: ${agent.url()}`);
  await agent.goBack();
  await agent.waitForSelector('.conv-head h2:has-text("Kalle Asiakas")');

  step('video call: the console calls, the widget answers, both sides connect and play video; the agent ends it');
  await agent.getByRole('button', { name: 'Start a video call' }).click();
  await agent.waitForSelector('.conversation .call [role=status]:has-text("Calling")');
  await w.locator('.call-ring:has-text("Saapuva videopuhelu")').waitFor();
  await w.getByRole('button', { name: 'Vastaa', exact: true }).click();
  await agent.waitForSelector('.conversation .call[data-connection=connected]', { timeout: 20000 });
  await w.locator('.call[data-connection=connected]').waitFor({ timeout: 20000 });
  const playing = (v) => v.readyState >= 2 && v.videoWidth > 0 && !v.paused;
  for (const [who, video] of [['console', agent.locator('.conversation .call video.remote')], ['widget', w.locator('.call video.remote')]]) {
    for (let i = 0; !(await video.evaluate(playing)); i++) {
      if (i > 100) throw new Error(`the ${who} does not play the other side's video`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await agent.screenshot({ path: `${OUT}console-call.png` });
  await cust.screenshot({ path: `${OUT}widget-call.png` });
  await agent.getByRole('button', { name: 'End call', exact: true }).click();
  await agent.waitForSelector('.conversation .call-ended:has-text("The video call ended.")');
  await agent.waitForSelector('.conversation .call', { state: 'detached' });
  await w.locator('.call-ended:has-text("Videopuhelu päättyi.")').waitFor();
  await w.locator('.call').waitFor({ state: 'detached' });

  step('video call: the customer answers and ends the second one from the widget');
  await agent.getByRole('button', { name: 'Start a video call' }).click();
  await w.getByRole('button', { name: 'Vastaa', exact: true }).click();
  await w.locator('.call[data-connection=connected]').waitFor({ timeout: 20000 });
  await agent.waitForSelector('.conversation .call[data-connection=connected]', { timeout: 20000 });
  await w.getByRole('button', { name: 'Lopeta puhelu', exact: true }).click();
  await agent.waitForSelector('.conversation .call', { state: 'detached' });
  await w.locator('.call').waitFor({ state: 'detached' });
  await w.locator('.call-ended').waitFor();

  step('transfer: to a closed queue is refused (409, readable), to an open one the customer waits there');
  const returns = await api('POST', `/v1/orgs/${orgA}/queues`, token, { name: 'Returns' });
  const billing = await api('POST', `/v1/orgs/${orgA}/queues`, token, { name: 'Billing' });
  await api('POST', `/v1/queues/${returns.queue_id}/open`, token);
  await api('POST', `/v1/queues/${returns.queue_id}/handlers`, token, { agent_id: me.agent_id });
  await agent.waitForFunction(() => document.querySelectorAll('select[name=transfer-queue] option').length === 3); // placeholder + two others
  await agent.selectOption('select[name=transfer-queue]', billing.queue_id);
  expectStatus = 409;
  await agent.getByRole('button', { name: 'Transfer', exact: true }).click();
  await agent.waitForSelector('.conversation .error:has-text("The transfer failed: the target queue is closed")');
  expectStatus = 0;
  await agent.selectOption('select[name=transfer-queue]', returns.queue_id);
  await agent.getByRole('button', { name: 'Transfer', exact: true }).click();
  await agent.waitForSelector('.conv-head .badge[data-status=waiting]:has-text("waiting in Returns")');
  await agent.waitForSelector('.conversation .error', { state: 'detached' });
  await w.getByText('Olet jonossa 1.').waitFor();
  await agent.waitForSelector(`[data-queue="${returns.queue_id}"] .badge.waiting`);
  step('the transfer list leaves out the queue it waits in; pick it back from there with the keyboard');
  const opts = await agent.locator('select[name=transfer-queue] option').allInnerTexts();
  if (opts.some((o) => o.startsWith('Returns'))) throw new Error(`the transfer list offers the queue it waits in: ${JSON.stringify(opts)}`);
  // Pick it back from the target queue (keyboard: the queue menu opens with Enter).
  await agent.focus(`[data-queue="${returns.queue_id}"] .queue-name`);
  await agent.keyboard.press('Enter');
  // The menu takes the focus; arrows, Home and End move in it, Escape closes it.
  await agent.waitForFunction(() => document.activeElement?.getAttribute('role') === 'menuitem');
  await agent.keyboard.press('ArrowDown');
  await agent.waitForFunction(() => document.activeElement?.textContent?.includes('Close the queue'));
  await agent.keyboard.press('Escape');
  await agent.waitForSelector('.menu[role=menu]', { state: 'detached' });
  await agent.waitForFunction(() => document.activeElement?.classList.contains('queue-name'));
  await agent.keyboard.press('Enter');
  await agent.waitForFunction(() => document.activeElement?.getAttribute('role') === 'menuitem');
  await agent.keyboard.press('End');
  await agent.waitForFunction(() => document.activeElement?.textContent?.includes('Queue statistics'));
  await agent.keyboard.press('Home');
  await agent.waitForFunction(() => document.activeElement?.textContent?.includes('Pick person from queue'));
  await agent.keyboard.press('Enter');
  await agent.waitForSelector('.conv-head .badge[data-status=active]');
  await w.getByText('Aino Agent auttaa sinua.').waitFor();

  step('end and rate');
  await agent.getByRole('button', { name: 'End conversation' }).click();
  await agent.waitForSelector('.ended');
  await w.getByText('Miten onnistuimme?').waitFor();
  await w.locator('.stars label').nth(4).click();
  await w.locator('textarea[name=comment]').fill('Nopeaa palvelua');
  await w.getByRole('button', { name: 'Lähetä arvio' }).click();
  await w.getByText('Kiitos palautteestasi!').waitFor();
  await cust.screenshot({ path: `${OUT}widget-rated.png` });
  const stats = await api('GET', `/v1/queues/${returns.queue_id}/stats`, token); // the queue it was last picked from
  if (stats.rating?.count !== 1 || stats.rating?.mean !== 5) throw new Error(`rating not recorded: ${JSON.stringify(stats.rating)}`);

  step('block the visitor from the ended conversation: its next chat is refused; an operator lifts the block');
  expectStatus = 401; // the widget finds its token ended
  await agent.locator('.block-visitor summary').click();
  await agent.selectOption('select[name=block-minutes]', '60');
  await agent.fill('input[name=block-reason]', 'abusive language');
  await agent.getByRole('button', { name: 'Block', exact: true }).click();
  await agent.waitForSelector('.blocked-note:has-text("Visitor blocked until")');
  await w.getByRole('button', { name: 'Aloita uusi keskustelu' }).click();
  await w.locator('input[name=name]').fill('Kalle Asiakas');
  await w.locator('input[name=email]').fill('kalle@example.com');
  await w.locator('textarea[name=question]').fill('Taas minä');
  expectStatus = 403;
  await w.getByRole('button', { name: 'Aloita keskustelu' }).click();
  await w.locator('[role=alert]:has-text("until")').waitFor();
  await cust.screenshot({ path: `${OUT}widget-blocked.png` });
  expectStatus = 0;
  await agent.getByRole('button', { name: 'Organization', exact: true }).click();
  await agent.waitForSelector('.blocks tr:has-text("abusive language"):has-text("Aino Agent")');
  await agent.screenshot({ path: `${OUT}console-blocks.png` });
  await agent.locator('.blocks').getByRole('button', { name: 'Lift' }).click();
  await agent.waitForSelector('.blocks p:has-text("No visitor is blocked.")');
  await w.getByRole('button', { name: 'Aloita keskustelu' }).click();
  await w.getByText('Olet jonossa 1.').waitFor();
  await api('POST', `/v1/conversations/${(await api('GET', `/v1/orgs/${orgA}/conversations?status=waiting`, token))[0].id}/end`, token);
  // Nobody served it: the widget offers a new chat, not a rating.
  await w.getByText('Keskustelu päättyi ennen kuin asiakaspalvelija ehti mukaan.').waitFor();
  if (await w.locator('form.rating').count()) throw new Error('a customer nobody served is asked to rate');
  await agent.getByRole('button', { name: 'Chats', exact: true }).click();

  step('a team channel with canned expansion');
  await agent.fill('input[name=channel]', 'general');
  await agent.getByRole('button', { name: 'Create', exact: true }).click();
  await agent.waitForSelector('.conv-head h2:has-text("# general")');
  await field.click();
  await field.pressSequentially('/Terve ');
  await field.press('Enter');
  await agent.waitForSelector('.messages .text:has-text("Welcome to the chat! How can I help?")');

  step('an invitation is listed while open and withdrawn from the organization page');
  await agent.getByRole('button', { name: 'Organization', exact: true }).click();
  await agent.fill('input[name=invite-email]', `later-${uniq}@example.com`);
  await agent.getByRole('button', { name: 'Invite', exact: true }).click();
  await agent.waitForSelector(`.pending-invitations tr:has-text("later-${uniq}@example.com")`);
  await agent.getByRole('button', { name: `Withdraw: later-${uniq}@example.com` }).click();
  await agent.waitForSelector(`.pending-invitations tr:has-text("later-${uniq}@example.com")`, { state: 'detached' });

  step('queue statistics');
  await agent.click('.queue-admin summary');
  await agent.getByRole('button', { name: 'Show statistics' }).click();
  await agent.waitForSelector('.stats svg.bars');
  await agent.locator('.stats').scrollIntoViewIfNeeded();
  await agent.screenshot({ path: `${OUT}console-organization.png` });

  step('presence: set away in the top bar; the member list shows each member\'s status');
  await agent.selectOption('select[name=my-status]', 'away');
  await agent.waitForFunction(async (o) => {
    const r = await fetch(`/v1/orgs/${o}/members`, { headers: { authorization: `Bearer ${localStorage.getItem('jono.token')}` } });
    return (await r.json()).some((m) => m.status === 'away');
  }, orgA);
  await agent.getByRole('button', { name: 'Organization', exact: true }).click();
  await agent.waitForSelector('tr:has-text("Aino Agent") .member-status[data-status=away]:has-text("away")');
  await agent.selectOption('select[name=organization]', other.organization_id);
  await agent.waitForSelector('tr:has-text("Bert") .member-status[data-status=offline]:has-text("offline")');
  await agent.selectOption('select[name=organization]', orgA);
  await agent.selectOption('select[name=my-status]', 'online');
  await agent.getByRole('button', { name: 'Organization', exact: true }).click();
  await agent.getByRole('button', { name: 'Chats', exact: true }).click();
  await agent.getByRole('button', { name: 'Organization', exact: true }).click();
  await agent.waitForSelector('tr:has-text("Aino Agent") .member-status[data-status=online]');

  step('password change: a wrong current password is refused; the change ends the other sessions only');
  const second = await api('POST', '/v1/login', null, { email: me.email, password: 'correct horse battery' });
  // That other session is open in another browser; its page errors count, its refused reconnects do not.
  const otherCtx = await browser.newContext({ locale: 'en-US' });
  await otherCtx.addInitScript((tok) => { if (!sessionStorage.getItem('seeded')) { localStorage.setItem('jono.token', tok); sessionStorage.setItem('seeded', '1'); } }, second.token);
  const otherPage = await otherCtx.newPage();
  otherPage.on('pageerror', (e) => errors.push(`other session: ${e.message}`));
  await otherPage.goto(`${BASE}/`);
  await otherPage.waitForSelector('.console');
  await agent.getByRole('button', { name: 'My account', exact: true }).click();
  expectStatus = 403;
  await agent.fill('input[name=current-password]', 'not my password');
  await agent.fill('input[name=new-password]', 'new horse battery staple');
  await agent.fill('input[name=repeat-password]', 'new horse battery staple');
  await agent.press('input[name=repeat-password]', 'Enter');
  await agent.waitForSelector('.password-form [role=alert]:has-text("The current password is not right.")');
  expectStatus = 0;
  await agent.fill('input[name=current-password]', 'correct horse battery');
  await agent.fill('input[name=new-password]', 'new horse battery staple');
  await agent.fill('input[name=repeat-password]', 'new horse battery staple');
  await agent.getByRole('button', { name: 'Change password', exact: true }).click();
  await agent.waitForSelector('.password-form [role=status]:has-text("Password changed.")');
  const old2 = await fetch(`${BASE}/v1/me`, { headers: { authorization: `Bearer ${second.token}` } });
  if (old2.status !== 401) throw new Error(`another session's token still works after a password change: ${old2.status}`);
  await otherPage.waitForSelector('form.auth', { timeout: 20000 }); // its socket was closed: it finds its token ended and signs out
  await otherCtx.close();
  await api('POST', '/v1/login', null, { email: me.email, password: 'new horse battery staple' });
  const oldPw = await fetch(`${BASE}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: me.email, password: 'correct horse battery' }) });
  if (oldPw.status !== 401) throw new Error(`the old password still logs in: ${oldPw.status}`);
  // This console keeps working: its own token stays, its WebSocket is (re)connected.
  await agent.getByRole('button', { name: 'Chats', exact: true }).click();
  await agent.waitForSelector('.offline', { state: 'detached', timeout: 20000 });
  await api('GET', '/v1/me', token);

  step('logout');
  await agent.getByRole('button', { name: 'Log out' }).click();
  await agent.waitForSelector('form.auth');
  const r = await fetch(`${BASE}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
  if (r.status !== 401) throw new Error(`token still works after logout: ${r.status}`);

  step('two-factor: enrol with the QR code and a first code; recovery codes shown once; the sessions list');
  await agent.fill('input[name=email]', me.email);
  await agent.fill('input[name=password]', 'new horse battery staple');
  await agent.getByRole('button', { name: 'Log in' }).click();
  await agent.waitForSelector('.console');
  await agent.getByRole('button', { name: 'My account', exact: true }).click();
  await agent.getByRole('button', { name: 'Turn on two-factor authentication' }).click();
  await agent.waitForSelector('.two-factor .qr svg');
  await agent.screenshot({ path: `${OUT}two-factor-enrol.png` });
  const secret = (await agent.textContent('.two-factor code.secret')).trim();
  const enrolStep = Math.floor(Date.now() / 30000);
  expectStatus = 403;
  await agent.fill('input[name=otp-code]', totp(secret, enrolStep + 5)); // a code from the future is wrong
  await agent.getByRole('button', { name: 'Confirm', exact: true }).click();
  await agent.waitForSelector('.two-factor [role=alert]:has-text("the code is not right")');
  await agent.fill('input[name=otp-code]', totp(secret, enrolStep));
  await agent.getByRole('button', { name: 'Confirm', exact: true }).click();
  await agent.waitForSelector('.recovery-codes li:nth-child(10)');
  expectStatus = 0; // only now: the page's console reports the 403 a moment after the page shows it
  const recovery = await agent.$$eval('.recovery-codes code', (cs) => cs.map((c) => c.textContent));
  await agent.getByRole('button', { name: 'Done', exact: true }).click();
  await agent.waitForSelector('.two-factor [role=status]:has-text("Two-factor authentication is on")');
  await agent.waitForSelector('.sessions tr:has-text("This session")');
  const agentUa = await agent.evaluate(() => navigator.userAgent);
  await agent.waitForSelector(`.sessions td:has-text(${JSON.stringify(agentUa.slice(0, 40))})`);

  step('two-factor: the login asks for a code after the password; a wrong one is refused; a recovery code works');
  await agent.getByRole('button', { name: 'Log out' }).click();
  await agent.waitForSelector('form.auth');
  await agent.fill('input[name=email]', me.email);
  await agent.fill('input[name=password]', 'new horse battery staple');
  await agent.getByRole('button', { name: 'Log in' }).click();
  await agent.waitForSelector('input[name=login-code]');
  expectStatus = 401;
  await agent.fill('input[name=login-code]', totp(secret, enrolStep)); // taken by the confirmation already
  await agent.getByRole('button', { name: 'Verify' }).click();
  await agent.waitForSelector('form.auth [role=alert]:has-text("not right")');
  await agent.fill('input[name=login-code]', totp(secret, enrolStep + 1)); // the next step: the server takes one either side
  await agent.getByRole('button', { name: 'Verify' }).click();
  await agent.waitForSelector('.console');
  expectStatus = 0;
  await agent.getByRole('button', { name: 'Log out' }).click();
  await agent.waitForSelector('form.auth');
  await agent.fill('input[name=email]', me.email);
  await agent.fill('input[name=password]', 'new horse battery staple');
  await agent.getByRole('button', { name: 'Log in' }).click();
  await agent.fill('input[name=login-code]', recovery[0]);
  await agent.getByRole('button', { name: 'Verify' }).click();
  await agent.waitForSelector('.console');

  step('single sign-on: an owner sets the organization\'s OpenID provider; an invited email signs in through it and joins');
  const provider = spawn(process.execPath, [new URL('./oidc-provider.mjs', import.meta.url).pathname], {
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, OIDC_CLIENT_ID: 'jono-browser', OIDC_CLIENT_SECRET: 'browser-test-secret', OIDC_REDIRECT_URI: `${BASE}/v1/sso/callback` },
  });
  children.push(provider);
  const issuer = await new Promise((resolve, reject) => {
    let out = '';
    provider.stdout.on('data', (d) => { out += d; const m = out.match(/^issuer (\S+)$/m); if (m) resolve(m[1]); });
    provider.once('exit', (code) => reject(new Error(`the OpenID provider exited (${code})`)));
  });
  await agent.getByRole('button', { name: 'Organization', exact: true }).click();
  await agent.fill('input[name=sso-issuer]', issuer);
  await agent.fill('input[name=sso-client-id]', 'jono-browser');
  await agent.fill('input[name=sso-client-secret]', 'browser-test-secret');
  await agent.click('.sso-settings button[type=submit]');
  await agent.waitForSelector('.sso-settings [role=status]:has-text("Saved.")');
  const ssoLink = await agent.getAttribute('.sso-link', 'href');
  const ownerToken = await agent.evaluate(() => localStorage.getItem('jono.token'));
  const ssoEmail = `sanna-${uniq}@example.com`;
  await api('POST', `/v1/orgs/${orgA}/invitations`, ownerToken, { email: ssoEmail, role: 'agent' });
  const ssoCtx = await browser.newContext({ locale: 'en-US' });
  const ssoPage = await ssoCtx.newPage();
  watch(ssoPage, 'sso member');
  await ssoPage.goto(`${ssoLink}?login_hint=${encodeURIComponent(ssoEmail)}`);
  await ssoPage.waitForSelector('.console');
  if ((await ssoPage.evaluate(() => location.href)).includes('sso_token')) throw new Error('the sign-in token stayed in the address');
  const ssoMe = await api('GET', '/v1/me', await ssoPage.evaluate(() => localStorage.getItem('jono.token')));
  if (ssoMe.email !== ssoEmail || ssoMe.organizations[0]?.id !== orgA) throw new Error(`the SSO member: ${JSON.stringify(ssoMe)}`);
  await ssoCtx.close();

  if (errors.length) throw new Error(`console errors:\n${errors.join('\n')}`);
  console.log('OK: browser test passed; screenshots in tests/out/');
} catch (e) {
  failed = true;
  console.error('FAILED:', e.message);
  if (errors.length) console.error(errors.join('\n'));
  for (const [i, ctx] of browser.contexts().entries()) for (const p of ctx.pages()) await p.screenshot({ path: `${OUT}failure-${i}.png` }).catch(() => {});
} finally {
  await browser.close();
  host.close();
  for (const c of children) c.kill();
  backendProc?.kill();
}
process.exit(failed ? 1 : 0);
