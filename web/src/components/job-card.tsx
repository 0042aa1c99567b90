import type { Job } from 'darkroom/client';
import { elapsedMs, formatDuration, isActive, statusText } from '../format.ts';
import { JobInputs } from './job-inputs.tsx';
import { Thumbnail } from './thumbnail.tsx';

export interface CardState {
  job: Job;
  cancelling: boolean;
  /** Something to tell about this card that is not the job's own error (a failed cancel). */
  notice?: string;
}

interface JobCardProps {
  card: CardState;
  /** The time of the elapsed clock (one tick for all cards). */
  now: number;
  onCancel(id: string): void;
  onOpen(job: Job, index: number, opener: HTMLElement): void;
}

function ProgressBar({ job }: { job: Job }) {
  const running = job.status === 'running';
  const percent = job.progress === null ? undefined : Math.round(job.progress * 100);
  // Running without a known progress is indeterminate (no aria-valuenow): the bar shows motion instead.
  const indeterminate = running && percent === undefined;
  return (
    <div
      class={`progress${indeterminate ? ' indeterminate' : ''}`}
      role="progressbar"
      aria-label="Progress"
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={indeterminate ? undefined : (percent ?? 0)}
    >
      <div class="progress-fill" style={indeterminate ? undefined : { width: `${percent ?? 0}%` }} />
    </div>
  );
}

export function JobCard({ card, now, onCancel, onOpen }: JobCardProps) {
  const { job } = card;
  const active = isActive(job.status);
  const { width, height, numImages, strength } = job.request;
  const fromImage = (job.inputs ?? []).some((input) => input.role === 'init');
  return (
    <article class={`card status-${job.status}`} data-job-id={job.id} data-status={job.status} aria-label={`Job: ${job.request.prompt}`}>
      <p class="card-prompt">{job.request.prompt}</p>
      <p class="card-meta">
        {job.provider} · {width}×{height}
        {numImages && numImages > 1 ? ` · ${numImages} images` : ''}
        {fromImage && strength !== undefined ? ` · strength ${strength}` : ''}
      </p>
      <JobInputs job={job} size={56} />
      <div class="card-status">
        <span class="badge">{statusText(job)}</span>
        {job.queuePosition !== null && active ? <span>#{job.queuePosition} in the provider's queue</span> : null}
        <span class="elapsed" title="Time since the job was created">
          {formatDuration(elapsedMs(job, now))}
        </span>
      </div>
      {active ? <ProgressBar job={job} /> : null}
      {job.error ? <p class="card-error">{job.error.message}</p> : null}
      {card.notice ? <p class="card-notice">{card.notice}</p> : null}
      {job.images.length > 0 ? (
        <div class="card-images">
          {job.images.map((image) => (
            <Thumbnail key={image.index} job={job} image={image} onOpen={onOpen} />
          ))}
        </div>
      ) : null}
      {active ? (
        <div class="card-actions">
          <button type="button" onClick={() => onCancel(job.id)} disabled={card.cancelling}>
            Cancel
          </button>
        </div>
      ) : null}
    </article>
  );
}
