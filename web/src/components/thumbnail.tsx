import type { Job } from 'darkroom/client';

interface ThumbnailProps {
  job: Job;
  image: Job['images'][number];
  onOpen(job: Job, index: number, opener: HTMLElement): void;
  /** The image did not load: its signed link has probably expired. */
  onBroken?(job: Job): void;
}

/** One image as its 128×128 WebP thumbnail, shown at 128×128 CSS pixels; a button that opens the original. */
export function Thumbnail({ job, image, onOpen, onBroken }: ThumbnailProps) {
  const count = job.images.length;
  const alt = count > 1 ? `${job.request.prompt} (image ${image.index + 1} of ${count})` : job.request.prompt;
  return (
    <button type="button" class="thumb" onClick={(event) => onOpen(job, image.index, event.currentTarget)} title={alt}>
      <img src={image.thumbnailUrl} width={128} height={128} alt={alt} loading="lazy" decoding="async" onError={() => onBroken?.(job)} />
    </button>
  );
}
