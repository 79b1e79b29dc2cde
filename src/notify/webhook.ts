/**
 * Webhook notifications: a POST with a JSON body, either bk's own event document or a Slack- or
 * Discord-compatible message. The body is redacted as a whole before it leaves the process.
 */
import { redact } from '../secrets.js';
import { eventTitle, type RunEvent } from './run-event.js';
import type { WebhookConfig, WebhookFormat } from './schema.js';

const RED = 0xd93025;
const GREEN = 0x1e8e3e;
const AMBER = 0xf9ab00;

export function webhookBody(format: WebhookFormat, e: RunEvent): unknown {
  const color = e.status === 'ok' ? GREEN : e.status === 'partial' ? AMBER : RED;
  const fields = [
    { name: 'Target', value: e.target },
    { name: 'Status', value: e.status },
    { name: 'Storages', value: e.storages.map((s) => `${s.storage} ${s.ok ? 'ok' : 'FAILED'}`).join(', ') || '(none)' },
    ...(e.step ? [{ name: 'Step', value: e.step }] : []),
    { name: 'Duration', value: `${e.durationSeconds}s` },
    { name: 'Host', value: e.host },
  ];
  switch (format) {
    case 'json':
      return { schemaVersion: 1, source: 'bk', ...e };
    case 'slack':
      // Incoming-webhook format: `text` is the notification line; the attachment carries details.
      return {
        text: eventTitle(e),
        attachments: [
          {
            color: `#${color.toString(16).padStart(6, '0')}`,
            fields: fields.map((f) => ({ title: f.name, value: f.value, short: f.value.length < 40 })),
            ...(e.error ? { text: `\`\`\`${e.error}\`\`\`` } : {}),
            ts: Math.floor(Date.parse(e.time) / 1000),
          },
        ],
      };
    case 'discord':
      return {
        content: eventTitle(e),
        embeds: [
          {
            title: eventTitle(e),
            color,
            ...(e.error ? { description: `\`\`\`\n${e.error.slice(0, 3900)}\n\`\`\`` } : {}),
            fields: fields.map((f) => ({ name: f.name, value: f.value.slice(0, 1024), inline: f.value.length < 40 })),
            timestamp: e.time,
          },
        ],
      };
  }
}

export async function sendWebhook(cfg: WebhookConfig, e: RunEvent): Promise<void> {
  const body = redact(JSON.stringify(webhookBody(cfg.format, e)));
  const res = await fetch(cfg.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'bk' },
    body,
    signal: AbortSignal.timeout(cfg.timeout * 1000),
  });
  // Drain the body so the connection is released; its text helps when the receiver says no.
  const text = await res.text().catch(() => '');
  if (!res.ok) throw new Error(`the webhook answered HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
}

