/**
 * Notification channels in the config (top level, `notifications:`): webhooks (plain JSON, Slack or
 * Discord format) and email over SMTP. Each fires on failure by default; `on: [failure, success]`
 * adds successes. URLs and SMTP passwords are secrets (redacted everywhere, `url_file` /
 * `password_file` accepted).
 */
import { z } from 'zod';

export const NOTIFY_ON = ['failure', 'success'] as const;
export type NotifyOn = (typeof NOTIFY_ON)[number];
export const WEBHOOK_FORMATS = ['json', 'slack', 'discord'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

const on = z.array(z.enum(NOTIFY_ON)).min(1).default(['failure']);

export const webhookSchema = z
  .object({
    type: z.literal('webhook'),
    url: z.url({ protocol: /^https?$/, error: 'an http(s) URL' }),
    format: z.enum(WEBHOOK_FORMATS).default('json'),
    on,
    timeout: z.number().int().positive().max(300).default(10).describe('seconds'),
  })
  .strict();

export const emailSchema = z
  .object({
    type: z.literal('email'),
    smtp: z
      .object({
        host: z.string().min(1),
        port: z.number().int().min(1).max(65535).optional(),
        /** TLS from the start (port 465); otherwise STARTTLS when the server offers it. */
        secure: z.boolean().default(false),
        user: z.string().min(1).optional(),
        password: z.string().optional(),
      })
      .strict(),
    from: z.string().min(3),
    to: z.union([z.string().min(3), z.array(z.string().min(3)).min(1)]),
    /** Prefix of the subject line. */
    subject_prefix: z.string().default('[bk]'),
    on,
  })
  .strict();

export const notificationSchema = z.discriminatedUnion('type', [webhookSchema, emailSchema]);

export type WebhookConfig = z.infer<typeof webhookSchema>;
export type EmailConfig = z.infer<typeof emailSchema>;
export type NotificationConfig = z.infer<typeof notificationSchema>;
