// Notifications to real receivers: a local HTTP server standing in for a webhook, Slack and Discord,
// and a real SMTP server (smtp-server) that checks the login. A secret is planted in the failure's
// own error message; no receiver, log line or output may see it.
import { createServer, type Server } from 'node:http';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, makeTmpDir, rmrf } from '../harness/index.js';
import { runBk } from '../helpers/run-bk.js';

const SECRET = 'Sup3r-Secret-Pa55';
const HOOK_TOKEN = 'hook-token-8f3e1c';

interface Received {
  path: string;
  body: string;
}
interface Mail {
  user: string;
  password: string;
  raw: string;
}

let dir: string;
let config: string;
let http: Server;
let smtp: SMTPServer;
const requests: Received[] = [];
const mails: Mail[] = [];

beforeAll(async () => {
  http = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', body });
      res.writeHead(req.url?.startsWith('/broken') ? 500 : 200).end(req.url?.startsWith('/broken') ? 'receiver exploded' : 'ok');
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const web = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;

  smtp = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === 'bk' && auth.password === SECRET) cb(null, { user: auth.username });
      else cb(new Error('invalid login'));
    },
    onData(stream, session, cb) {
      let raw = '';
      stream.on('data', (c: Buffer) => (raw += c.toString()));
      stream.on('end', () => {
        mails.push({ user: String(session.user), password: SECRET, raw });
        cb();
      });
    },
  });
  const smtpPort = await freePort();
  await new Promise<void>((r) => smtp.listen(smtpPort, '127.0.0.1', r));

  dir = await makeTmpDir('bk-notify-');
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src', 'a.txt'), 'data\n');
  config = join(dir, 'backup.config.yaml');
  await writeFile(
    config,
    `storages:
  local: { type: local, path: ${join(dir, 'repo')} }
notifications:
  - type: webhook
    url: ${web}/json?token=${HOOK_TOKEN}
    on: [failure, success]
  - type: webhook
    url: ${web}/slack
    format: slack
  - type: webhook
    url: ${web}/discord
    format: discord
  - type: webhook
    url: ${web}/broken
    on: [failure, success]
  - type: email
    smtp: { host: 127.0.0.1, port: ${smtpPort}, user: bk, password: "\${SMTP_PASSWORD}" }
    from: bk@example.org
    to: [ops@example.org]
targets:
  broken:
    driver: files
    # The secret ends up inside the error message: redaction, not luck, keeps it out.
    source: /nonexistent/\${SMTP_PASSWORD}/data
  good:
    driver: files
    source: ${join(dir, 'src')}
`,
    { mode: 0o600 },
  );
});

afterAll(async () => {
  await new Promise<void>((r) => http.close(() => r()));
  await new Promise<void>((r) => smtp.close(() => r()));
  await rmrf(dir);
});

const env = { SMTP_PASSWORD: SECRET, BK_LOG_FORMAT: 'json', BK_LOG_LEVEL: 'debug' };

describe('notifications', () => {
  it('a failed backup notifies every channel, with no secret anywhere', async () => {
    const r = await runBk(['--config', config, 'backup', 'broken', '--json'], { env });
    // The receiver that answers 500 changes nothing: the backup's own failure decides the exit code.
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/"msg":"notification failed: the webhook answered HTTP 500: receiver exploded"/);
    expect(r.stderr).toContain('notifications[3] (webhook, json)');

    const byPath = (p: string) => requests.find((q) => q.path.startsWith(p))!;
    const json = JSON.parse(byPath('/json').body) as Record<string, unknown>;
    expect(json).toMatchObject({
      schemaVersion: 1,
      source: 'bk',
      event: 'failure',
      status: 'failed',
      target: 'broken',
      step: 'dump',
      code: 'SOURCE',
      failedStorages: ['local'],
      host: hostname(),
    });
    expect(typeof json.durationSeconds).toBe('number');
    expect(json.error).toMatch(/source \/nonexistent\/\*\*\*\/data is not a directory/);

    const slack = JSON.parse(byPath('/slack').body) as { text: string; attachments: { fields: { title: string; value: string }[]; text: string }[] };
    expect(slack.text).toBe(`bk: backup of broken FAILED on ${hostname()}`);
    expect(slack.attachments[0]!.fields).toContainEqual({ title: 'Step', value: 'dump', short: true });
    expect(slack.attachments[0]!.text).toContain('/nonexistent/***/data');

    const discord = JSON.parse(byPath('/discord').body) as { content: string; embeds: { fields: { name: string; value: string }[]; color: number }[] };
    expect(discord.content).toContain('FAILED');
    expect(discord.embeds[0]!.fields).toContainEqual({ name: 'Target', value: 'broken', inline: true });

    expect(mails).toHaveLength(1);
    const mail = mails[0]!;
    expect(mail.user).toBe('bk'); // the password reached the SMTP server (it checked it) …
    expect(mail.raw).toMatch(/^Subject: \[bk\] backup of broken FAILED on /m);
    expect(mail.raw).toContain('target:   broken');
    expect(mail.raw).toContain('step:     dump');
    expect(mail.raw).toMatch(/^To: ops@example\.org/m);

    // … and nothing else: not the receivers, not the logs, not the JSON result.
    for (const text of [...requests.map((q) => q.body), mail.raw, r.stdout, r.stderr]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(HOOK_TOKEN);
    }
    expect(requests.map((q) => q.path).join(' ')).toContain(HOOK_TOKEN); // the URL itself was used
  });

  it('success is sent only where asked for', async () => {
    requests.length = 0;
    mails.length = 0;
    const r = await runBk(['--config', config, 'backup', 'good'], { env });
    expect(r.exitCode).toBe(0);
    expect(requests.map((q) => q.path.split('?')[0]).sort()).toEqual(['/broken', '/json']);
    expect(JSON.parse(requests.find((q) => q.path.startsWith('/json'))!.body)).toMatchObject({ event: 'success', status: 'ok', target: 'good', error: null });
    expect(mails).toHaveLength(0);
  });

  it('an unreachable receiver is logged and changes nothing', async () => {
    const port = await freePort(); // nothing listens there
    const lonely = join(dir, 'unreachable.yaml');
    await writeFile(lonely, `storages:\n  local: { type: local, path: ${join(dir, 'repo')} }\nnotifications:\n  - { type: webhook, url: "http://127.0.0.1:${port}/x", on: [success] }\ntargets:\n  good: { driver: files, source: ${join(dir, 'src')} }\n`);
    const r = await runBk(['--config', lonely, 'backup', 'good'], { env });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/notification failed: fetch failed \(.*ECONNREFUSED/);
  });

  it('rejects a notification config mistake with the key path', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, `notifications:\n  - { type: webhook, url: "ftp://x", format: teams }\ntargets: {}\n`);
    const r = await runBk(['--config', bad, 'config', 'check']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/notifications\.0\.url: an http\(s\) URL; notifications\.0\.format: /);
  });
});
