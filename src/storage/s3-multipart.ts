/**
 * Streams a body into one S3 object: a single PutObject when it fits in one part, otherwise a
 * multipart upload with a few parts in flight.
 *
 * Written here rather than taken from lib-storage's `Upload`, because of what it costs per byte:
 * `Upload` concatenates every part into a newly allocated Buffer, and a fresh 8 MiB allocation is
 * slow to fill (page faults) and to collect. This module copies the body into a fixed pool of
 * part buffers (parts in flight + the one filling) and reuses each once its part is answered.
 * Measured on 150 MB sent to s3rver in 8 MiB parts: 0.78–0.85 CPU-s instead of 1.23–1.40, and
 * 145 MiB peak RSS instead of 178–189.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type PutObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { MAX_PARTS } from './s3-config.js';

/** What one upload has sent: part sizes by number, and whether completion was requested. */
export interface SentParts {
  sizes: Map<number, number>;
  completing: boolean;
}

export interface UploadOptions {
  client: S3Client;
  /** Bucket, key and the object's settings (storage class, encryption, content type). */
  params: Omit<PutObjectCommandInput, 'Body'>;
  partSize: number;
  /** Parts in flight at most. */
  queueSize: number;
  /** Cancels the PutObject or the part requests in flight (an interrupt). */
  signal: AbortSignal;
  /** Filled in as parts are answered, for telling a lost CompleteMultipartUpload answer from a failure. */
  sent: SentParts;
  /** Told how AbortMultipartUpload went; a failed abort never replaces the error that caused it. */
  onAbort?: (error?: unknown) => void;
  /** S3's limit, MAX_PARTS, unless a test needs a smaller one. */
  maxParts?: number;
}

/**
 * Uploads `body` to `params.Key`. Rejects with the first error (the body's, or a request's) after
 * the parts in flight have settled and the multipart upload has been aborted, so nothing is
 * completed from a body that failed or ended early.
 */
export async function uploadStream(body: Readable, o: UploadOptions): Promise<void> {
  const { client, partSize, queueSize, signal, sent, maxParts = MAX_PARTS } = o;
  const { Bucket, Key } = o.params;
  const free: Buffer[] = [];
  const inFlight = new Set<Promise<void>>();
  const completed: CompletedPart[] = [];
  let uploadId: string | undefined;
  let partNumber = 0;
  let failure: { error: unknown } | undefined;

  const sendPart = (buffer: Buffer, length: number) => {
    const PartNumber = ++partNumber;
    const request = client
      .send(new UploadPartCommand({ Bucket, Key, UploadId: uploadId, PartNumber, Body: buffer.subarray(0, length) }), { abortSignal: signal })
      .then(
        (out) => {
          if (!out.ETag) throw new Error(`the answer to part ${PartNumber} has no ETag`);
          completed.push({
            PartNumber,
            ETag: out.ETag,
            ...(out.ChecksumCRC32 ? { ChecksumCRC32: out.ChecksumCRC32 } : {}),
            ...(out.ChecksumCRC32C ? { ChecksumCRC32C: out.ChecksumCRC32C } : {}),
            ...(out.ChecksumSHA1 ? { ChecksumSHA1: out.ChecksumSHA1 } : {}),
            ...(out.ChecksumSHA256 ? { ChecksumSHA256: out.ChecksumSHA256 } : {}),
          });
          sent.sizes.set(PartNumber, length);
          // Answered: the SDK no longer reads the buffer (a retry re-sends it before this point).
          free.push(buffer);
        },
      )
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => inFlight.delete(request));
    inFlight.add(request);
  };
  const settle = async () => {
    while (inFlight.size > 0) await Promise.race(inFlight);
  };

  let filling: Buffer = Buffer.allocUnsafeSlow(partSize);
  let filled = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      let offset = 0;
      while (offset < chunk.length) {
        // A full buffer is sent only once more data follows: a body of exactly one part is one PutObject.
        if (filled === partSize) {
          // This part and at least one more would not fit.
          if (partNumber === maxParts - 1) {
            throw new Error(`the object outgrew ${maxParts} parts of ${partSize / 2 ** 20} MiB; set a larger part_size for this storage`);
          }
          uploadId ??= await createMultipartUpload(o);
          sendPart(filling, filled);
          while (inFlight.size >= queueSize && !failure) await Promise.race(inFlight);
          if (failure) throw failure.error;
          filling = free.pop() ?? Buffer.allocUnsafeSlow(partSize);
          filled = 0;
        }
        const n = chunk.copy(filling, filled, offset, Math.min(chunk.length, offset + partSize - filled));
        filled += n;
        offset += n;
      }
      if (failure) throw failure.error;
    }

    if (uploadId === undefined) {
      await client.send(new PutObjectCommand({ ...o.params, Body: filling.subarray(0, filled) }), { abortSignal: signal });
      return;
    }
    sendPart(filling, filled);
    await settle();
    if (failure) throw failure.error;
    completed.sort((a, b) => a.PartNumber! - b.PartNumber!);
    sent.completing = true;
    await client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: uploadId, MultipartUpload: { Parts: completed } }));
  } catch (e) {
    await settle();
    if (uploadId !== undefined) await abortMultipartUpload(o, uploadId);
    throw e;
  }
}

async function createMultipartUpload(o: UploadOptions): Promise<string> {
  // Where the SDK adds checksums to parts (AWS endpoints), the upload must be created for them.
  const checksums = (await o.client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
  // Not cancelled by the signal: cancelled after the server acted, it would leave an upload nobody
  // knows the id of.
  const out = await o.client.send(new CreateMultipartUploadCommand({ ...o.params, ...(checksums ? { ChecksumAlgorithm: o.params.ChecksumAlgorithm ?? 'CRC32' } : {}) }));
  if (!out.UploadId) throw new Error('CreateMultipartUpload answered without an UploadId');
  return out.UploadId;
}

async function abortMultipartUpload(o: UploadOptions, uploadId: string): Promise<void> {
  try {
    await o.client.send(new AbortMultipartUploadCommand({ Bucket: o.params.Bucket, Key: o.params.Key, UploadId: uploadId }));
    o.onAbort?.();
  } catch (e) {
    o.onAbort?.(e);
  }
}
