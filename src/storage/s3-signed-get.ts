/**
 * Reads a small object with one signed GET sent through the client's own HTTP handler (same
 * sockets, timeouts and credentials), bypassing the SDK's per-request middleware.
 *
 * Why: `bk list` reads one manifest per backup, and the SDK spends ~1.6–2 ms of CPU on each GET
 * (endpoint rules, serde, user agent, retry and logger middleware) where signing and sending take
 * ~0.7 ms. Measured on 1,000 manifests from s3rver, 16 at a time: 0.68–0.82 CPU-s instead of
 * 1.64–2.08, 1.0–1.4 s instead of 1.5–2.2 s.
 *
 * Only the happy path is taken here: any answer other than 200, or a connection that fails, returns
 * undefined and the caller asks the SDK, which retries, follows redirects and explains errors. Used
 * for path-style endpoints (S3-compatible servers), whose URLs need no endpoint rules.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { extendedEncodeURIComponent } from '@smithy/core/protocols';
import { HttpRequest } from '@smithy/core/transport';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Readable } from 'node:stream';

export class SignedGet {
  private readonly signer: SignatureV4;
  private readonly base: URL;
  /** The endpoint's own path and the bucket: every key's URL path starts with it. */
  private readonly bucketPath: string;
  /** Set once a request failed for another reason than a missing key: the SDK alone from then on. */
  private off = false;

  constructor(
    private readonly client: S3Client,
    endpoint: string,
    bucket: string,
    region: string,
  ) {
    this.base = new URL(endpoint);
    this.bucketPath = `${this.base.pathname.replace(/\/+$/, '')}/${extendedEncodeURIComponent(bucket)}`;
    this.signer = new SignatureV4({
      credentials: client.config.credentials,
      region,
      service: 's3',
      sha256: client.config.sha256,
      // S3 signs the path as sent, not encoded twice.
      uriEscapePath: false,
      applyChecksum: true,
    });
  }

  /** The object's bytes, or undefined when this way did not get them (ask the SDK). */
  async get(objectKey: string): Promise<Buffer | undefined> {
    if (this.off) return undefined;
    const request = new HttpRequest({
      method: 'GET',
      protocol: this.base.protocol,
      hostname: this.base.hostname,
      ...(this.base.port ? { port: Number(this.base.port) } : {}),
      // Encoded as the SDK encodes S3 keys (RFC 3986, also `!'()*`), segment by segment.
      path: `${this.bucketPath}/${objectKey.split('/').map(extendedEncodeURIComponent).join('/')}`,
      headers: { host: this.base.host },
    });
    try {
      const signed = await this.signer.sign(request);
      const { response } = await this.client.config.requestHandler.handle(signed as HttpRequest);
      const body = response.body as Readable;
      if (response.statusCode !== 200) {
        body.resume();
        if (response.statusCode !== 404) this.off = true;
        return undefined;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      const bytes = Buffer.concat(chunks);
      const length = response.headers['content-length'];
      return length === undefined || Number(length) === bytes.length ? bytes : undefined;
    } catch {
      this.off = true;
      return undefined;
    }
  }
}
