/**
 * Sends a run's notifications (a backup, or a verification of one) to every configured channel
 * that wants this kind of event. A channel that fails is logged and skipped: notifications never
 * change a run's result or exit code.
 */
import type { BackupResult } from '../engine/backup.js';
import type { Logger } from '../log.js';
import type { VerifyRun } from '../ops/verify-run.js';
import { runEvent, verifyEvent, type RunEvent } from './run-event.js';
import type { NotificationConfig } from './schema.js';
import { sendWebhook } from './webhook.js';

/** How a channel is named in logs: never by its URL, which holds tokens. */
const channelName = (n: NotificationConfig, i: number): string =>
  n.type === 'webhook' ? `notifications[${i}] (webhook, ${n.format})` : `notifications[${i}] (email to ${Array.isArray(n.to) ? n.to.join(', ') : n.to})`;

export async function notifyRun(channels: readonly NotificationConfig[], result: BackupResult, logger: Logger, at = new Date()): Promise<void> {
  if (channels.length > 0) await send(channels, runEvent(result, at), logger);
}

export async function notifyVerify(channels: readonly NotificationConfig[], run: VerifyRun, logger: Logger, at = new Date()): Promise<void> {
  if (channels.length > 0) await send(channels, verifyEvent(run, at), logger);
}

async function send(channels: readonly NotificationConfig[], event: RunEvent, logger: Logger): Promise<void> {
  await Promise.all(
    channels.map(async (n, i) => {
      if (!n.on.includes(event.event)) return;
      const log = logger.child({ target: event.target, step: 'notify' });
      try {
        if (n.type === 'webhook') await sendWebhook(n, event);
        // nodemailer loads only when an email is sent: importing it cost every run ~100 ms at start.
        else await (await import('./email.js')).sendEmail(n, event);
        log.debug('notification sent', { channel: channelName(n, i), event: event.event });
      } catch (e) {
        const cause = (e as { cause?: { message?: string } }).cause?.message;
        log.warn(`notification failed: ${(e as Error).message}${cause ? ` (${cause})` : ''}`, { channel: channelName(n, i) });
      }
    }),
  );
}
