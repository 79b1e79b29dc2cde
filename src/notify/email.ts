/**
 * Email notifications over SMTP (nodemailer). The password goes to the SMTP server only; the
 * subject and body are built from the run event and redacted before sending.
 */
import nodemailer from 'nodemailer';
import { redact } from '../secrets.js';
import { eventLines, eventTitle, type RunEvent } from './run-event.js';
import type { EmailConfig } from './schema.js';

const TIMEOUT_MS = 15_000;

export function emailMessage(cfg: EmailConfig, e: RunEvent): { from: string; to: string[]; subject: string; text: string } {
  return {
    from: cfg.from,
    to: Array.isArray(cfg.to) ? cfg.to : [cfg.to],
    subject: redact(`${cfg.subject_prefix ? `${cfg.subject_prefix} ` : ''}${eventTitle(e).replace(/^bk: /, '')}`),
    text: redact(`${eventLines(e).join('\n')}\n`),
  };
}

export async function sendEmail(cfg: EmailConfig, e: RunEvent): Promise<void> {
  const transport = nodemailer.createTransport({
    host: cfg.smtp.host,
    port: cfg.smtp.port ?? (cfg.smtp.secure ? 465 : 587),
    secure: cfg.smtp.secure,
    ...(cfg.smtp.user ? { auth: { user: cfg.smtp.user, pass: cfg.smtp.password ?? '' } } : {}),
    connectionTimeout: TIMEOUT_MS,
    greetingTimeout: TIMEOUT_MS,
    socketTimeout: TIMEOUT_MS,
  });
  try {
    await transport.sendMail(emailMessage(cfg, e));
  } finally {
    transport.close();
  }
}
