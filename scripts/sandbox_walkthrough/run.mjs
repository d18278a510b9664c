// The README's CDS Hooks sandbox walk-through, driven end to end in headless Chromium.
//
//   cd scripts/sandbox_walkthrough && npm ci          # playwright-core only; the browser is the system's
//   node scripts/sandbox_walkthrough/run.mjs --sandbox-build /tmp/sandbox/build
//
// It starts, as its own children, everything the walk-through needs on this machine: the service
// (CDS_TRUST_SANDBOX=true, a fresh CDS_DATA_DIR) on :8000, the demo patients on an R4 FHIR server
// (:8080) and on a DSTU2 one emulating the sandbox's default server (:8081), both from
// fhir_server.py beside this file, and a static server for the sandbox's build on :3000. Then it
// plays the clinician: Rx View for demo-hepatic (pick the 10 mg tablet, take the 5 mg swap, take
// "Limit to 21 days", change the frequency, dismiss with a reason), Rx Sign for demo-refractory,
// PAMA Imaging (a lumbar MRI), and Rx View and Rx Sign again on the DSTU2 server. It prints every
// exchange as the service saw it (hookInstance, draft type, prefetch keys, status, each card's
// rule id and summary; feedback outcomes) and writes screenshots and transcript.json to --out.
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
const SERVICE = 'http://localhost:8000/cds-services';
const R4 = 'http://localhost:8080/fhir';
const DSTU2 = 'http://localhost:8081/fhir';
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

const dataDir = mkdtempSync(join(tmpdir(), 'cds-walkthrough-data-'));
// The service from this checkout, or from --service-src (another checkout, e.g. a `git archive` of
// a commit, run with this checkout's .venv).
const serviceSrc = resolve(opts['service-src'] || REPO);
start('service', opts.python, ['-m', 'cds_service', 'serve', '--port', '8000'], {
  CDS_TRUST_SANDBOX: 'true',
  CDS_DATA_DIR: dataDir,
  PYTHONPATH: serviceSrc,
}, serviceSrc);
start('fhir-r4', opts.python, [join(HERE, 'fhir_server.py'), '--port', '8080']);
start('fhir-dstu2', opts.python, [join(HERE, 'fhir_server.py'), '--port', '8081', '--dstu2']);
if (!opts['sandbox-url']) {
  start('sandbox', opts.python, ['-m', 'http.server', opts['sandbox-port'], '-d', resolve(opts['sandbox-build'])]);
}
await Promise.all([
  waitFor(`${SERVICE.replace('/cds-services', '')}/healthz`, 'the service'),
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
    + `drafts=${JSON.stringify(drafts)} prefetch=${JSON.stringify(Object.keys(body.prefetch || {}))}`;
}

function watch(page) {
  // The sandbox reads the FHIR server before each call: that counts as activity too.
  page.on('requestfinished', (req) => {
    if (/^http:\/\/localhost:808[01]\//.test(req.url())) lastActivity = Date.now();
  });
  page.on('request', (req) => {
    if (!req.url().startsWith(SERVICE) || req.method() !== 'POST') return;
    pending += 1;
    lastActivity = Date.now();
  });
  page.on('requestfailed', (req) => {
    if (!req.url().startsWith(SERVICE) || req.method() !== 'POST') return;
    pending -= 1;
    transcript.push({ step, url: req.url(), request: describeRequest(req.postDataJSON() || {}), status: 'failed' });
  });
  page.on('response', async (res) => {
    const req = res.request();
    if (!req.url().startsWith(SERVICE) || req.method() !== 'POST') return;
    let body = null;
    try { body = await res.json(); } catch { /* feedback answers may be empty */ }
    const entry = {
      step,
      url: req.url().replace(SERVICE, ''),
      request: describeRequest(req.postDataJSON() || {}),
      status: res.status(),
    };
    if (body?.cards) {
      entry.cards = body.cards.map((c) => ({
        rule: c.source?.topic?.code,
        indicator: c.indicator,
        summary: c.summary,
        suggestions: (c.suggestions || []).map((s) => s.label),
      }));
    } else if (body?.issue) {
      entry.error = body.issue.map((i) => i.diagnostics).join('; ');
    }
    transcript.push(entry);
    pending -= 1;
    lastActivity = Date.now();
  });
}

// Quiet: no service call in flight and none for `ms`.
async function settle(ms = 1200) {
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    if (pending <= 0 && Date.now() - lastActivity > ms) return;
  }
}

// ---- the clinician --------------------------------------------------------------------------
const browser = await chromium.launch({ executablePath: opts.chromium, headless: true });

async function openSandbox(fhir, patientId) {
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
  const page = await openSandbox(fhir, 'demo-hepatic');
  await act(page, `${tag} rx-view open`, () => page.getByRole('button', { name: 'Rx View' }).click());
  await act(page, `${tag} rx-view pick 10 mg`, () => pickDrug(page));
  await take(page, `${tag} rx-view take 5 mg swap`, /5 mg tablet/);
  await take(page, `${tag} rx-view take limit to 21 days`, /Limit to 21 days/);
  await act(page, `${tag} rx-view frequency twice daily`, async () => {
    await page.locator('#dosage-frequency-label ~ div [role="combobox"], [aria-labelledby~="dosage-frequency-label"]').first().click();
    await page.getByRole('option').nth(1).click();
  });
  await dismissWithReason(page, `${tag} rx-view dismiss with a reason`);
  await page.context().close();
}

async function rxSign(fhir, tag) {
  const page = await openSandbox(fhir, 'demo-refractory');
  await act(page, `${tag} rx-sign open`, () => page.getByRole('button', { name: 'Rx Sign' }).click());
  await act(page, `${tag} rx-sign pick 10 mg`, () => pickDrug(page));
  await act(page, `${tag} rx-sign sign order`, () => page.getByRole('button', { name: 'Sign Order' }).click());
  await dismissWithReason(page, `${tag} rx-sign dismiss with a reason`);
  await page.context().close();
}

async function pama(fhir, tag) {
  const page = await openSandbox(fhir, 'demo-refractory');
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
    await rxView(R4, 'r4');
    await rxSign(R4, 'r4');
    await pama(R4, 'r4');
  }
  if (opts.only !== 'r4') {
    await rxView(DSTU2, 'dstu2');
    await rxSign(DSTU2, 'dstu2');
  }
} catch (error) {
  failure = error;
} finally {
  await browser.close();
  writeFileSync(join(opts.out, 'transcript.json'), JSON.stringify(transcript, null, 1));
  const service = children.find((c) => c.name === 'service');
  writeFileSync(join(opts.out, 'service.log'), service.log.join(''));
  for (const fhir of children.filter((c) => c.name.startsWith('fhir-'))) {
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
console.log(`\nscreenshots, transcript.json and the service log: ${opts.out}`);
if (failure) {
  console.error(`\nthe walk-through stopped at "${step}": ${failure.message.split('\n')[0]}`);
  process.exit(1);
}
