// The README's CDS Hooks sandbox walk-through, driven end to end in headless Chromium.
//
//   cd scripts/sandbox_walkthrough && npm ci          # playwright-core only; the browser is the system's
//   node scripts/sandbox_walkthrough/run.mjs --sandbox-build /tmp/sandbox/build
//
// It starts, as its own children, everything the walk-through needs on this machine: the service
// on :8000 (--service-port; trusting the sandbox, allowing its origin and this machine's FHIR servers; a fresh one
// with an empty CDS_DATA_DIR for each half), the demo patients on an R4 FHIR server
// (:8080, --r4-port) and on a DSTU2 one emulating the sandbox's default server (:8081, --dstu2-port), both from
// fhir_server.py beside this file, and a static server for the sandbox's build on :3000. Then it
// plays the clinician: Rx View for demo-hepatic (pick the 10 mg tablet, take the 5 mg swap, take
// "Limit to 21 days", change the frequency, dismiss with a reason, change it again), Rx Sign for
// demo-refractory (sign, dismiss a card with a reason),
// PAMA Imaging (a lumbar MRI), and Rx View and Rx Sign again on the DSTU2 server. It prints every
// exchange as the service saw it (hookInstance, draft type, prefetch keys, status, each card's
// rule id and summary; feedback outcomes) and writes screenshots, transcript.json and the
// service's and FHIR servers' logs to --out (default $TMPDIR/sandbox-walkthrough).
// Not part of `make test`: it needs the sandbox's build and Chromium (apt-get install chromium).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..', '..');
const { values: opts } = parseArgs({
  options: {
    'sandbox-build': { type: 'string' }, // the sandbox's build/ folder (served on --sandbox-port)
    'sandbox-url': { type: 'string' }, // or a sandbox already served elsewhere
    'sandbox-port': { type: 'string', default: '3000' },
    // the ports of the servers it starts: another pair where something else already listens
    'service-port': { type: 'string', default: '8000' },
    'r4-port': { type: 'string', default: '8080' },
    'dstu2-port': { type: 'string', default: '8081' },
    out: { type: 'string', default: join(tmpdir(), 'sandbox-walkthrough') },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    python: { type: 'string', default: join(REPO, '.venv', 'bin', 'python') },
    only: { type: 'string' }, // r4 | dstu2: run one half
    'service-src': { type: 'string' },
  },
});
if (!opts['sandbox-build'] && !opts['sandbox-url']) {
  console.error('usage: node run.mjs --sandbox-build <cds-hooks sandbox build/ folder> | --sandbox-url <url>');
  process.exit(2);
}
const SERVICE = `http://localhost:${opts['service-port']}/cds-services`;
const R4 = `http://localhost:${opts['r4-port']}/fhir`;
const DSTU2 = `http://localhost:${opts['dstu2-port']}/fhir`;
const SANDBOX = opts['sandbox-url'] || `http://localhost:${opts['sandbox-port']}`;
const DRUG = 'Cyclobenzaprine hydrochloride 10 MG Oral Tablet';
mkdirSync(opts.out, { recursive: true });

