/** One server-sent event as it came over the wire (`data` parsed as JSON). */
export interface SseFrame {
  id: string | undefined;
  event: string | undefined;
  data: unknown;
}

export interface SseRead {
  status: number;
  headers: Headers;
  frames: SseFrame[];
  /** Comment lines seen (heartbeats), in order. */
  comments: number;
  /** Whether the server ended the stream (as opposed to `stop` or `timeoutMs` ending the read). */
  endedByServer: boolean;
}

/**
 * Reads an SSE response with fetch, independently of darkroom's client, until the server ends it,
 * `stop` says so after a frame, or `timeoutMs` passes (then the read is aborted).
 */
export async function readSse(
  url: string,
  options: { headers?: Record<string, string>; stop?: (frames: SseFrame[], comments: number) => boolean; timeoutMs?: number; onOpen?: () => void } = {},
): Promise<SseRead> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 20_000);
  const frames: SseFrame[] = [];
  let comments = 0;
  let endedByServer = false;
  try {
    const response = await fetch(url, { headers: { accept: 'text/event-stream', ...options.headers }, signal: controller.signal });
    options.onOpen?.();
    if (!response.body || !response.headers.get('content-type')?.startsWith('text/event-stream')) {
      return { status: response.status, headers: response.headers, frames, comments, endedByServer: true };
    }
    const decoder = new TextDecoder();
    let buffer = '';
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          endedByServer = true;
          break;
        }
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const frame: SseFrame = { id: undefined, event: undefined, data: undefined };
          let isEvent = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments += 1;
            else if (line.startsWith('id: ')) frame.id = line.slice(4);
            else if (line.startsWith('event: ')) frame.event = line.slice(7);
            else if (line.startsWith('data: ')) {
              frame.data = JSON.parse(line.slice(6));
              isEvent = true;
            }
          }
          if (isEvent) frames.push(frame);
        }
        if (options.stop?.(frames, comments)) break;
      }
    } catch (error) {
      if (!controller.signal.aborted) throw error;
    } finally {
      controller.abort();
    }
    return { status: response.status, headers: response.headers, frames, comments, endedByServer };
  } finally {
    clearTimeout(timer);
  }
}
