import type { Job } from 'darkroom/client';
import { useEffect, useRef, useState } from 'preact/hooks';
import { fileName, formatDuration } from '../format.ts';
import { JobInputs } from './job-inputs.tsx';

export interface LightboxTarget {
  job: Job;
  index: number;
}

interface LightboxProps {
  target: LightboxTarget | undefined;
  /** The dialog has closed (Esc, Close, or Reuse); the caller puts focus back. */
  onClose(): void;
  onReuse(job: Job, index: number): void;
}

/**
 * Fetches the image and saves it under a readable name. The `download` attribute alone is ignored
 * for another origin (S3 links); if the fetch is refused there too (no CORS), the image opens in a
 * new tab instead, where it can be saved by hand.
 */
async function download(job: Job, image: Job['images'][number]): Promise<void> {
  try {
    const response = await fetch(image.url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const href = URL.createObjectURL(await response.blob());
    const link = document.createElement('a');
    link.href = href;
    link.download = fileName(job, image);
    link.click();
    setTimeout(() => URL.revokeObjectURL(href), 60_000);
  } catch {
    window.open(image.url, '_blank', 'noopener');
  }
}

function Timings({ job }: { job: Job }) {
  const created = Date.parse(job.createdAt);
  const started = job.startedAt ? Date.parse(job.startedAt) : undefined;
  const completed = job.completedAt ? Date.parse(job.completedAt) : undefined;
  const { providerMs, imageMs, storageMs } = job.timings;
  return (
    <>
      {started !== undefined ? <dd>waited {formatDuration(started - created)} in the queue</dd> : null}
      {started !== undefined && completed !== undefined ? <dd>ran {formatDuration(completed - started)}</dd> : null}
      <dd>
        provider {formatDuration(providerMs)}, thumbnails {formatDuration(imageMs)}, storage {formatDuration(storageMs)}
      </dd>
    </>
  );
}

/**
 * The original image, at its own size, with how it was made. A native modal <dialog>: it is
 * role=dialog, keeps focus inside while open and closes on Esc by itself; focus goes to the close
 * button when it opens and back to the thumbnail that opened it when it closes (the caller's part).
 */
export function Lightbox({ target, onClose, onReuse }: LightboxProps) {
  const dialog = useRef<HTMLDialogElement>(null);
  const closeButton = useRef<HTMLButtonElement>(null);
  // Fit to the window by default; the button shows it pixel for pixel.
  const [actualSize, setActualSize] = useState(false);

  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (target && !element.open) {
      setActualSize(false);
      element.showModal();
      closeButton.current?.focus();
    } else if (!target && element.open) {
      element.close();
    }
  }, [target]);

  const job = target?.job;
  const image = job?.images.find((candidate) => candidate.index === target?.index);
  const request = job?.request;
  return (
    <dialog ref={dialog} class="lightbox" aria-labelledby="lightbox-title" onClose={onClose}>
      {job && image && request ? (
        <div class="lightbox-body">
          <div class="lightbox-bar">
            <h2 id="lightbox-title">
              Image {image.index + 1} of {job.images.length}
            </h2>
            <button type="button" onClick={() => setActualSize(!actualSize)} aria-pressed={actualSize}>
              Actual size
            </button>
            <button type="button" onClick={() => void download(job, image)}>
              Download
            </button>
            <button
              type="button"
              onClick={() => {
                onReuse(job, image.index);
                dialog.current?.close();
              }}
            >
              Reuse these settings
            </button>
            <button type="button" ref={closeButton} onClick={() => dialog.current?.close()}>
              Close
            </button>
          </div>
          <div class={`lightbox-image${actualSize ? ' actual' : ''}`}>
            <img src={image.url} width={image.width} height={image.height} alt={request.prompt} />
          </div>
          <dl class="lightbox-facts">
            <dt>Prompt</dt>
            <dd class="prompt-text">{request.prompt}</dd>
            {request.negativePrompt ? (
              <>
                <dt>Negative prompt</dt>
                <dd class="prompt-text">{request.negativePrompt}</dd>
              </>
            ) : null}
            <dt>Seed</dt>
            <dd>{image.seed ?? 'unknown'}</dd>
            <dt>Size</dt>
            <dd>
              {image.width}×{image.height}
            </dd>
            <dt>Provider</dt>
            <dd>{job.provider}</dd>
            {job.inputs && job.inputs.length > 0 ? (
              <>
                <dt>Inputs</dt>
                <dd>
                  <JobInputs job={job} size={96} detailed />
                </dd>
              </>
            ) : null}
            {request.strength !== undefined ? (
              <>
                <dt>Strength</dt>
                <dd>{request.strength}</dd>
              </>
            ) : null}
            {request.steps !== undefined ? (
              <>
                <dt>Steps</dt>
                <dd>{request.steps}</dd>
              </>
            ) : null}
            {request.cfgScale !== undefined ? (
              <>
                <dt>CFG scale</dt>
                <dd>{request.cfgScale}</dd>
              </>
            ) : null}
            {request.style !== undefined ? (
              <>
                <dt>Style</dt>
                <dd>{request.style}</dd>
              </>
            ) : null}
            <dt>Timings</dt>
            <Timings job={job} />
          </dl>
        </div>
      ) : null}
    </dialog>
  );
}
