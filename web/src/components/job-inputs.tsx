import type { Job } from 'darkroom/client';
import { ROLE_NAMES } from './image-inputs.tsx';

interface JobInputsProps {
  job: Job;
  /** The square, in CSS pixels, each input is fitted into. */
  size: number;
  /** Say each input's size beside it (the lightbox has the room). */
  detailed?: boolean;
}

/**
 * The images a job started from, each with its role: the input itself, fitted into a small square
 * (inputs have no thumbnails of their own), linking to it at full size.
 */
export function JobInputs({ job, size, detailed = false }: JobInputsProps) {
  const inputs = job.inputs ?? [];
  if (inputs.length === 0) return null;
  return (
    <ul class="job-inputs" aria-label="Input images">
      {inputs.map((input, index) => {
        const name = ROLE_NAMES[input.role];
        return (
          <li key={`${index}:${input.sha256}`} data-role={input.role}>
            <a href={input.url} target="_blank" rel="noopener" title={`${name}, ${input.width}×${input.height}: open it at full size`}>
              <img src={input.url} width={size} height={size} style={{ width: `${size}px`, height: `${size}px` }} alt={`${name} (${input.width}×${input.height})`} loading="lazy" decoding="async" />
            </a>
            <span class="input-role">
              {name}
              {detailed ? ` · ${input.width}×${input.height}` : ''}
            </span>
          </li>
        );
      })}
    </ul>
  );
}