// ---- the processes the walk-through needs -------------------------------------------------
const children = [];
function start(name, cmd, args, env = {}, cwd = REPO) {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = [];
  child.stdout.on('data', (d) => log.push(String(d)));
  child.stderr.on('data', (d) => log.push(String(d)));
  children.push({ name, child, log });
  return child;
}
async function waitFor(url, name) {
  for (let i = 0; i < 100; i += 1) {
    try {
      const r = await fetch(url);
      if (r.status < 500) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} did not come up at ${url}`);
}
function stopAll() {
  for (const { child } of children) if (child.exitCode === null) child.kill('SIGTERM');
}
process.on('exit', stopAll);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

// Its own servers only: something already on one of the ports would be driven instead, silently.
for (const [url, what] of [[`${SERVICE.replace('/cds-services', '')}/healthz`, `the service (:${opts['service-port']})`],
  [`${R4}/metadata`, `a FHIR server (:${opts['r4-port']})`], [`${DSTU2}/metadata`, `a FHIR server (:${opts['dstu2-port']})`],
  ...(opts['sandbox-url'] ? [] : [[SANDBOX, 'a sandbox server']])]) {
  const busy = await fetch(url).then(() => true, () => false);
  if (busy) {
    console.error(`${url} already answers: stop what runs there (${what} is started by this script)`);
    process.exit(2);
  }
}

// The service from this checkout, or from --service-src (another checkout, e.g. a `git archive` of
// a commit, run with this checkout's .venv). Each half (R4, DSTU2) gets a fresh one with an empty
// CDS_DATA_DIR, so what was accepted or dismissed in one half does not quiet a card in the other.
const serviceSrc = resolve(opts['service-src'] || REPO);
async function startService(name) {
  const child = start(name, opts.python, ['-m', 'cds_service', 'serve', '--port', opts['service-port']], {
    CDS_TRUST_SANDBOX: 'true',
    // The sandbox's page may call the service (CORS), and the service may fetch from the FHIR
    // servers on this machine (the DSTU2 path fetches MedicationOrder itself).
    CDS_CORS_ORIGINS: JSON.stringify([new URL(SANDBOX).origin]),
    CDS_FHIR_SERVERS: '["loopback"]',
    CDS_DATA_DIR: mkdtempSync(join(tmpdir(), 'cds-walkthrough-data-')),
    PYTHONPATH: serviceSrc,
  }, serviceSrc);
  await waitFor(`${SERVICE.replace('/cds-services', '')}/healthz`, 'the service');
  return child;
}
async function stopService(child) {
  child.kill('SIGTERM');
  await new Promise((r) => { if (child.exitCode !== null) r(); else child.on('exit', r); });
}
start('fhir-r4', opts.python, [join(HERE, 'fhir_server.py'), '--port', opts['r4-port']]);
start('fhir-dstu2', opts.python, [join(HERE, 'fhir_server.py'), '--port', opts['dstu2-port'], '--dstu2']);
if (!opts['sandbox-url']) {
  start('sandbox', opts.python, ['-m', 'http.server', opts['sandbox-port'], '-d', resolve(opts['sandbox-build'])]);
}
await Promise.all([
  waitFor(`${R4}/metadata`, 'the R4 FHIR server'),
  waitFor(`${DSTU2}/metadata`, 'the DSTU2 FHIR server'),
  waitFor(SANDBOX, 'the sandbox'),
]);

// ---- what the service saw -------------------------------------------------------------------
const transcript = [];
let pending = 0;
let lastActivity = Date.now();
let step = '';

function describeRequest(body) {
  if (body.feedback) {
    return body.feedback.map((f) => `${f.outcome}${f.overrideReason?.reason ? ` (${f.overrideReason.reason.code})` : ''}`).join(', ');
  }
  const ctx = body.context || {};
  const drafts = (ctx.draftOrders?.entry || []).map((e) => {
    const r = e.resource || {};
    const what = r.medicationCodeableConcept?.text || r.code?.coding?.[0]?.display || 'no drug yet';
    const repeat = r.dosageInstruction?.[0]?.timing?.repeat;
    const supply = r.dispenseRequest?.expectedSupplyDuration?.value;
    const how = repeat?.frequency ? `, ${repeat.frequency}x/${repeat.period}${repeat.periodUnit || repeat.periodUnits}` : '';
    return `${r.resourceType}/${r.id}: ${what}${how}${supply ? `, ${supply} days` : ''}`;
  });
  return `${body.hook} hookInstance=${body.hookInstance} selections=${JSON.stringify(ctx.selections || [])} `
    + `drafts=${JSON.stringify(drafts)} prefetch=${JSON.stringify(Object.keys(body.prefetch || {}).sort())}`;
}

function watch(page) {
  // The sandbox reads the FHIR server before each call: that counts as activity too.
  page.on('requestfinished', (req) => {
    if (req.url().startsWith(R4) || req.url().startsWith(DSTU2)) lastActivity = Date.now();
  });
  page.on('request', (req) => {
    if (!req.url().startsWith(SERVICE) || req.method() !== 'POST') return;
    pending += 1;
    lastActivity = Date.now();
  });
  page.on('requestfailed', (req) => {
    if (!req.url().startsWith(SERVICE) || req.method() !== 'POST') return;
    pending -= 1;
    transcript.push({ step, url: req.url().replace(SERVICE, ''), request: req.failure()?.errorText, status: 'failed' });
  });
  page.on('response', async (res) => {
    const req = res.request();
    if (!req.url().startsWith(SERVICE) || req.method() !== 'POST') return;
    const entry = { step, url: req.url().replace(SERVICE, ''), status: res.status() };
    try {
      entry.request = describeRequest(JSON.parse(req.postData() || '{}'));
      let body = null;
      try { body = await res.json(); } catch { /* feedback answers may be empty */ }
      if (body?.cards) {
        entry.cards = body.cards.map((c) => ({
          rule: c.source?.topic?.code,
          indicator: c.indicator,
          summary: c.summary,
          // A suggestion's label, and the type of resource each action carries back.
          suggestions: (c.suggestions || []).map((s) => {
            const types = (s.actions || []).map((a) => `${a.type} ${a.resource?.resourceType || a.resourceId || ''}`.trim());
            return `${s.label} [${types.join(', ')}]`;
          }),
        }));
      } else if (body?.issue) {
        entry.error = body.issue.map((i) => i.diagnostics).join('; ');
      }
    } catch (error) {
      entry.error = `could not read the exchange: ${error.message}`;
    } finally {
      transcript.push(entry);
      pending -= 1;
      lastActivity = Date.now();
    }
  });
}

// Quiet: no service call in flight and none for `ms` (at most 30 s: a call that never ends
// shows up in the transcript as missing, not as a hung walk-through).
async function settle(ms = 1200) {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    if (pending <= 0 && Date.now() - lastActivity > ms) return;
  }
  transcript.push({ step, note: `still ${pending} call(s) in flight after 30 s` });
  pending = 0;
}

// ---- the clinician --------------------------------------------------------------------------
const browser = await chromium.launch({ executablePath: opts.chromium, headless: true });

async function openSandbox(fhir, patientId, tag) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1800 } });
  // No internet here: fail the sandbox's calls to its public default services at once.
  await context.route(/^https?:\/\/(?!localhost[:/]|127\.0\.0\.1[:/])/, (route) => route.abort());
  const page = await context.newPage();
  watch(page);
  await page.goto(`${SANDBOX}/?fhirServiceUrl=${encodeURIComponent(fhir)}&patientId=${patientId}`);
  await page.getByText(/Patient:|Name:/).first().waitFor({ timeout: 20000 }).catch(() => {});
  await settle();
  // Gear menu → Add CDS Services → the discovery URL (no trailing slash) → Save.
  await page.locator('header button').last().click();
  await page.getByRole('menuitem', { name: 'Add CDS Services' }).click();
  await page.locator('input[name="discovery-endpoint-input"]').fill(SERVICE);
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  await settle();
  await shot(page, `${tag}-${patientId}-service-added`);
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: join(opts.out, `${name}.png`), fullPage: true });
}

async function cardsOnScreen(page) {
  return page.locator('[class*="decision-card"]').evaluateAll((cards) => cards.map((c) => c.querySelector('p, h6, span')?.textContent.trim()));
}

async function act(page, label, fn) {
  step = label;
  lastActivity = Date.now();
  await fn();
  lastActivity = Date.now();
  await settle();
  const shown = await cardsOnScreen(page);
  transcript.push({ step, onScreen: shown });
  await shot(page, label.replace(/[^a-z0-9]+/gi, '-').toLowerCase());
}

async function pickDrug(page) {
  await page.locator('input[name="medication-input"]').fill('cyclobenzaprine');
  await page.getByRole('button', { name: DRUG, exact: true }).click();
}

// Dismiss → the arrow → the card's first override reason, on the last card shown (if any).
async function dismissWithReason(page, label) {
  const arrows = page.getByRole('button', { name: 'select dismiss reason' });
  if ((await arrows.count()) === 0) {
    transcript.push({ step: label, onScreen: [], note: 'no card to dismiss' });
    return;
  }
  await act(page, label, async () => {
    await arrows.last().click();
    const reason = page.getByRole('menuitem').first();
    step = `${label}: ${(await reason.textContent()).trim()}`;
    await reason.click();
  });
}

// Pick the n-th entry of the Frequency menu (0 daily, 1 twice, 2 three times, 3 four times a day).
async function frequency(page, label, n) {
  await act(page, label, async () => {
    await page.locator('[aria-labelledby~="dosage-frequency-label"]').first().click();
    await page.getByRole('option').nth(n).click();
  });
}

// Click the suggestion button whose label matches, if a card offers one.
async function take(page, label, name) {
  const button = page.getByRole('button', { name }).first();
  if ((await button.count()) === 0) {
    transcript.push({ step: label, onScreen: await cardsOnScreen(page), note: `no suggestion ${name}` });
    return;
  }
  await act(page, label, () => button.click());
}

async function rxView(fhir, tag) {
  const page = await openSandbox(fhir, 'demo-hepatic', tag);
  await act(page, `${tag} rx-view open`, () => page.getByRole('button', { name: 'Rx View' }).click());
  await act(page, `${tag} rx-view pick 10 mg`, () => pickDrug(page));
  await take(page, `${tag} rx-view take 5 mg swap`, /5 mg tablet/);
  await take(page, `${tag} rx-view take limit to 21 days`, /Limit to 21 days/);
  await frequency(page, `${tag} rx-view frequency twice daily`, 1);
  await dismissWithReason(page, `${tag} rx-view dismiss with a reason`);
  await frequency(page, `${tag} rx-view frequency three times daily`, 2);
  await page.context().close();
}

async function rxSign(fhir, tag) {
  const page = await openSandbox(fhir, 'demo-refractory', tag);
  await act(page, `${tag} rx-sign open`, () => page.getByRole('button', { name: 'Rx Sign' }).click());
  await act(page, `${tag} rx-sign pick 10 mg`, () => pickDrug(page));
  await act(page, `${tag} rx-sign sign order`, () => page.getByRole('button', { name: 'Sign Order' }).click());
  await dismissWithReason(page, `${tag} rx-sign dismiss with a reason`);
  await page.context().close();
}

async function pama(fhir, tag) {
  const page = await openSandbox(fhir, 'demo-refractory', tag);
  await act(page, `${tag} pama open`, () => page.getByRole('button', { name: 'PAMA Imaging' }).click());
  await act(page, `${tag} pama lumbar mri`, async () => {
    const input = page.getByText('Search orders').locator('..').locator('input');
    await input.fill('lumbar without contrast');
    await page.getByText(/spinal canal and contents, lumbar; without contrast/).first().click();
  });
  await page.context().close();
}

let failure = null;
try {
  if (opts.only !== 'dstu2') {
    const service = await startService('service-r4');
    await rxView(R4, 'r4');
    await rxSign(R4, 'r4');
    await pama(R4, 'r4');
    await stopService(service);
  }
  if (opts.only !== 'r4') {
    const service = await startService('service-dstu2');
    await rxView(DSTU2, 'dstu2');
    await rxSign(DSTU2, 'dstu2');
    await stopService(service);
  }
} catch (error) {
  failure = error;
} finally {
  await browser.close();
  writeFileSync(join(opts.out, 'transcript.json'), JSON.stringify(transcript, null, 1));
  for (const fhir of children.filter((c) => /^(service|fhir)-/.test(c.name))) {
    writeFileSync(join(opts.out, `${fhir.name}.log`), fhir.log.join(''));
  }
  stopAll();
}

let current = '';
for (const e of transcript) {
  if (e.step !== current) { current = e.step; console.log(`\n== ${current}`); }
  if (e.note) console.log(`   (${e.note})`);
  if (e.onScreen) { console.log(`   on screen: ${e.onScreen.length ? e.onScreen.join(' | ') : '(no cards)'}`); continue; }
  console.log(` POST ${e.url} → ${e.status}: ${e.request}`);
  for (const c of e.cards || []) console.log(`   [${c.indicator}] ${c.rule}: ${c.summary}${c.suggestions.length ? `  {${c.suggestions.join(' / ')}}` : ''}`);
  if (e.error) console.log(`   error: ${e.error}`);
}
console.log(`\nscreenshots, transcript.json and the logs: ${opts.out}`);
if (failure) {
  console.error(`\nthe walk-through stopped at "${step}": ${failure.message.split('\n')[0]}`);
  process.exit(1);
}
